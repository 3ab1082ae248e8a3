/**
 * `delivery.deadLetter` was compiled but never read (issue 14, item 6). It is
 * removed: a route file that still has it fails `hisbridge validate` with
 * ROUTE_E_REMOVED_KEY at the key's file:line:column, saying what to use
 * instead, and nothing else about the key (not also "unknown key").
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { routeSchema } from '../../core/routes/schema.js';
import { builtinRegistry } from '../../plugins/index.js';
import { tempFiles } from '../helpers/routes.js';

function validate(args: string[]) {
  const r = spawnSync(process.execPath, [path.resolve('dist/core/cli/main.js'), 'validate', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const route = (name: string, deadLetter: string) =>
  `name: ${name}\nmatch: { events: [ADT^A04] }\nsteps:\n  - log: { message: "got \${msg.controlId}" }\ndelivery:\n  retry: { max: 3 }\n  deadLetter: ${deadLetter}\n`;

describe('delivery.deadLetter is removed', () => {
  it('validate refuses it, true or false, at the key with what to use instead', () => {
    const dir = tempFiles({
      'a.yaml': route('a', 'true'),
      'b.yaml': route('b', 'false'),
      'c.yaml': `routes:\n  - name: c1\n    match: { events: [ADT^A04] }\n    steps:\n      - log: { message: x }\n    delivery: { deadLetter: true, retry: { max: 2 } }\n`,
    });
    const r = validate([dir]);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    const says = 'delivery.deadLetter was removed: failed deliveries always go to the dead-letter list (hisbridge dlq list / dlq replay); delete the line. To give up sooner, lower delivery.retry.max (docs/routes.md#removed-keys)';
    expect(lines).toContain(`${path.join(dir, 'a.yaml')}:7:3: ${says}`);
    expect(lines).toContain(`${path.join(dir, 'b.yaml')}:7:3: ${says}`);
    expect(lines).toContain(`${path.join(dir, 'c.yaml')}:6:17: ${says}`);
    expect(r.err).not.toMatch(/unknown key "deadLetter"/);
    expect(lines).toHaveLength(3);
  });

  it('the same route without the key is valid', () => {
    const dir = tempFiles({ 'a.yaml': route('a', 'true').replace(/ {2}deadLetter: true\n/, '') });
    const r = validate([dir]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('the route schema (schemas/route.schema.json) no longer offers it', () => {
    const text = JSON.stringify(routeSchema(builtinRegistry().plugins));
    expect(text).not.toContain('"deadLetter"');
  });
});
