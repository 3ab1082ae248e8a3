/**
 * Synthetic HL7 v2 messages for load: ~1 KB ADT^A04 (registration with a
 * consent segment) and ~50 KB ORU^R01 (lab report with a base64 PDF in an ED
 * OBX). All identifiers are made up. Each message gets a unique MSH-10 and
 * patient number; the text is assembled from pre-encoded parts so that
 * building a frame costs a buffer concat, the same for every server measured.
 */

export type MessageKind = 'adt' | 'oru';

const VT = Buffer.from([0x0b]);
const FS_CR = Buffer.from([0x1c, 0x0d]);
const CTRL = '\u0000C\u0000';
const SEQ = '\u0000S\u0000';
const ID_WIDTH = 20;
const SEQ_WIDTH = 10;

/** ISO 7064 MOD 11-2 check character of a resident ID number. */
function idCheck(body17: string): string {
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body17[i]) * w[i]!;
  return '10X98765432'[sum % 11]!;
}

function adtTemplate(): string {
  const pad = 'X'.repeat(330);
  return [
    `MSH|^~\\&|HIS|BENCHHOSP|HISBRIDGE|GDEHR|20250101120000||ADT^A04^ADT_A01|${CTRL}|P|2.5|||AL|NE|CHN|UNICODE UTF-8`,
    'EVN|A04|20250101120000|||D001^王^医生',
    `PID|1||P${SEQ}^^^BENCHHOSP^PI~ID_NUMBER^^^GDGOV^NI||测试^患者^^^^^L||19900101|M|||广州市天河区测试路1号^^广州^广东^510000^CHN||020-00000000^PRN^PH|||M||V${SEQ}`,
    'PV1|1|O|NK01^内科门诊^^BENCHHOSP||||D001^王^医生|||MED||||1|||D001^王^医生|OP|V0001|||||||||||||||||||||||||20250101120000',
    'NK1|1|测试^家属|SPO^配偶|||020-00000001',
    `ZCN|Y|20250101120000|BENCH|${pad}`,
  ].join('\r');
}

/** A small but well-formed-looking PDF of about `bytes` bytes (deterministic filler). */
function fakePdf(bytes: number): Buffer {
  const head = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\nstream\n', 'latin1');
  const tail = Buffer.from('\nendstream\n%%EOF\n', 'latin1');
  const body = Buffer.alloc(Math.max(0, bytes - head.length - tail.length));
  let x = 0x2545;
  for (let i = 0; i < body.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    body[i] = x >> 16;
  }
  return Buffer.concat([head, body, tail]);
}

function oruTemplate(): string {
  const pdf = fakePdf(37_000).toString('base64');
  return [
    `MSH|^~\\&|LIS|BENCHHOSP|HISBRIDGE|RECOG|20250101120000||ORU^R01^ORU_R01|${CTRL}|P|2.5|||AL|NE|CHN|UNICODE UTF-8`,
    `PID|1||P${SEQ}^^^BENCHHOSP^PI~ID_NUMBER^^^GDGOV^NI||测试^患者^^^^^L||19900101|M`,
    'PV1|1|O|NK01^内科门诊^^BENCHHOSP||||D001^王^医生',
    `ORC|RE|O${SEQ}|F${SEQ}||CM`,
    `OBR|1|O${SEQ}|F${SEQ}|CBC^血常规^LN|||20250101110000|||||||20250101113000||D001^王^医生||||||20250101120000||LAB|F`,
    'OBX|1|NM|WBC^白细胞^LN||6.5|10*9/L|3.5-9.5|N|||F',
    'OBX|2|NM|HGB^血红蛋白^LN||135|g/L|130-175|N|||F',
    `OBX|3|ED|PDF^报告^L||^application^pdf^Base64^${pdf}||||||F`,
  ].join('\r');
}

/** Builds framed messages with unique control ids. */
export class MessageFactory {
  readonly kind: MessageKind;
  readonly #parts: (Buffer | 'ctrl' | 'seq')[] = [];
  readonly #prefix: string;
  #n = 0;

  /**
   * @param kind 'adt' (~1 KB) or 'oru' (~50 KB)
   * @param runTag makes control ids unique across trials and runs (the engine de-duplicates on MSH-10)
   */
  constructor(kind: MessageKind, runTag: string) {
    this.kind = kind;
    this.#prefix = runTag.replace(/[^A-Za-z0-9]/g, '').slice(0, 10);
    const text = kind === 'adt' ? adtTemplate() : oruTemplate();
    for (const piece of text.split(/(\u0000[CS]\u0000)/)) {
      if (piece === CTRL) this.#parts.push('ctrl');
      else if (piece === SEQ) this.#parts.push('seq');
      else if (piece) this.#parts.push(Buffer.from(piece, 'utf8'));
    }
  }

  /** Number of messages built so far. */
  get count(): number {
    return this.#n;
  }

  /** The next message (not framed). */
  next(): Buffer {
    const i = this.#n++;
    const ctrl = Buffer.from(this.#prefix + String(i).padStart(ID_WIDTH - this.#prefix.length, '0'), 'latin1');
    const seq = Buffer.from(String(i).padStart(SEQ_WIDTH, '0'), 'latin1');
    const body = this.#parts.map((p) => (p === 'ctrl' ? ctrl : p === 'seq' ? seq : p));
    return this.#fillId(Buffer.concat(body), i);
  }

  /** The next message wrapped in an MLLP frame. */
  nextFrame(): Buffer {
    return Buffer.concat([VT, this.next(), FS_CR]);
  }

  /** Replaces the ID_NUMBER placeholder with the message's synthetic ID number. */
  #fillId(buf: Buffer, i: number): Buffer {
    const at = buf.indexOf('ID_NUMBER');
    if (at < 0) return buf;
    // 'ID_NUMBER' is 9 bytes and the number 18: rebuild around it.
    return Buffer.concat([buf.subarray(0, at), Buffer.from(idNumberOf(i), 'latin1'), buf.subarray(at + 9)]);
  }
}

const DAY_MS = 86_400_000;
const EPOCH = Date.UTC(1950, 0, 1);

/**
 * The synthetic, checksum-valid resident ID number of message `i`: unique per
 * message (birth date advances every 1,000 messages), so a remote call can be
 * traced back to the message that caused it.
 */
export function idNumberOf(i: number): string {
  const d = new Date(EPOCH + Math.floor(i / 1000) * DAY_MS);
  const date = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
  const body = `440106${date}${String(i % 1000).padStart(3, '0')}`;
  return body + idCheck(body);
}

/** Inverse of idNumberOf; -1 when the number is not one of ours. */
export function indexOfIdNumber(id: string): number {
  const m = /^440106(\d{4})(\d{2})(\d{2})(\d{3})[\dX]$/.exec(id);
  if (!m) return -1;
  const days = Math.round((Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) - EPOCH) / DAY_MS);
  return days * 1000 + Number(m[4]);
}

/** Extracts MSH-10 from a message's bytes (ASCII-safe: MSH fields before MSH-18 are ASCII here). */
export function controlIdOf(msg: Buffer | string): string {
  const text = typeof msg === 'string' ? msg : msg.subarray(0, 512).toString('latin1');
  const msh = text.slice(text.indexOf('MSH'));
  const fs = msh[3] ?? '|';
  return msh.split(/\r|\n/, 1)[0]!.split(fs)[9] ?? '';
}
