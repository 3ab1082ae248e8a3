/**
 * Builds the bytes a test case sends: a sample file byte for byte, or inline
 * HL7 text encoded per its MSH-18, optionally edited (`set:` through the
 * codec, `remove:` whole segments) and re-encoded in the same charset.
 */
import { readMessages } from '../common.js';
import { decodeHl7, encodeText, normalizeCharset, parseHl7, readMsh18 } from '../../hl7/index.js';

export interface CaseInput {
  file?: string;
  hl7?: string;
  charset?: string;
  set?: Record<string, string | number>;
  remove?: string[];
}

/** Why an input could not be built (shown as a case failure at the `input:` key). */
export class InputProblem extends Error {}

function fromFile(file: string): Buffer {
  let frames: Buffer[];
  try {
    frames = readMessages(file);
  } catch (e) {
    throw new InputProblem(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (frames.length !== 1) throw new InputProblem(`${file} holds ${frames.length} messages; a case sends exactly one`);
  return frames[0]!;
}

/** Inline text: one segment per line, `\r` terminators on the wire. */
function inlineText(hl7: string): string {
  const lines = hl7.split(/\r\n|\r|\n/);
  while (lines.length && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines.join('\r') + '\r';
}

function edit(text: string, input: CaseInput): string {
  let out = text;
  if (input.remove?.length) {
    const drop = new Set(input.remove);
    out = out.split(/\r\n|\r|\n/).filter((l) => l !== '' && !drop.has(l.slice(0, 3))).join('\r') + '\r';
  }
  if (input.set && Object.keys(input.set).length) {
    let msg;
    try {
      msg = parseHl7(out);
    } catch (e) {
      throw new InputProblem(`cannot apply set: the message does not parse (${(e as Error).message})`);
    }
    for (const [path, value] of Object.entries(input.set)) {
      try {
        msg.set(path, String(value));
      } catch (e) {
        throw new InputProblem(`set ${path}: ${(e as Error).message}`);
      }
    }
    out = msg.encode();
  }
  return out;
}

/**
 * The frame for a case. `listenerCharset` is what the listener assumes when
 * MSH-18 is empty, so inline text is encoded the way a sender would.
 */
export function buildFrame(raw: string | CaseInput, listenerCharset: string): Buffer {
  const input: CaseInput = typeof raw === 'string' ? { file: raw } : raw;
  const edited = !!(input.remove?.length || (input.set && Object.keys(input.set).length));
  try {
    if (input.file !== undefined) {
      const frame = fromFile(input.file);
      if (!edited && !input.charset) return frame;
      const { text, charset } = decodeHl7(frame, listenerCharset);
      return encodeText(edit(text, input), input.charset ?? charset);
    }
    const text = inlineText(input.hl7 ?? '');
    const charset = input.charset ?? normalizeCharset(readMsh18(Buffer.from(text, 'utf8')), listenerCharset);
    return encodeText(edited ? edit(text, input) : text, charset);
  } catch (e) {
    if (e instanceof InputProblem) throw e;
    throw new InputProblem((e as Error).message);
  }
}
