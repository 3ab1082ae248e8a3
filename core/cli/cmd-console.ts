/**
 * `hisbridge console hash-password`: prints the scrypt hash for
 * `console.users[].passwordHash` (the format core/ops/console/auth.ts
 * verifies). The password is read from stdin, one line, so it never lands in
 * the shell history or the process list; typed at a terminal it is not echoed.
 */
import { parseSubcommand } from './subcommand.js';
import { hashPassword } from '../ops/console/auth.js';
import { stdio, type CliIo } from './cmd-sm4.js';

const USAGE = `usage: hisbridge console hash-password
Reads the password from stdin (one line; not echoed at a terminal) and prints
the hash to put in console.users[].passwordHash. At least 8 characters.
  printf '%s\\n' "$PASSWORD" | hisbridge console hash-password`;

/** The shortest password accepted, as the console's own documentation asks. */
export const MIN_PASSWORD_LENGTH = 8;

/** Reads one line from a terminal in raw mode, so the typed characters are not shown. */
export function readHiddenLine(input: NodeJS.ReadStream, prompt: NodeJS.WriteStream, label = 'password'): Promise<string | undefined> {
  return new Promise((resolve) => {
    let line = '';
    prompt.write(`${label}: `);
    input.setRawMode(true);
    input.resume();
    input.setEncoding('utf8');
    const finish = (v: string | undefined) => {
      input.setRawMode(false);
      input.pause();
      input.removeListener('data', onData);
      prompt.write('\n');
      resolve(v);
    };
    function onData(chunk: string) {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(line);
        if (ch === '\u0003') return finish(undefined); // Ctrl-C: give up without printing anything
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else if (ch >= ' ') line += ch;
      }
    }
    input.on('data', onData);
  });
}

/** Reads the first line of piped input (the rest, if any, is ignored). */
export async function readPipedLine(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    chunks.push(b);
    if (b.includes(10)) break;
  }
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

/** `hisbridge console <subcommand>`; returns the exit code (2 for usage errors and unusable passwords). */
export async function run(argv: string[], io: CliIo = stdio): Promise<number> {
  const parsed = parseSubcommand(argv, { command: 'console', subcommands: ['hash-password'], usage: USAGE }, io);
  if (typeof parsed === 'number') return parsed;
  const password = process.stdin.isTTY ? await readHiddenLine(process.stdin, process.stderr) : await readPipedLine(process.stdin);
  if (password === undefined) return 130;
  if (password.length === 0) {
    io.err('hisbridge console hash-password: no password on stdin (give one line, e.g. printf \'%s\\n\' "$PASSWORD" | hisbridge console hash-password)');
    return 2;
  }
  if (password.length < MIN_PASSWORD_LENGTH) {
    io.err(`hisbridge console hash-password: use at least ${MIN_PASSWORD_LENGTH} characters`);
    return 2;
  }
  io.out(hashPassword(password));
  return 0;
}
