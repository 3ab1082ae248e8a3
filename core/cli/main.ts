#!/usr/bin/env node
/**
 * `hisbridge <command>`: one list of CliCommand, one lookup, one dispatch.
 * Each built-in command lives in cmd-<name>.ts, exports `run(argv, io?)`
 * (resolving to the exit code) and is loaded on first use. Site extensions
 * add their own (`SiteExtension.commands`, e.g. `gd-ehr` from
 * plugins/gd-ehr); they are listed after the built-ins and loaded only for
 * help or when the name is not a built-in. Names and flags are a contract
 * with tools outside the project: keep them stable.
 */
import type { CliCommand, CliIo } from '../sdk.js';

/** A built-in command, loaded on first use: cmd-<name>.ts exports `run(argv, io?)`. */
function builtin(name: string, summary: string, load: () => Promise<{ run(argv: string[], io?: CliIo): Promise<number> }>): CliCommand {
  return { name, summary, run: async (argv, io) => (await load()).run(argv, io) };
}

const BUILTINS: readonly CliCommand[] = [
  builtin('start', 'run the engine: start [--config F] [--routes DIR] [--data-dir D] [--mllp-port P] [--http-port P] [--no-simulators]', () => import('./cmd-start.js')),
  builtin('validate', 'check route files: validate [FILES|DIR] (prints file:line:col: message)', () => import('./cmd-validate.js')),
  builtin('replay', 'replay FILES|DIR [--routes DIR] in-process against the simulators, or replay --stored ID[,ID]|--stored-since T to re-queue stored deliveries', () => import('./cmd-replay.js')),
  builtin('send', 'send HL7 over MLLP and print the ACKs: send FILE --host H --port P [--tls [--ca F --cert F --key F]]', () => import('./cmd-send.js')),
  builtin('test', 'run route test files (routes/*.test.yaml): test [FILES|DIR]', () => import('./cmd-test.js')),
  builtin('schemas', 'write schemas/route.schema.json and schemas/hisbridge.schema.json: schemas [--check]', () => import('./cmd-schemas.js')),
  builtin('sm4', 'SM4 for joint testing: sm4 encrypt|decrypt --key HEX VALUE', () => import('./cmd-sm4.js')),
  builtin('messages', 'browse stored messages: messages search|show', () => import('./cmd-messages.js')),
  builtin('dlq', 'dead letters: dlq list | dlq replay ID|--all [--route R]', () => import('./cmd-dlq.js')),
  builtin('routes', 'pause a route\'s delivery (messages still stored and ACKed): routes list | routes pause NAME [--reason T] | routes resume NAME', () => import('./cmd-routes.js')),
  builtin('audit', 'export the audit trail: audit [--since T] [--org C] [--staff N] [--patient ID] [--format csv|jsonl]', () => import('./cmd-audit.js')),
  builtin('console', 'web console helpers: console hash-password (reads the password from stdin, prints the hash for console.users)', () => import('./cmd-console.js')),
  builtin('api', 'workstation API clients: api hash-token (reads the token from stdin, prints the hash for api.clients[].tokenHash)', () => import('./cmd-api.js')),
  builtin('errors', 'list every error code (core and plugin families): errors [--family F] [--json]', () => import('./cmd-errors.js')),
  builtin('backup', 'copy the store while the engine runs (SQLite online backup): backup DEST [--data-dir D | --config F]', () => import('./cmd-backup.js')),
  builtin('doctor', 'check a site before go-live (config, ports, data dir, fd limit, clock, remotes, TLS): doctor [--config F]', () => import('./cmd-doctor.js')),
  builtin('alerts', 'alert targets (WeCom, DingTalk, webhook): alerts test [--config F] sends a test message to each, prints OK/FAIL', () => import('./cmd-alerts.js')),
  builtin('stats', 'call statistics per institution/route/operation and day: stats [--by org|route|operation] [--since T]', () => import('./cmd-stats.js')),
];

/**
 * The commands the site extensions declare: the built-in ones and those of the
 * external plugins of the site config (`--config F` among the command's
 * arguments, else $HISBRIDGE_CONFIG). A name that is a built-in command's refuses to run.
 */
async function extensionCommands(argv: readonly string[] = []): Promise<CliCommand[]> {
  const { siteRegistry } = await import('./common.js');
  const at = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  const file = at < 0 ? undefined : argv[at]!.startsWith('--config=') ? argv[at]!.slice('--config='.length) : argv[at + 1];
  const out: CliCommand[] = [];
  for (const ext of (await siteRegistry(file)).extensions) {
    for (const c of ext.commands ?? []) {
      if (BUILTINS.some((b) => b.name === c.name)) throw new Error(`command "${c.name}" of site extension "${ext.key}" has the name of a built-in command`);
      out.push(c);
    }
  }
  return out;
}

/** The command named `name`: a built-in, else (loading the plugins only then) a site extension's. Names are compared as strings, never looked up as object keys. */
async function findCommand(name: string, argv: readonly string[]): Promise<CliCommand | undefined> {
  return BUILTINS.find((c) => c.name === name) ?? (await extensionCommands(argv)).find((c) => c.name === name);
}

const stdio: CliIo = {
  out: (l: string) => process.stdout.write(l + '\n'),
  err: (l: string) => process.stderr.write(l + '\n'),
};

async function usage(): Promise<string> {
  const lines = ['hisbridge: HL7/Kafka/HTTP integration engine for Guangdong hospitals', '', 'usage: hisbridge <command> [options]', '', 'commands:'];
  const list = (cs: readonly CliCommand[]) => cs.forEach((c) => lines.push(`  ${c.name.padEnd(10)} ${c.summary}`));
  list(BUILTINS);
  const extra = await extensionCommands();
  if (extra.length) {
    lines.push('', 'commands from site extensions:');
    list(extra);
  }
  lines.push('', 'hisbridge <command> --help shows the options of a command.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write((await usage()) + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-v') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const command = await findCommand(cmd, rest);
  if (command) return command.run(rest, stdio);
  process.stderr.write(`hisbridge: unknown command "${cmd}"\n\n${await usage()}\n`);
  return 2;
}

// A reader that went away (`hisbridge audit | head`) is not a crash: the rest of the output is dropped and the command finishes.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const err = e as { code?: string; message?: string };
    // A site config that cannot be loaded (an external plugin's module, say): its file:line:col lines, no stack.
    if (err.code === 'CONFIG_E_LOAD') {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`hisbridge: ${err.code ? `${err.code}: ` : ''}${err.message ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
