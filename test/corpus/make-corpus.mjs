#!/usr/bin/env node
/**
 * Writes the real-world-style corpus in this directory: one file per MLLP
 * block (what a sloppy HIS, LIS or physical-exam system puts in one frame)
 * and manifest.json with what the engine must answer, message by message.
 * Run from the repository root: `node test/corpus/make-corpus.mjs [OUT_DIR]`.
 * test/corpus/corpus.test.ts checks the committed files equal this output.
 *
 * Every person and identifier is made up: resident ID numbers are born on
 * 1900-01-01 (area 440106, a valid check character so masking still sees
 * them as ID numbers), phones are 1380000xxxx, names are common test names.
 * The very large cases (huge repetitions, many segments) are generated at
 * test time by corpus.test.ts instead of being committed.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import { idNumber } from '../../samples/tools/hl7-build.mjs';

const DIR = process.argv[2] ? path.resolve(process.argv[2]) : path.dirname(fileURLToPath(import.meta.url));
const ID1 = idNumber('440106', '19000101', '001');
const ID2 = idNumber('440106', '19000101', '002');

/** One message as segment strings (no terminators). */
function adt(id, o = {}) {
  const enc = o.msh2 ?? '^~\\&';
  const charset = o.charset ?? 'UNICODE UTF-8';
  const trig = o.trigger ?? 'A28';
  return [
    `MSH|${enc}|${o.app ?? 'HIS'}|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^${trig}^ADT_A05|${id}|P|${o.version ?? '2.5'}|||${o.accept ?? ''}|${o.appAck ?? ''}||${charset}`,
    `EVN|${trig}|20250312093015`,
    `PID|1||${o.pid ?? 'T0000001'}^^^HOSP^PI~${o.idNumber ?? ID1}^^^CHN^NI||${o.name ?? 'CESHI^YI'}||19000101|M|||示例路1号^^广州市^广东省||13800000001^PRN^CP`,
    ...(o.extra ?? []),
  ];
}

function oru(id, o = {}) {
  const charset = o.charset ?? 'UNICODE UTF-8';
  const obx = [];
  for (let i = 1; i <= (o.results ?? 3); i++) obx.push(`OBX|${i}|NM|${1000 + i}^项目${i}^LOCAL||${(i * 1.7).toFixed(1)}|g/L|1.0-9.9||||F|||20250312100000`);
  return [
    `MSH|${o.msh2 ?? '^~\\&'}|${o.app ?? 'LIS'}|H4413020001|HISBRIDGE|GDPLAT|20250312100000||ORU^R01^ORU_R01|${id}|P|2.5||||||${charset}`,
    `PID|1||${o.pid ?? 'T0000002'}^^^HOSP^PI~${ID2}^^^CHN^NI||${o.name ?? 'CESHI^ER'}||19000101|F`,
    `OBR|1|${id}-O|${id}-F|2001^血常规^LOCAL|||20250312090000|||||||||D0001^医生^甲||||||20250312100000|||F||||||||||LAB`,
    ...obx,
  ];
}

/** A message that parses but has a segment with an invalid name: AE from the parser. */
function broken(id) {
  return [`MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|${id}|P|2.5||||||UNICODE UTF-8`, 'EVN|A28|20250312093015', 'pid|1||X'];
}

// GB18030 gives GBK characters their GBK bytes and covers the four-byte range too.
const enc = (segs, t = '\r', charset = 'utf8') => iconv.encode(segs.join(t) + t, charset === 'gbk' ? 'gb18030' : 'utf8');
const ascii = (s) => Buffer.from(s, 'latin1');
const cat = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? ascii(p) : p)));
const fhs = (id) => `FHS|^~\\&|LIS|H4413020001|HISBRIDGE|GDPLAT|20250312100000||||${id}`;
const bhs = (id) => `BHS|^~\\&|LIS|H4413020001|HISBRIDGE|GDPLAT|20250312100000||||${id}`;

/** Replaces the bytes of `marker` in a message with `bad` (the corrupt bytes). */
function corrupt(buf, marker, bad) {
  const at = buf.indexOf(marker);
  if (at < 0) throw new Error(`marker ${marker} not found`);
  return Buffer.concat([buf.subarray(0, at), bad, buf.subarray(at + Buffer.byteLength(marker))]);
}

/**
 * Cases: file name, what it shows, the block bytes, the reply frames the
 * listener must send, and [MSA-1, MSA-2] of every ACK in order.
 * `listener: 'lenient'` means a listener with invalidBytes: replace.
 */
const cases = [];
function add(file, what, bytes, frames, acks, listener) {
  cases.push({ file, what, bytes, frames, acks, ...(listener ? { listener } : {}) });
}

// --- HL7 batches (FHS/BHS ... BTS/FTS)
{
  const ms = ['C-BAT1-1', 'C-BAT1-2', 'C-BAT1-3'];
  add('batch-fhs-bhs-three-oru.hl7', 'LIS file batch: FHS, BHS, three ORU^R01, BTS 3, FTS 1 (CR)',
    cat(fhs('F1') + '\r' + bhs('B1') + '\r', ...ms.map((m) => enc(oru(m))), 'BTS|3\rFTS|1\r'), 1, ms.map((m) => ['AA', m]));
}
{
  const ms = ['C-BAT2-1', 'C-BAT2-2'];
  add('batch-bhs-only-lf.hl7', 'physical-exam system batch: BHS without FHS, LF terminators',
    cat(bhs('B2') + '\n', ...ms.map((m) => enc(oru(m), '\n')), 'BTS|2\n'), 1, ms.map((m) => ['AA', m]));
}
{
  const ms = ['C-BAT3-1', 'C-BAT3-2', 'C-BAT3-3'];
  add('batch-bts-count-wrong.hl7', 'BTS-1 says 5, the batch holds 3: processed anyway (warn)',
    cat(bhs('B3') + '\r', ...ms.map((m) => enc(adt(m))), 'BTS|5\r'), 1, ms.map((m) => ['AA', m]));
}
{
  const ms = ['C-BAT4-1'];
  add('batch-fts-count-wrong.hl7', 'FTS-1 says 3 batches, the file holds 1',
    cat(fhs('F4') + '\r' + bhs('B4') + '\r', ...ms.map((m) => enc(adt(m))), 'BTS|1\rFTS|3\r'), 1, ms.map((m) => ['AA', m]));
}
{
  const a = ['C-BAT5-1', 'C-BAT5-2'];
  const b = ['C-BAT5-3'];
  add('batch-file-two-batches.hl7', 'one file, two batches (2 + 1 messages): one batch ACK for the file',
    cat(fhs('F5') + '\r' + bhs('B5a') + '\r', ...a.map((m) => enc(oru(m))), 'BTS|2\r' + bhs('B5b') + '\r', ...b.map((m) => enc(oru(m))), 'BTS|1\rFTS|2\r'),
    1, [...a, ...b].map((m) => ['AA', m]));
}
{
  const ms = ['C-BAT6-1', 'C-BAT6-2'];
  add('batch-no-trailers.hl7', 'BHS and messages but no BTS (the LIS forgot the trailer)',
    cat(bhs('B6') + '\r', ...ms.map((m) => enc(oru(m)))), 1, ms.map((m) => ['AA', m]));
}
{
  const ms = ['C-BAT7-1', 'C-BAT7-2'];
  add('batch-gbk-crlf.hl7', 'batch of GBK messages with Chinese names, CRLF terminators, MSH-18 GBK',
    cat(fhs('F7') + '\r\n' + bhs('B7') + '\r\n', enc(oru(ms[0], { charset: 'GBK', name: '張^億區' }), '\r\n', 'gbk'), enc(adt(ms[1], { charset: 'GBK', name: '歐陽^華' }), '\r\n', 'gbk'), 'BTS|2\r\nFTS|1\r\n'),
    1, ms.map((m) => ['AA', m]));
}
add('batch-empty.hl7', 'an empty batch: BHS then BTS 0; answered BHS ... BTS 0 with no ACK inside', ascii(bhs('B8') + '\rBTS|0\r'), 1, []);
{
  add('batch-one-bad-message.hl7', 'a batch whose second message has a lower-case segment name: AE for it, AA for the others',
    cat(bhs('B9') + '\r', enc(adt('C-BAT9-1')), enc(broken('C-BAT9-2')), enc(adt('C-BAT9-3')), 'BTS|3\r'), 1, [['AA', 'C-BAT9-1'], ['AE', 'C-BAT9-2'], ['AA', 'C-BAT9-3']]);
}
{
  const ms = ['C-BAT10-1', 'C-BAT10-2'];
  add('batch-enhanced-mode.hl7', 'batch of messages asking for enhanced-mode ACKs (MSH-15 AL, MSH-16 NE): CA each',
    cat(bhs('B10') + '\r', ...ms.map((m) => enc(adt(m, { accept: 'AL', appAck: 'NE' }))), 'BTS|2\r'), 1, ms.map((m) => ['CA', m]));
}

// --- several messages in one MLLP block
for (const [name, t] of [['cr', '\r'], ['lf', '\n'], ['crlf', '\r\n']]) {
  const ms = [1, 2, 3].map((i) => `C-MULTI-${name.toUpperCase()}-${i}`);
  add(`multi-three-${name}.hl7`, `three messages in one block, ${name.toUpperCase()} terminators`, cat(...ms.map((m) => enc(adt(m), t))), 3, ms.map((m) => ['AA', m]));
}
add('multi-mixed-charsets.hl7', 'one UTF-8 and one GBK message in one block, each with its own MSH-18',
  cat(enc(adt('C-MIX-1', { name: '张^三' })), enc(adt('C-MIX-2', { charset: 'GB 18030-2000', name: '李^四' }), '\r', 'gbk')), 2, [['AA', 'C-MIX-1'], ['AA', 'C-MIX-2']]);
add('multi-gbk-trail-bytes.hl7', 'two GBK messages whose names hold trail bytes equal to | and ^ (億 83 7C, 區 85 5E)',
  cat(enc(adt('C-GBKT-1', { charset: 'GBK', name: '區^億華' }), '\r', 'gbk'), enc(adt('C-GBKT-2', { charset: 'GBK', name: '億區' }), '\r', 'gbk')), 2, [['AA', 'C-GBKT-1'], ['AA', 'C-GBKT-2']]);
add('multi-no-final-terminator.hl7', 'two messages, the last segment without a terminator',
  cat(enc(adt('C-NOTERM-1')), Buffer.from(adt('C-NOTERM-2').join('\r'), 'utf8')), 2, [['AA', 'C-NOTERM-1'], ['AA', 'C-NOTERM-2']]);
add('multi-blank-lines.hl7', 'two messages separated by blank lines and trailing spaces',
  cat(enc(adt('C-BLANK-1'), '\r\n'), '\r\n  \r\n', enc(adt('C-BLANK-2'), '\r\n'), '\r\n\r\n'), 2, [['AA', 'C-BLANK-1'], ['AA', 'C-BLANK-2']]);
add('multi-one-bad-in-middle.hl7', 'three messages, the middle one unparsable: AA, AE, AA, each with its own MSA-2',
  cat(enc(oru('C-MID-1')), enc(broken('C-MID-2')), enc(oru('C-MID-3'))), 3, [['AA', 'C-MID-1'], ['AE', 'C-MID-2'], ['AA', 'C-MID-3']]);
add('multi-reused-control-id-different-content.hl7', 'a HIS whose control-id counter was reset: same MSH-10, different patients, in one block',
  cat(enc(adt('C-REUSE-1', { pid: 'T0000011', name: 'CESHI^SAN' })), enc(adt('C-REUSE-1', { pid: 'T0000012', name: 'CESHI^SI' }))), 2, [['AA', 'C-REUSE-1'], ['AA', 'C-REUSE-1']]);
add('multi-reused-control-id-same-content.hl7', 'a resend of the same message in the same block (lost ACK): re-acknowledged',
  cat(enc(adt('C-RESEND-1')), enc(adt('C-RESEND-1'))), 2, [['AA', 'C-RESEND-1'], ['AA', 'C-RESEND-1']]);

// --- MSH-2 of three characters
add('msh2-three-chars.hl7', 'MSH-2 "^~\\" (no sub-component separator), v2.3 sender, & in a name is data',
  enc(adt('C-THREE-1', { msh2: '^~\\', version: '2.3', name: 'A&B^C' })), 1, [['AA', 'C-THREE-1']]);
add('msh2-three-chars-gbk.hl7', 'three encoding characters, GBK, Chinese name',
  enc(adt('C-THREE-2', { msh2: '^~\\', version: '2.3', charset: 'GBK', name: '王^小明' }), '\r', 'gbk'), 1, [['AA', 'C-THREE-2']]);
add('msh2-three-chars-multi.hl7', 'two three-character messages in one block, LF',
  cat(enc(oru('C-THREE-3', { msh2: '^~\\' }), '\n'), enc(oru('C-THREE-4', { msh2: '^~\\' }), '\n')), 2, [['AA', 'C-THREE-3'], ['AA', 'C-THREE-4']]);

// --- bytes invalid in the declared charset
add('invalid-utf8-pid5.hl7', 'MSH-18 UNICODE UTF-8, a broken sequence (E4 28) in the name: AE 102 naming PID-5',
  corrupt(enc(adt('C-BADU-1', { name: 'ZZNAME^X' })), 'ZZNAME', cat(Buffer.from('张', 'utf8'), Buffer.from([0xe4, 0x28]))), 1, [['AE', 'C-BADU-1']]);
add('invalid-utf8-obx3-truncated.hl7', 'a UTF-8 sequence cut short inside an OBX-3 item name',
  corrupt(enc(oru('C-BADU-2')), '项目2', Buffer.from([0xe9, 0xa1])), 1, [['AE', 'C-BADU-2']]);
add('invalid-utf8-latin1-name.hl7', 'a Latin-1 name (é as E9) under MSH-18 UNICODE UTF-8',
  corrupt(enc(adt('C-BADU-3', { name: 'ZZNAME^X' })), 'ZZNAME', Buffer.from('Ren\xe9e', 'latin1')), 1, [['AE', 'C-BADU-3']]);
add('invalid-gbk-ff-byte.hl7', 'MSH-18 GB 18030-2000, an FF byte in the name',
  corrupt(enc(adt('C-BADG-1', { charset: 'GB 18030-2000', name: 'ZZNAME^X' }), '\r', 'gbk'), 'ZZNAME', cat(iconv.encode('區', 'gbk'), Buffer.from([0xff]))), 1, [['AE', 'C-BADG-1']]);
add('invalid-gbk-lone-lead-byte.hl7', 'MSH-18 empty (listener default GB18030), a lead byte 81 followed by a space',
  corrupt(enc(adt('C-BADG-2', { charset: '', name: 'ZZNAME^X' }), '\r', 'gbk'), 'ZZNAME', Buffer.from([0x41, 0x81, 0x20, 0x42])), 1, [['AE', 'C-BADG-2']]);
add('invalid-utf8-replace.hl7', 'the same broken UTF-8 name on a listener with invalidBytes: replace: AA, stored and marked',
  corrupt(enc(adt('C-BADU-4', { name: 'ZZNAME^X' })), 'ZZNAME', cat(Buffer.from('张', 'utf8'), Buffer.from([0xe4, 0x28]))), 1, [['AA', 'C-BADU-4']], 'lenient');
add('multi-invalid-bytes-second.hl7', 'two messages in one block, the second with invalid UTF-8: AA then AE',
  cat(enc(adt('C-BADM-1')), corrupt(enc(adt('C-BADM-2', { name: 'ZZNAME^X' })), 'ZZNAME', Buffer.from([0xc3]))), 2, [['AA', 'C-BADM-1'], ['AE', 'C-BADM-2']]);

// --- UTF-8 under a GB label, raw control characters (same invalidBytes policy)
add('utf8-under-gbk-label.hl7', 'MSH-18 GBK but the bytes are UTF-8 Chinese (a HIS that changed its encoding and not its label): AE 102 HL7_E_CHARSET_LABEL',
  enc(adt('C-LBL-1', { charset: 'GBK', name: '欧阳^娜娜' })), 1, [['AE', 'C-LBL-1']]);
add('utf8-under-empty-msh18.hl7', 'MSH-18 empty (listener default GB18030), UTF-8 Chinese bytes: AE rather than a garbled name',
  enc(adt('C-LBL-2', { charset: '', name: '张^三' })), 1, [['AE', 'C-LBL-2']]);
add('utf8-under-gbk-label-replace.hl7', 'the same mislabelled message on a listener with invalidBytes: replace: AA, stored and marked',
  enc(adt('C-LBL-3', { charset: 'GBK', name: '欧阳^娜娜' })), 1, [['AA', 'C-LBL-3']], 'lenient');
add('control-nul-in-name.hl7', 'a NUL byte padding the patient name: AE 102 HL7_E_CONTROL_BYTES naming PID-5',
  corrupt(enc(adt('C-CTL-1', { name: 'ZZNAME^X' })), 'ZZNAME', Buffer.from('LI\x00\x00', 'latin1')), 1, [['AE', 'C-CTL-1']]);
add('control-tab-in-obx5.hl7', 'a TAB inside a result value (free text from a LIS): allowed, AA',
  corrupt(enc(oru('C-CTL-2')), '3.4', Buffer.from('3.4\t(recheck)', 'latin1')), 1, [['AA', 'C-CTL-2']]);

// --- charsets, whitespace, terminators
add('chinese-name-gbk.hl7', 'GBK patient update with a compound family name', enc(adt('C-GBK-1', { charset: 'GBK', trigger: 'A31', name: '欧阳^娜娜' }), '\r', 'gbk'), 1, [['AA', 'C-GBK-1']]);
add('chinese-name-gb18030-4byte.hl7', 'GB18030 four-byte character (𠀀, 95 32 82 36) in a name', enc(adt('C-GB4-1', { charset: 'GB 18030-2000', name: '𠀀^测试' }), '\r', 'gbk'), 1, [['AA', 'C-GB4-1']]);
add('chinese-name-utf8.hl7', 'UTF-8 patient with the whole name in PID-5.1', enc(adt('C-UTF-1', { name: '司马相如' })), 1, [['AA', 'C-UTF-1']]);
add('utf8-bom.hl7', 'a UTF-8 byte order mark before MSH', cat(Buffer.from([0xef, 0xbb, 0xbf]), enc(adt('C-BOM-1', { name: '张^三' }))), 1, [['AA', 'C-BOM-1']]);
add('empty-msh18-gbk.hl7', 'MSH-18 empty, GBK bytes: the listener default (gb18030) applies', enc(adt('C-NO18-1', { charset: '', name: '王^小明' }), '\r', 'gbk'), 1, [['AA', 'C-NO18-1']]);
add('trailing-whitespace.hl7', 'trailing spaces after segments and blank lines after the message',
  Buffer.from(adt('C-WS-1').map((s) => `${s}  `).join('\r') + '\r\r\n  \r\n', 'utf8'), 1, [['AA', 'C-WS-1']]);
add('missing-final-terminator.hl7', 'the last segment has no terminator', Buffer.from(oru('C-NOEND-1').join('\r'), 'utf8'), 1, [['AA', 'C-NOEND-1']]);
add('lf-only-single.hl7', 'a single message with LF terminators', enc(oru('C-LF-1'), '\n'), 1, [['AA', 'C-LF-1']]);
add('no-route-type.hl7', 'a message type no route takes (ADT^A03): accepted and ignored (noRoute AA)', enc(adt('C-NOROUTE-1', { trigger: 'A03' })), 1, [['AA', 'C-NOROUTE-1']]);

for (const f of readdirSync(DIR)) if (f.endsWith('.hl7')) rmSync(path.join(DIR, f));
mkdirSync(DIR, { recursive: true });
for (const c of cases) writeFileSync(path.join(DIR, c.file), c.bytes);
writeFileSync(
  path.join(DIR, 'manifest.json'),
  JSON.stringify(cases.map(({ bytes, ...rest }) => rest), null, 1) + '\n',
);
process.stdout.write(`wrote ${cases.length} corpus files and manifest.json\n`);
