/**
 * `hisbridge send FILE --host H --port P [--tls [--ca F --cert F --key F]]`: an MLLP client. Files are split
 * with the listener's own splitter (core/hl7/batch.ts): each plain message
 * is sent as its own block, a batch (FHS/BHS ... BTS/FTS) as one block whose
 * batch ACK carries one MSA per enclosed message. Prints every ACK.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { MllpClient } from '../mllp/client.js';
import { decodeHl7, parseHl7, readMsh18, splitBlock, type BlockUnit } from '../hl7/index.js';
import { err, out, parse } from './common.js';

/** MSA-1 of every ACK in a reply (one for a single ACK, one per message for a batch ACK). */
export function ackCodes(text: string): string[] {
  const codes: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (!line.startsWith('MSA')) continue;
    // The ACK's own field separator is the 4th character of its MSH; MSA uses the same.
    const sep = line[3] ?? '|';
    codes.push(line.split(sep)[1] ?? '');
  }
  return codes;
}

function withTerminator(b: Buffer): Buffer {
  const last = b[b.length - 1];
  return last === 0x0d || last === 0x0a ? b : Buffer.concat([b, Buffer.from('\r')]);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '2575' },
    timeout: { type: 'string', default: '30000' },
    tls: { type: 'boolean' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
  });
  if (values.help || positionals.length === 0) {
    out('usage: hisbridge send FILE [FILE...] [--host H] [--port P] [--timeout MS] [--tls [--ca F] [--cert F --key F]]\nSends every HL7 message in the files over MLLP and prints each ACK; a batch file (FHS/BHS ... BTS/FTS) goes as one block and its batch ACK shows one MSA per message. Exit 1 if any MSA is not AA/CA.\n--tls: MLLP inside TLS; --ca: PEM of the CA that signed the listener (default: system CAs); --cert/--key: PEM client certificate and key for a listener that requires one.');
    return values.help ? 0 : 2;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    err(`hisbridge send: --port must be 1-65535 (got "${values.port}")`);
    return 2;
  }
  let tlsOpts: ConnectionOptions | undefined;
  try {
    tlsOpts = tlsOptions(values);
  } catch (e) {
    err(`hisbridge send: ${(e as Error).message}`);
    return 2;
  }
  const units: BlockUnit[] = [];
  let messages = 0;
  try {
    for (const f of positionals) {
      const split = splitBlock(readFileSync(f));
      for (const u of split.units) {
        // A file that is not HL7 at all: the old rule (a line starting with MSH) still decides.
        if (u.kind === 'message' && !/^(?:\xef\xbb\xbf)?\s*MSH/.test(u.bytes.subarray(0, 16).toString('latin1'))) continue;
        units.push(u);
        messages += u.kind === 'message' ? 1 : u.messages.length;
      }
    }
  } catch (e) {
    err(`hisbridge send: ${(e as Error).message}`);
    return 2;
  }
  if (!units.length) {
    err('hisbridge send: no HL7 message (no line starting with MSH) in the input');
    return 2;
  }
  const client = await MllpClient.connect(values.host!, port, { timeoutMs: Number(values.timeout), ...(tlsOpts ? { tls: tlsOpts } : {}) });
  let bad = 0;
  let answered = 0;
  try {
    for (const u of units) {
      const ackBytes = await client.send(u.kind === 'message' ? withTerminator(u.bytes) : u.bytes);
      // A batch ACK starts with BHS (no MSH-18): its first ACK message's MSH-18 names the charset.
      const firstMsh = ackBytes.indexOf('\rMSH');
      const charset = u.kind === 'batch' && firstMsh >= 0 ? readMsh18(ackBytes.subarray(firstMsh + 1)) ?? 'gb18030' : 'gb18030';
      let text: string;
      try {
        ({ text } = decodeHl7(ackBytes, charset));
      } catch {
        // An ACK naming a charset we do not know: show it byte for byte rather than fail.
        text = ackBytes.toString('latin1');
      }
      out(text.replace(/\r/g, '\n').trimEnd());
      out('');
      let codes = ackCodes(text);
      if (u.kind === 'message' && codes.length === 0) {
        try {
          codes = [parseHl7(text).get('MSA-1')];
        } catch {
          codes = [''];
        }
      }
      const expected = u.kind === 'message' ? 1 : u.messages.length;
      answered += Math.min(codes.length, expected);
      bad += codes.filter((c) => c !== 'AA' && c !== 'CA').length + Math.max(0, expected - codes.length);
    }
  } finally {
    client.close();
  }
  if (answered < messages) err(`hisbridge send: ${messages - answered} of ${messages} messages got no MSA`);
  if (bad) err(`hisbridge send: ${bad} of ${messages} messages not accepted`);
  return bad ? 1 : 0;
}

/** TLS options from --tls/--ca/--cert/--key; throws a usage error naming the flag or the file. */
function tlsOptions(v: { tls?: boolean; ca?: string; cert?: string; key?: string }): ConnectionOptions | undefined {
  if (!v.tls) {
    if (v.ca || v.cert || v.key) throw new Error('--ca, --cert and --key need --tls');
    return undefined;
  }
  if (Boolean(v.cert) !== Boolean(v.key)) throw new Error('--cert and --key go together');
  const pem = (flag: string, file: string): Buffer => {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      throw new Error(`${flag}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    if (!data.includes('-----BEGIN ')) throw new Error(`${flag}: ${file} is not a PEM file`);
    return data;
  };
  return {
    ...(v.ca ? { ca: pem('--ca', v.ca) } : {}),
    ...(v.cert && v.key ? { cert: pem('--cert', v.cert), key: pem('--key', v.key) } : {}),
  };
}
