/**
 * `hisbridge sm4 encrypt --key HEX TEXT` / `hisbridge sm4 decrypt --key HEX HEX`:
 * SM4 (ECB, PKCS#7, hex) as the province uses it, for joint testing (联调).
 * Flags are kept stable. The result is printed alone on stdout.
 */
import { parseArgs } from 'node:util';
import { isHisbridgeError } from '../errors.js';
import { sm4DecryptHex, sm4EncryptHex } from '../crypto/index.js';

/** Where a command writes; tests pass collectors, main.ts uses the defaults. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export const stdio: CliIo = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

const USAGE = `usage: hisbridge sm4 encrypt --key HEX TEXT
       hisbridge sm4 decrypt --key HEX CIPHERHEX
SM4-ECB with PKCS#7 padding; key = 32 hex characters; text is UTF-8; ciphertext is lower-case hex.
--key-env NAME reads the key from an environment variable instead (keeps it out of the shell history).`;

export async function run(argv: string[], io: CliIo = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { key: { type: 'string' }, 'key-env': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    io.err(`hisbridge sm4: ${(e as Error).message}`);
    io.err(USAGE);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const [op, input, ...extra] = positionals;
  const key = values.key ?? (values['key-env'] ? process.env[values['key-env']] : undefined);
  if ((op !== 'encrypt' && op !== 'decrypt') || input === undefined || extra.length || key === undefined) {
    io.err(key === undefined && (op === 'encrypt' || op === 'decrypt') ? 'hisbridge sm4: --key is required' : 'hisbridge sm4: expected encrypt|decrypt and one value');
    io.err(USAGE);
    return 2;
  }
  try {
    io.out(op === 'encrypt' ? sm4EncryptHex(key, input) : sm4DecryptHex(key, input));
    return 0;
  } catch (e) {
    if (!isHisbridgeError(e)) throw e;
    io.err(`hisbridge sm4: ${e.code}: ${e.message}`);
    return 1;
  }
}
