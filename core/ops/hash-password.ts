/**
 * Prints a console password hash for `console.users[].passwordHash`:
 * `node dist/core/ops/hash-password.js` reads the password from stdin (one
 * line), so it never lands in the shell history or the process list.
 */
import { hashPassword } from './console/auth.js';

async function main(): Promise<number> {
  if (process.stdin.isTTY) process.stderr.write('password (input is echoed; pipe it in to avoid that): ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (Buffer.concat(chunks).includes(10)) break;
  }
  const password = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (password.length < 8) {
    process.stderr.write('hash-password: use at least 8 characters\n');
    return 2;
  }
  process.stdout.write(hashPassword(password) + '\n');
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => { process.stderr.write(`hash-password: ${(e as Error).message}\n`); process.exitCode = 1; });
