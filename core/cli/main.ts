#!/usr/bin/env node
/**
 * `hisbridge <command>`: each built-in command lives in cmd-<name>.ts and
 * exports `run(argv): Promise<number>` (the exit code). Site extensions add
 * their own (`SiteExtension.commands`, e.g. `gd-ehr` from plugins/gd-ehr);
 * they are listed after the built-ins and loaded only for help or when the
 * name is not a built-in. Names and flags are a contract with tools outside
 * the project: keep them stable.
 */
import type { CliCommand } from '../sdk.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  start: { summary: 'run the engine: start [--config F] [--routes DIR] [--data-dir D] [--mllp-port P] [--http-port P] [--no-simulators]', load: () => import('./cmd-start.js') },
  validate: { summary: 'check route files: validate [FILES|DIR] (prints file:line:col: message)', load: () => import('./cmd-validate.js') },
  replay: { summary: 'replay FILES|DIR [--routes DIR] in-process against the simulators, or replay --stored ID[,ID]|--stored-since T to re-queue stored deliveries', load: () => import('./cmd-replay.js') },
  send: { summary: 'send HL7 over MLLP and print the ACKs: send FILE --host H --port P [--tls [--ca F --cert F --key F]]', load: () => import('./cmd-send.js') },
  test: { summary: 'run route test files (routes/*.test.yaml): test [FILES|DIR]', load: () => import('./cmd-test.js') },
  schemas: { summary: 'write schemas/route.schema.json and schemas/hisbridge.schema.json: schemas [--check]', load: () => import('./cmd-schemas.js') },
  sm4: { summary: 'SM4 for joint testing: sm4 encrypt|decrypt --key HEX VALUE', load: () => import('./cmd-sm4.js') },
  messages: { summary: 'browse stored messages: messages search|show', load: () => import('./cmd-messages.js') },
  dlq: { summary: 'dead letters: dlq list | dlq replay ID|--all [--route R]', load: () => import('./cmd-dlq.js') },
  audit: { summary: 'export the audit trail: audit [--since T] [--org C] [--staff N] [--patient ID] [--format csv|jsonl]', load: () => import('./cmd-audit.js') },
  console: { summary: 'web console helpers: console hash-password (reads the password from stdin, prints the hash for console.users)', load: () => import('./cmd-console.js') },
  api: { summary: 'workstation API clients: api hash-token (reads the token from stdin, prints the hash for api.clients[].tokenHash)', load: () => import('./cmd-api.js') },
  errors: { summary: 'list every error code (core and plugin families): errors [--family F] [--json]', load: () => import('./cmd-errors.js') },
  stats: { summary: 'call statistics per institution/route/operation and day: stats [--by org|route|operation] [--since T]', load: () => import('./cmd-stats.js') },
  alerts: { summary: 'alert targets (WeCom, DingTalk, webhook): alerts test [--config F] sends a test message to each, prints OK/FAIL', load: () => import('./cmd-alerts.js') },
};

/** The commands the built-in site extensions declare. A name that is a built-in command's refuses to run. */
async function extensionCommands(): Promise<CliCommand[]> {
  const { registry } = await import('./common.js');
  const out: CliCommand[] = [];
  for (const ext of registry().extensions) {
    for (const c of ext.commands ?? []) {
      if (Object.hasOwn(COMMANDS, c.name)) throw new Error(`command "${c.name}" of site extension "${ext.key}" has the name of a built-in command`);
      out.push(c);
    }
  }
  return out;
}

const stdio = {
  out: (l: string) => process.stdout.write(l + '\n'),
  err: (l: string) => process.stderr.write(l + '\n'),
};

async function usage(): Promise<string> {
  const lines = ['hisbridge: HL7/Kafka/HTTP integration engine for Guangdong hospitals', '', 'usage: hisbridge <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  const extra = await extensionCommands();
  if (extra.length) {
    lines.push('', 'commands from site extensions:');
    for (const c of extra) lines.push(`  ${c.name.padEnd(10)} ${c.summary}`);
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
  const entry = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (entry) {
    const mod = await entry.load();
    return mod.run(rest);
  }
  const ext = (await extensionCommands()).find((c) => c.name === cmd);
  if (ext) return ext.run(rest, stdio);
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
    process.stderr.write(`hisbridge: ${err.code ? `${err.code}: ` : ''}${err.message ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
