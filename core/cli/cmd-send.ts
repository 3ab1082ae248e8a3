/** `hisbridge send FILE --host H --port P [--tls [--ca F --cert F --key F]]`: an MLLP client that sends each message in FILE and prints each ACK. */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { MllpClient } from '../mllp/client.js';
import { decodeHl7, parseHl7 } from '../hl7/index.js';
import { err, out, parse, readMessages } from './common.js';

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
    out('usage: hisbridge send FILE [FILE...] [--host H] [--port P] [--timeout MS] [--tls [--ca F] [--cert F --key F]]\nSends every HL7 message in the files over MLLP and prints each ACK; exit 1 if any ACK is not AA/CA.\n--tls: MLLP inside TLS; --ca: PEM of the CA that signed the listener (default: system CAs); --cert/--key: PEM client certificate and key for a listener that requires one.');
    return values.help ? 0 : 2;
  }
  let tlsOpts: ConnectionOptions | undefined;
  try {
    tlsOpts = tlsOptions(values);
  } catch (e) {
    err(`hisbridge send: ${(e as Error).message}`);
    return 2;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    err(`hisbridge send: --port must be 1-65535 (got "${values.port}")`);
    return 2;
  }
  let messages: Buffer[] = [];
  try {
    for (const f of positionals) messages = messages.concat(readMessages(f));
  } catch (e) {
    err(`hisbridge send: ${(e as Error).message}`);
    return 2;
  }
  if (!messages.length) {
    err('hisbridge send: no HL7 message (no line starting with MSH) in the input');
    return 2;
  }
  const client = await MllpClient.connect(values.host!, port, { timeoutMs: Number(values.timeout), ...(tlsOpts ? { tls: tlsOpts } : {}) });
  let bad = 0;
  try {
    for (const m of messages) {
      const ackBytes = await client.send(m);
      const { text } = decodeHl7(ackBytes, 'gb18030');
      out(text.replace(/\r/g, '\n').trimEnd());
      out('');
      let code = '';
      try {
        code = parseHl7(text).get('MSA-1');
      } catch {
        code = '';
      }
      if (code !== 'AA' && code !== 'CA') bad++;
    }
  } finally {
    client.close();
  }
  if (bad) err(`hisbridge send: ${bad} of ${messages.length} messages not accepted`);
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
