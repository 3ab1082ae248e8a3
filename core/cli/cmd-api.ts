/**
 * `hisbridge api hash-token`: prints the hash for `api.clients[].tokenHash`
 * (the format core/http/api-auth.ts checks). The token is read from stdin,
 * one line, so it never lands in the shell history or the process list;
 * typed at a terminal it is not echoed.
 */
import { parseSubcommand } from './subcommand.js';
import { hashApiToken, MIN_TOKEN_LENGTH } from '../http/api-auth.js';
import { readHiddenLine, readPipedLine } from './cmd-console.js';
import { stdio, type CliIo } from './cmd-sm4.js';

const USAGE = `usage: hisbridge api hash-token
Reads an API client's token from stdin (one line; not echoed at a terminal) and
prints the hash to put in api.clients[].tokenHash. The token is a random secret
of at least ${MIN_TOKEN_LENGTH} characters that you give to that client only, e.g.:
  TOKEN=$(openssl rand -hex 32)
  printf '%s\\n' "$TOKEN" | npx hisbridge api hash-token
The client sends it as "Authorization: Bearer <token>".`;

/** `hisbridge api <subcommand>`; returns the exit code (2 for usage errors and unusable tokens). */
export async function run(argv: string[], io: CliIo = stdio): Promise<number> {
  const parsed = parseSubcommand(argv, { command: 'api', subcommands: ['hash-token'], usage: USAGE }, io);
  if (typeof parsed === 'number') return parsed;
  const token = process.stdin.isTTY ? await readHiddenLine(process.stdin, process.stderr, 'token') : await readPipedLine(process.stdin);
  if (token === undefined) return 130;
  if (token.length === 0) {
    io.err('hisbridge api hash-token: no token on stdin (give one line, e.g. printf \'%s\\n\' "$TOKEN" | hisbridge api hash-token)');
    return 2;
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    io.err(`hisbridge api hash-token: use a random token of at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)`);
    return 2;
  }
  if (!/^[\x21-\x7e]+$/.test(token)) {
    io.err('hisbridge api hash-token: the token must be printable ASCII without spaces (it travels in an HTTP header)');
    return 2;
  }
  io.out(hashApiToken(token));
  return 0;
}
