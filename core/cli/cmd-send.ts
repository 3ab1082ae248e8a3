/** `hisbridge send FILE --host H --port P`: an MLLP client that sends each message in FILE and prints each ACK. */
import { MllpClient } from '../mllp/client.js';
import { decodeHl7, parseHl7 } from '../hl7/index.js';
import { err, out, parse, readMessages } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '2575' },
    timeout: { type: 'string', default: '30000' },
  });
  if (values.help || positionals.length === 0) {
    out('usage: hisbridge send FILE [FILE...] [--host H] [--port P] [--timeout MS]\nSends every HL7 message in the files over MLLP and prints each ACK; exit 1 if any ACK is not AA/CA.');
    return values.help ? 0 : 2;
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
  const client = await MllpClient.connect(values.host!, port, { timeoutMs: Number(values.timeout) });
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
