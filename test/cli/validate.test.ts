/** `hisbridge validate` through the CLI surface. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { tempFiles } from '../helpers/routes.js';

function validate(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [path.resolve('dist/core/cli/main.js'), 'validate', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const ROUTE = 'name: k1\nsources: [kafka-events]\nmatch: { events: [ADT^A04] }\nsteps:\n  - log: { message: "got ${msg.controlId}" }\n';

describe('hisbridge validate', () => {
  it('accepts the shipped default routes', () => {
    const r = validate(['routes']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok: \d+ routes in \d+ files/);
  });

  it('exits 1 with file:line:col lines for every problem', () => {
    const dir = tempFiles({
      'a.yaml': 'name: a\nmatch: { events: [ADT^A04] }\nack: later\nsteps:\n  - set: { x: "${PID-0.1}" }\n',
      'b.yaml': 'name: b\nmatch: { events: [ADT^A04]\nsteps: []\n',
    });
    const r = validate([dir]);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines.every((l) => /^.+\.yaml:\d+:\d+: /.test(l))).toBe(true);
    expect(r.err).toContain(`${path.join(dir, 'a.yaml')}:3:6: ack must be one of: on-receive, on-complete`);
    expect(r.err).toContain(`${path.join(dir, 'b.yaml')}:`);
  });

  it('knows the Kafka source names declared in the site config', () => {
    const dir = tempFiles({
      'k1.yaml': ROUTE,
      'hisbridge.yaml': 'kafka:\n  brokers: [127.0.0.1:9092]\n  topics:\n    - { name: his.events, source: kafka-events, format: json }\n',
    });
    expect(validate([path.join(dir, 'k1.yaml')]).code).toBe(1);
    const ok = validate([path.join(dir, 'k1.yaml'), '--config', path.join(dir, 'hisbridge.yaml')]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
  });
});
