/**
 * `hisbridge api hash-token` and the `hisbridge start` refusal to expose the
 * workstation APIs on a LAN address without API clients, through the built
 * CLI (run `npm run build` first).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiGate, hashApiToken } from '../../core/http/api-auth.js';
import { spawnEngine } from '../helpers/proc.js';

function hisbridge(args: string[], input: string, timeout = 20_000) {
  const r = spawnSync(process.execPath, [path.resolve('dist/core/cli/main.js'), ...args], { encoding: 'utf8', input, timeout, env: { ...process.env, HISBRIDGE_LOG_LEVEL: 'warn' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const TOKEN = 'a3f1c0de9b8a7f6e5d4c3b2a19081726354453627180';

describe('hisbridge api hash-token', () => {
  it('prints a sha256: hash the API gate accepts for that token only', () => {
    const r = hisbridge(['api', 'hash-token'], `${TOKEN}\n`);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const hash = r.out.trim();
    expect(r.out.split('\n').filter(Boolean)).toHaveLength(1);
    expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hash).toBe(hashApiToken(TOKEN));
    expect(hash).not.toContain(TOKEN);
    const gate = new ApiGate({ open: false, clients: [{ name: 'c', tokenHash: hash }] });
    expect(gate.check('gd-ehr', `Bearer ${TOKEN}`, '10.0.0.1')).toEqual({ ok: true, client: 'c' });
    expect(gate.check('gd-ehr', `Bearer ${TOKEN}x`, '10.0.0.1').ok).toBe(false);
  });

  it('reads only the first line (CRLF too)', () => {
    expect(hisbridge(['api', 'hash-token'], `${TOKEN}\r\nsecond\n`).out.trim()).toBe(hashApiToken(TOKEN));
  });

  it('exits 2 with a message and no output for no token, a short token, a token with spaces, or an unknown subcommand', () => {
    for (const [input, msg] of [['', 'no token on stdin'], ['\n', 'no token on stdin'], ['short-token\n', 'at least 32 characters'], [`${TOKEN} with spaces\n`, 'printable ASCII']] as const) {
      const r = hisbridge(['api', 'hash-token'], input);
      expect(r.code, input).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain(msg);
    }
    const bad = hisbridge(['api', 'hash-tokens'], `${TOKEN}\n`);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('expected the subcommand hash-token');
  });

  it('has help text, and is listed by hisbridge --help', () => {
    const h = hisbridge(['api', '--help'], '');
    expect(h.code).toBe(0);
    expect(h.out).toContain('api.clients[].tokenHash');
    expect(hisbridge(['--help'], '').out).toMatch(/\n {2}api +.*hash-token/);
  });
});

describe('hisbridge start and the HTTP bind address', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-start-api-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const config = (name: string, yaml: string) => {
    const f = path.join(dir, name);
    writeFileSync(f, yaml);
    return f;
  };
  const common = (f: string) => ['--config', f, '--mllp-port', '0', '--http-port', '0', '--data-dir', path.join(dir, `data-${path.basename(f)}`), '--routes', path.resolve('routes')];

  it('refuses a non-loopback http.host without api.clients, naming the fix, and exits non-zero', () => {
    const f = config('lan.yaml', 'http:\n  host: 0.0.0.0\n');
    const r = hisbridge(['start', ...common(f)], '');
    expect(r.code).toBe(1);
    expect(r.err).toContain('refusing to start');
    expect(r.err).toContain('api.clients');
    expect(r.err).toContain('api.open');
    expect(r.err).not.toContain('hisbridge ready');
  });

  it('starts on a LAN bind with api.open: true, warning on boot', async () => {
    const f = config('open.yaml', 'http:\n  host: 0.0.0.0\napi:\n  open: true\n');
    const e = await spawnEngine(common(f));
    try {
      expect(e.stderr()).toMatch(/WARNING: api\.open is true/);
    } finally {
      e.child.kill('SIGTERM');
      await e.exited;
    }
  });

  it('starts on a LAN bind with api.clients', async () => {
    const f = config('clients.yaml', `http:\n  host: 0.0.0.0\napi:\n  clients:\n    - { name: ws, tokenHash: "${hashApiToken(TOKEN)}" }\n`);
    const e = await spawnEngine(common(f));
    try {
      expect(e.stderr()).not.toContain('WARNING');
    } finally {
      e.child.kill('SIGTERM');
      await e.exited;
    }
  });

  it('rejects a bad api section at load with the file and a specific message', () => {
    const f = config('bad.yaml', `api:\n  clients:\n    - { name: ws, tokenHash: "${hashApiToken(TOKEN)}", from: [10.1.0.0/33] }\n`);
    const r = hisbridge(['start', ...common(f)], '');
    expect(r.code).toBe(1);
    expect(r.err).toContain('bad.yaml');
    expect(r.err).toContain('bad prefix length');
    const g = config('bad2.yaml', 'api:\n  clients:\n    - { name: ws, tokenHash: "plain-token" }\n');
    const r2 = hisbridge(['start', ...common(g)], '');
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/bad2\.yaml:\d+:\d+/);
  });
});

describe('the API gate (unit)', () => {
  const hash = hashApiToken(TOKEN);
  it('matches CIDR and single addresses, IPv4-mapped IPv6 included', () => {
    const gate = new ApiGate({ open: false, clients: [{ name: 'ws', tokenHash: hash, allow: ['gd-ehr'], from: ['10.1.0.0/16', '192.168.5.7', 'fd00::/8'] }] });
    const ok = (addr: string) => gate.check('gd-ehr', `Bearer ${TOKEN}`, addr).ok;
    expect(ok('10.1.200.3')).toBe(true);
    expect(ok('::ffff:10.1.0.9')).toBe(true);
    expect(ok('192.168.5.7')).toBe(true);
    expect(ok('fd00::2')).toBe(true);
    expect(ok('10.2.0.1')).toBe(false);
    expect(ok('192.168.5.8')).toBe(false);
    expect(ok('127.0.0.1')).toBe(false);
    expect(gate.check('recognition', `Bearer ${TOKEN}`, '10.1.0.1')).toMatchObject({ ok: false, status: 403, code: 'API_E_FORBIDDEN' });
    expect(gate.check('gd-ehr', undefined, '10.1.0.1')).toMatchObject({ ok: false, status: 401, code: 'API_E_UNAUTHENTICATED' });
    expect(gate.check('gd-ehr', `Bearer ${'x'.repeat(5000)}`, '10.1.0.1')).toMatchObject({ ok: false, status: 401 });
  });

  it('without clients answers loopback only (IPv4, IPv6, IPv4-mapped); open answers all', () => {
    const gate = new ApiGate({ open: false });
    for (const a of ['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1']) expect(gate.check('stats', undefined, a).ok, a).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', 'fd00::1', undefined]) expect(gate.check('stats', undefined, a)).toMatchObject({ ok: false, status: 403 });
    expect(new ApiGate({ open: true }).check('stats', undefined, '10.0.0.1').ok).toBe(true);
  });
});
