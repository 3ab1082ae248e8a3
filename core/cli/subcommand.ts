/**
 * The argument parsing shared by `hisbridge <command> <subcommand> [flags]`
 * commands, built-in (`api hash-token`, `console hash-password`) or declared
 * by a site extension (`gd-ehr viewer-url`; re-exported by core/sdk): each
 * had its own copy of the parse / --help / "expected the subcommand" block.
 */
import { parseArgs } from 'node:util';
import type { CliIo } from '../sdk.js';

/** Flags of a command, as node:util parseArgs takes them. */
export type CliFlags = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface SubcommandSpec {
  /** The command's name, for messages: `hisbridge <command>: ...`. */
  command: string;
  /** The subcommands it takes (exactly one of them, as the only positional argument). */
  subcommands: readonly string[];
  /** Printed by --help and after a usage error. */
  usage: string;
  /** Its flags; `--help`/`-h` is added. */
  flags?: CliFlags;
}

export interface ParsedSubcommand {
  subcommand: string;
  values: Record<string, string | boolean | undefined>;
}

/**
 * Parses `argv` (the arguments after the command's name). `--help` prints the
 * usage and gives exit code 0; an unknown or malformed flag, or anything but
 * one of the subcommands, prints the reason and the usage to stderr and gives
 * exit code 2. Otherwise returns the subcommand and the flag values.
 */
export function parseSubcommand(argv: string[], spec: SubcommandSpec, io: CliIo): ParsedSubcommand | number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...spec.flags, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    io.err(`hisbridge ${spec.command}: ${(e as Error).message}`);
    io.err(spec.usage);
    return 2;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.out(spec.usage);
    return 0;
  }
  const [subcommand] = parsed.positionals;
  if (parsed.positionals.length !== 1 || !spec.subcommands.includes(subcommand!)) {
    io.err(`hisbridge ${spec.command}: expected the subcommand ${spec.subcommands.join(' or ')}`);
    io.err(spec.usage);
    return 2;
  }
  return { subcommand: subcommand!, values };
}
