#!/usr/bin/env node
/**
 * Regenerates samples/*.hl7, samples/manifest.json and samples/README.md from
 * the definitions in defs-his.mjs and defs-results.mjs.
 *
 *   node samples/tools/make-samples.mjs [--out DIR]
 *
 * GBK/GB18030 files are written with iconv-lite, so the bytes are what a
 * Chinese HIS sends. Output is deterministic (no clocks, no randomness): the
 * test suite regenerates into a temporary directory and compares bytes.
 *
 * A sample definition: { file, type, controlId, charset ('gb18030'|'utf-8',
 * how the bytes decode), encodeAs ('gb18030'|'gbk'|'utf-8'), msh18,
 * terminator (default '\r'), description, features?, expects, segments() }.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import { HIS_SAMPLES } from './defs-his.mjs';
import { RESULT_SAMPLES } from './defs-results.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const outArg = process.argv.indexOf('--out');
const outDir = resolve(outArg > 0 ? process.argv[outArg + 1] : join(here, '..'));

const SAMPLES = [...HIS_SAMPLES, ...RESULT_SAMPLES];

/** Encodes one sample and checks it against its own definition, so a bad edit fails here. */
function build(def) {
  const segments = def.segments();
  const term = def.terminator ?? '\r';
  const text = segments.join(term) + term;
  const bytes = def.encodeAs === 'utf-8' ? Buffer.from(text, 'utf8') : iconv.encode(text, def.encodeAs);
  if (iconv.decode(bytes, def.encodeAs) !== text) throw new Error(`${def.file}: text not representable in ${def.encodeAs}`);
  const mshFields = segments[0].split('|');
  const type = mshFields[8].split('^').slice(0, 2).join('^');
  if (type !== def.type) throw new Error(`${def.file}: MSH-9 ${type} != ${def.type}`);
  if (mshFields[9] !== def.controlId) throw new Error(`${def.file}: MSH-10 ${mshFields[9]} != ${def.controlId}`);
  if ((mshFields[17] ?? '') !== def.msh18) throw new Error(`${def.file}: MSH-18 ${mshFields[17]} != ${def.msh18}`);
  const consent = segments.some((s) => s.startsWith('ZCN|Y|'));
  if (consent !== def.expects.consent) throw new Error(`${def.file}: expects.consent disagrees with ZCN`);
  return bytes;
}

function manifestEntry(def) {
  const entry = {
    file: def.file,
    type: def.type,
    charset: def.charset,
    msh18: def.msh18,
    terminator: def.terminator ?? '\r',
    controlId: def.controlId,
    description: def.description,
    expects: def.expects,
  };
  if (def.features) entry.features = def.features;
  return entry;
}

function readme(entries) {
  const esc = (s) => s.replace(/\|/g, '\\|');
  const rows = entries.map((e) =>
    `| \`${e.file}\` | ${e.type} | ${e.charset}${e.msh18 ? ` (\`${e.msh18}\`)` : ' (MSH-18 empty)'} | ${esc(e.description)} | ${e.expects.routes.join(', ') || '(none)'} |`);
  return `# Sample messages

Synthetic HL7 v2.4/v2.5 messages as Guangdong hospital systems send them, one
per file, covering every event row of SPEC §4. **Generated**: edit
\`tools/defs-*.mjs\` and run \`node samples/tools/make-samples.mjs\`; never edit
the \`.hl7\` files by hand (GBK files are not UTF-8 text, and a test checks that
the files equal the generator's output).

Every person and identifier is made up: resident ID numbers use real Guangdong
area codes (440106, 440305, 441302...) and a correct ISO 7064 MOD 11-2 check
character but belong to nobody; phones are \`1380000xxxx\`; the hospital is
\`H4413020001\` 示例市第一人民医院.

| file | type | charset (MSH-18) | what it is | routes expected (best guess) |
|---|---|---|---|---|
${rows.join('\n')}

## Conventions

- **Consent marker**: \`ZCN|Y|30|<time>|<channel>\` (ZCN-1 \`Y\`/\`N\`, ZCN-2 days,
  ZCN-3 when consent was given or withdrawn, ZCN-4 channel). No ZCN = no consent.
  \`08\` carries a withdrawal (\`ZCN-1 = N\`): the default routes only upload the
  patient; a site that revokes authorization (status \`0\`) can route on it.
- **Identifiers**: PID-3 = \`<hospital id>^^^HOSP^PI~<ID number>^^^CHN^NI\`,
  sometimes \`~<passport>^^^CHN^PPN\` or \`~<licence>^^^CHN^DL\`. Names are
  \`family^given\` in PID-5, or the whole name in PID-5.1 (\`李四\`, \`刘德明\`).
  Doctors are XCN \`id^family^given\` in PV1-7, ORC-12, OBR-16.
- **Lab vs exam**: MSH-3 \`LIS\` + OBR-24 \`LAB\`; MSH-3 \`RIS\`/\`PACS\` + OBR-24
  \`CT\`. OBR-25 \`F\` signed, \`C\` corrected, \`X\` cancelled. Orders carry
  ORC-2 placer numbers that the reports reuse (\`ORD20250312001\` 血常规,
  \`ORD20250312002\` 胸部CT平扫).
- **PDF**: OBX value type \`ED\`, OBX-5 \`^application^pdf^Base64^<data>\`, a real
  one-page PDF of a few hundred bytes.
- **Charsets**: \`charset\` in manifest.json is how the bytes decode. Files with
  MSH-18 \`GBK\`, \`GB 18030-2000\` or empty are GBK/GB18030 bytes; \`UNICODE
  UTF-8\` files are UTF-8. \`09\` has 區 (\`85 5E\`) and 億 (\`83 7C\`), whose
  second bytes are \`^\` and \`|\`: decode before splitting.
- **Terminators**: \`\\r\` except \`07\` (\`\\n\`) and \`10\` (\`\\r\\n\`).
- **Escapes**: \`18\` has \`\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\.br\\\` in the FT impression.
- **Sensitive**: \`22\` (DG1-3 \`A15.0\`, tuberculosis) and \`23\` (DG1-3 \`B20\`, HIV)
  are for the sensitive-record guard (\`expects.sensitive\`).
- **Enhanced ACK**: \`03\` and \`10\` ask for it (MSH-15 \`AL\`, MSH-16 \`NE\`).

## manifest.json

One entry per file: \`file\`, \`type\` (MSH-9.1^MSH-9.2), \`charset\`
(\`gb18030\` | \`utf-8\`), \`msh18\`, \`terminator\`, \`controlId\` (MSH-10),
\`description\`, \`features\` (optional tags: \`escapes\`, \`ed-pdf\`,
\`lf-terminators\`, \`crlf-terminators\`, \`msh18-empty\`, \`gbk-delimiter-bytes\`,
\`enhanced-ack\`, \`consent-withdrawn\`, \`sensitive\`), and \`expects\`:
\`consent\` (ZCN-1 = Y) and \`routes\` (the default routes expected to match:
gd-ehr-authorize, gd-ehr-viewer, recognition-patient, recognition-dict,
recognition-check, recognition-lab, recognition-exam), \`sensitive\` when set.
gd-ehr-viewer is driven by the workstation HTTP call, so no sample expects it.
`;
}

mkdirSync(outDir, { recursive: true });
const wanted = new Set(SAMPLES.map((d) => d.file));
for (const f of readdirSync(outDir)) {
  if (f.endsWith('.hl7') && !wanted.has(f)) rmSync(join(outDir, f));
}
for (const def of SAMPLES) writeFileSync(join(outDir, def.file), build(def));
const entries = SAMPLES.map(manifestEntry);
writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(entries, null, 2) + '\n');
writeFileSync(join(outDir, 'README.md'), readme(entries));
console.log(`wrote ${SAMPLES.length} samples to ${outDir}`);
