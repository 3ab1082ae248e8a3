/**
 * Site extensions declare their health probe and their CLI subcommands
 * (issue 14, item 1): `hisbridge gd-ehr ...` comes from plugins/gd-ehr, the
 * CLI lists and dispatches extension commands, and /healthz `remotes` asks
 * each extension what to probe instead of a table of section keys in core.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Registry, type CliCommand, type SiteExtension } from '../../core/sdk.js';
import { builtinRegistry } from '../../plugins/index.js';
import { cli } from '../helpers/cli.js';
import { startEngine } from '../helpers/engine.js';
import { GUIDE_KEY } from '../gd-ehr/helpers.js';

const GUIDE_CIPHER_START = '55d0dad78cfe0a426b78632a08adce38';
const VIEWER_ARGS = ['viewer-url', '--key', GUIDE_KEY, '--app-id', 'ff80', '--org-code', 'o1', '--staff-no', 'a1n', '--staff-name', 'pn2', '--card-type', '01', '--idcard', '64212419560933091T', '--patient-name', 'N1', '--patient-id', 'd1', '--call-sys-code', 'zhspt'];

function extension(key: string, extra: Partial<SiteExtension> = {}): SiteExtension {
  return { key, summary: `${key} test platform`, configSchema: { type: 'object', properties: { url: { type: 'string' } }, additionalProperties: false }, defaults: () => ({}), ...extra };
}

const noop = (name: string): CliCommand => ({ name, summary: 'x', run: async () => 0 });

describe('extension CLI commands through the real CLI process', () => {
  it('`hisbridge --help` lists gd-ehr under the site extensions, not the built-ins', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    const [builtins, fromExtensions] = r.stdout.split('commands from site extensions:');
    expect(builtins).not.toMatch(/^\s+gd-ehr\s/m);
    expect(fromExtensions).toMatch(/^ {2}gd-ehr {5}build a provincial viewer URL: gd-ehr viewer-url --key HEX \.\.\.$/m);
  });

  it('`hisbridge gd-ehr viewer-url ...` prints the guide-vector URL, exit 0', async () => {
    const r = await cli(['gd-ehr', ...VIEWER_ARGS, '--base-url', 'https://qmjk.gd.gov.cn/gdehr/privilege/getPrivilege']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^https://qmjk\\.gd\\.gov\\.cn/gdehr/privilege/getPrivilege\\?param=${GUIDE_CIPHER_START}[0-9a-f]+&appId=ff80$`));
  });

  it('keeps the exit codes: usage error 2, refused value 1 (no value echoed), --help 0', async () => {
    const missing = await cli(['gd-ehr', 'viewer-url', '--key', GUIDE_KEY]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^hisbridge gd-ehr: missing --app-id/);
    const unsafe = await cli(['gd-ehr', ...VIEWER_ARGS.map((a) => (a === 'pn2' ? 'pn2&patientId=x' : a))]);
    expect(unsafe.code).toBe(1);
    expect(unsafe.stderr.split('\n')[0]).toBe('hisbridge gd-ehr: GDEHR_E_UNSAFE_VALUE: value of staffName contains "&", "=" or a control character');
    expect(unsafe.stdout).toBe('');
    const help = await cli(['gd-ehr', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: hisbridge gd-ehr viewer-url/);
  });

  it('an unknown command, including a name inherited from Object.prototype, is exit 2 with the usage', async () => {
    for (const name of ['no-such-command', 'constructor', '__proto__']) {
      const r = await cli([name]);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toContain(`hisbridge: unknown command "${name}"`);
      expect(r.stderr, name).toContain('commands from site extensions:');
    }
  });
});

describe('Registry: extension command names', () => {
  it('the built-in registry declares gd-ehr from the gdEhr extension', () => {
    const owners = builtinRegistry().extensions.flatMap((e) => (e.commands ?? []).map((c) => `${e.key}:${c.name}`));
    expect(owners).toEqual(['gdEhr:gd-ehr']);
  });

  it('refuses a command name declared twice, or one that is not lower-case letters, digits and dashes', () => {
    const reg = new Registry().extension(extension('szEhr', { commands: [noop('sz-ehr')] }));
    expect(() => reg.extension(extension('gzEhr', { commands: [noop('sz-ehr')] }))).toThrow('command "sz-ehr" of site extension "gzEhr" is also declared by "szEhr"');
    expect(() => new Registry().extension(extension('a', { commands: [noop('x'), noop('x')] }))).toThrow('command "x" of site extension "a" is also declared by "a"');
    expect(() => new Registry().extension(extension('b', { commands: [noop('Sz Ehr')] }))).toThrow('must be lower-case letters, digits and dashes');
  });
});

describe('SiteExtension.health feeds /healthz remotes', () => {
  it('an extension outside core gets its remote probed; gdEhr and recognition keep their shape', async () => {
    const remote = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => remote.listen(0, '127.0.0.1', resolve));
    const port = (remote.address() as net.AddressInfo).port;
    const reg = builtinRegistry().extension(extension('szEhr', {
      defaults: () => ({ url: `http://127.0.0.1:${port}/auth` }),
      health: (site) => (typeof site.url === 'string' ? { url: site.url } : undefined),
    }));
    const t = await startEngine({ registry: reg, siteYaml: `szEhr:\n  url: http://127.0.0.1:${port}/auth\n` });
    try {
      await t.engine.ops.remotes.refresh();
      const h = (await (await fetch(`${t.httpUrl}/healthz`)).json()) as { remotes: Record<string, { target: string; reachable?: boolean }> };
      expect(h.remotes.szEhr).toMatchObject({ target: `127.0.0.1:${port}`, reachable: true });
      expect(h.remotes.gdEhr?.target).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(h.remotes.recognition?.target).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(Object.keys(h.remotes).sort()).toEqual(['gdEhr', 'recognition', 'szEhr']);
    } finally {
      await t.stop();
      remote.close();
    }
  });
});
