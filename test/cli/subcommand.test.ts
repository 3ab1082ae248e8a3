/**
 * parseSubcommand (core/cli/subcommand.ts, exported by core/sdk): the
 * `hisbridge <command> <subcommand> [flags]` parsing that `api`, `console`
 * and the gd-ehr extension's `gd-ehr` share. Exit codes: --help 0, usage
 * errors 2 with the reason and the usage on stderr.
 */
import { describe, expect, it } from 'vitest';
import { parseSubcommand, type CliIo } from '../../core/sdk.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const sink: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l) };
  return { sink, out, err };
}

const spec = { command: 'demo', subcommands: ['make', 'check'], usage: 'usage: hisbridge demo make|check [--name N]', flags: { name: { type: 'string' as const } } };

describe('parseSubcommand', () => {
  it('returns the subcommand and the flag values', () => {
    const o = io();
    expect(parseSubcommand(['check', '--name', 'x'], spec, o.sink)).toEqual({ subcommand: 'check', values: { name: 'x' } });
    expect([...o.out, ...o.err]).toEqual([]);
  });

  it('--help and -h print the usage on stdout: exit 0', () => {
    for (const h of ['--help', '-h']) {
      const o = io();
      expect(parseSubcommand([h], spec, o.sink)).toBe(0);
      expect(o.out).toEqual([spec.usage]);
      expect(o.err).toEqual([]);
    }
  });

  it('an unknown flag: the reason and the usage on stderr, exit 2', () => {
    const o = io();
    expect(parseSubcommand(['make', '--nope'], spec, o.sink)).toBe(2);
    expect(o.err[0]).toMatch(/^hisbridge demo: Unknown option '--nope'/);
    expect(o.err[1]).toBe(spec.usage);
    expect(o.out).toEqual([]);
  });

  it('no subcommand, another word, or two of them: names the subcommands, exit 2', () => {
    for (const argv of [[], ['destroy'], ['make', 'check'], ['constructor']]) {
      const o = io();
      expect(parseSubcommand(argv, spec, o.sink), argv.join(' ')).toBe(2);
      expect(o.err).toEqual(['hisbridge demo: expected the subcommand make or check', spec.usage]);
    }
  });
});
