/**
 * `hisbridge validate` (the CLI process) checks code tables and the map and
 * hl7 steps (issue 17): a lookup of a table that does not exist or of a
 * column the table lacks, in any template (set:, a map entry, an http body,
 * an hl7 set), is reported at the file:line:col of the reference; a broken
 * table at the table file's line; a map or hl7 entry that cannot work at
 * the entry's own line.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function validate(args: string[]) {
  const r = spawnSync(process.execPath, [path.resolve('dist/core/cli/main.js'), 'validate', ...args], { encoding: 'utf8', env: { ...process.env, HISBRIDGE_LOG_LEVEL: 'silent' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** routes/ and tables/ side by side in a fresh folder. */
function site(route: string, tables: Record<string, string | Buffer>): { routes: string; tables: string; file: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-tv-'));
  const routes = path.join(root, 'routes');
  const tdir = path.join(root, 'tables');
  mkdirSync(routes);
  mkdirSync(tdir);
  const file = path.join(routes, 'r.yaml');
  writeFileSync(file, route);
  for (const [name, text] of Object.entries(tables)) writeFileSync(path.join(tdir, name), text);
  return { routes, tables: tdir, file };
}

const REFS = `name: r
match: { events: [ORU^R01] }
steps:
  - set: { d: "\${PV1-3.1|lookup:dept.nope}" }
  - plugin: map
    as: x
    config:
      fields:
        a: "\${PV1-3.1|lookup:missing}"
        items:
          each: OBX
          fields:
            name: "\${OBX-3.1|lookup:dept.platformCode}"
            unit: "\${OBX-6.1|lookup:dept.unit}"
  - plugin: http
    config: { url: "http://x.local/", body: { d: "\${PV1-3.1|lookup:ward}" } }
  - plugin: hl7
    config:
      set: { MSH-5: "\${MSH-5|lookup:dept.zz}" }
`;

describe('hisbridge validate: code tables, map and hl7 steps', () => {
  it('reports every missing table and missing column at the reference, exit 1', () => {
    const s = site(REFS, { 'dept.csv': 'hisCode,platformCode\nA,B\n' });
    const r = validate([s.routes]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toEqual([
      `${s.file}:4:15: table dept: no column "nope" (columns: hisCode, platformCode)`,
      `${s.file}:9:12: table missing: no such table (no missing.csv in the tables folder; known: dept)`,
      `${s.file}:14:19: table dept: no column "unit" (columns: hisCode, platformCode)`,
      `${s.file}:16:50: table ward: no such table (no ward.csv in the tables folder; known: dept)`,
      `${s.file}:19:21: table dept: no column "zz" (columns: hisCode, platformCode)`,
    ]);
  });

  it('accepts the same routes once the tables have those columns', () => {
    const cols = 'hisCode,platformCode,nope,unit,zz\nA,B,C,D,E\n';
    const s = site(REFS, { 'dept.csv': cols, 'missing.csv': 'k,v\n', 'ward.csv': 'k,v\n' });
    const r = validate([s.routes]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok: 1 routes in 1 files/);
  });

  it('reports a broken table at its own file:line (duplicate key, bad options, a GBK file read as UTF-8)', () => {
    const route = 'name: r\nmatch: { events: [ORU^R01] }\nsteps:\n  - set: { d: "${PV1-3.1|lookup:dept}" }\n';
    const s = site(route, {
      'dept.csv': 'hisCode,platformCode\nA,B\n"A",C\n',
      'units.csv': 'k,v\ng,克\n',
      'units.yaml': 'missing: sometimes\n',
      'items.csv': Buffer.from([0x6b, 0x2c, 0x76, 0x0a, 0x41, 0x2c, 0xc4, 0xda, 0xbf, 0xc6, 0x0a]),
    });
    const r = validate([s.routes]);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines).toContain(`${path.join(s.tables, 'dept.csv')}:3:1: table dept: key "A" appears twice`);
    expect(lines).toContain(`${path.join(s.tables, 'items.csv')}:1:1: table items: the file is not valid UTF-8 (a GBK file needs charset: gbk in items.yaml)`);
    expect(lines.find((l) => l.startsWith(`${path.join(s.tables, 'units.yaml')}:1:10: `))).toMatch(/missing must be one of: error, keep, default/);
  });

  it('reports a map or hl7 entry that cannot work at the entry', () => {
    const route = `name: r
match: { events: [ORU^R01] }
steps:
  - plugin: map
    as: x
    config:
      fields:
        items:
          each: OBX
          fields:
            ok: { path: OBX-5 }
            bad: { path: OBX-99x }
  - plugin: map
    as: y
    config:
      fields:
        t: { value: "\${OBX-5}", type: money }
  - plugin: hl7
    config:
      remove: [ZCN, MSH]
`;
    const s = site(route, {});
    const r = validate([s.routes]);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${s.file.replace(/[.]/g, '\\.')}:12:26: bad field path "OBX-99x"`));
    expect(lines[1]).toBe(`${s.file}:17:39: type is string, number or date`);
    expect(lines[2]).toBe(`${s.file}:20:21: MSH cannot be removed`);
  });

  it('reports a bad each in an hl7 step, and a missing column used inside a good one, at the entry', () => {
    const route = `name: r
match: { events: [ORU^R01] }
steps:
  - plugin: hl7
    config:
      each: obx
      set: { OBX-5: x }
  - plugin: hl7
    config:
      each: OBX
      set:
        OBX-3.1: "\${OBX-3.1|lookup:items.nope}"
`;
    const s = site(route, { 'items.csv': 'code,platform\nA,B\n' });
    const r = validate([s.routes]);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(`${s.file}:6:13: each names a repeating segment such as OBX (3 upper-case letters or digits), not "obx"`);
    expect(lines[1]).toMatch(new RegExp(`^${s.file.replace(/[.]/g, '\\.')}:12:\\d+: table items: no column "nope"`));
  });

  it('ships an example route whose GBK and UTF-8 tables load', () => {
    const r = validate([path.resolve('examples/lab-forward/routes')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });
});
