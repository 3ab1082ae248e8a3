/**
 * Listener names are unique: routes name sources by them, and a file source
 * keeps its progress logs under <dataDir>/sources/<name>/, so two listeners
 * sharing a name would share one work area and one progress directory.
 * Found by the issue 13 acceptance probe: both `validate` and `start` took
 * two `his-http` (and two `lis-drop`) entries without a word.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { builtinRegistry } from '../../plugins/index.js';
import { tempFiles } from '../helpers/routes.js';

const CLI = path.resolve('dist/core/cli/main.js');
const ROUTE = 'name: r1\nmatch: { events: [ADT^A04] }\nsteps:\n  - log: { message: "got ${msg.controlId}" }\n';

function loadIssues(file: string): string[] {
  const reg = builtinRegistry();
  try {
    loadSiteConfig(file, reg.extensions, {}, process.env, reg.sources);
  } catch (e) {
    if (e instanceof LoadError) return e.issues.map(String);
    throw e;
  }
  return [];
}

describe('listener names', () => {
  it('a name used twice is refused at the second entry\'s name, whatever the types', () => {
    const dir = tempFiles({
      'hisbridge.yaml':
        'listeners:\n' +
        '  - { name: his-http, type: http, path: /hl7/x }\n' +
        '  - { name: his-http, type: http, path: /hl7/y }\n' +
        '  - { name: lis-drop, type: file, dir: ./inbox }\n' +
        '  - name: lis-drop\n    type: file\n    dir: ./inbox2\n',
    });
    const issues = loadIssues(path.join(dir, 'hisbridge.yaml'));
    expect(issues).toHaveLength(2);
    expect(issues[0]).toBe(`${path.join(dir, 'hisbridge.yaml')}:3:13: listeners[1].name "his-http" is already the name of listeners[0]: each listener needs its own name`);
    expect(issues[1]).toMatch(/hisbridge\.yaml:5:11: listeners\[3\]\.name "lis-drop" is already the name of listeners\[2\]/);
  });

  it('an unnamed MLLP listener whose default name is taken is refused too', () => {
    // The second entry without a name is called mllp-2.
    const dir = tempFiles({ 'hisbridge.yaml': 'listeners:\n  - { name: mllp-2, port: 0 }\n  - { port: 0 }\n' });
    const issues = loadIssues(path.join(dir, 'hisbridge.yaml'));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/hisbridge\.yaml:3:\d+: listeners\[1\]\.name "mllp-2" is already the name of listeners\[0\]/);
  });

  it('distinct names load', () => {
    const dir = tempFiles({ 'hisbridge.yaml': 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: his-http, type: http, path: /hl7/his }\n  - { name: lis-drop, type: file, dir: ./inbox }\n' });
    expect(loadIssues(path.join(dir, 'hisbridge.yaml'))).toEqual([]);
  });

  it('validate --config exits 1 naming the file, line and column; start refuses before binding anything', () => {
    const dir = tempFiles({
      'r1.yaml': ROUTE,
      'hisbridge.yaml': 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: mllp, type: http, path: /hl7/his }\n',
    });
    const site = path.join(dir, 'hisbridge.yaml');
    const v = spawnSync(process.execPath, [CLI, 'validate', '--config', site, path.join(dir, 'r1.yaml')], { encoding: 'utf8' });
    expect(v.status).toBe(1);
    expect(v.stderr).toContain(`${site}:3:13: listeners[1].name "mllp" is already the name of listeners[0]`);
    const s = spawnSync(process.execPath, [CLI, 'start', '--config', site, '--routes', dir, '--data-dir', path.join(dir, 'data'), '--mllp-port', '0', '--http-port', '0', '--no-simulators'], { encoding: 'utf8', timeout: 20_000 });
    expect(s.status).toBe(1);
    expect(s.stderr).toContain('listeners[1].name "mllp" is already the name of listeners[0]');
  });

  it('an http listener with http.enabled false is refused at load, naming its type line (validate sees it too)', () => {
    const dir = tempFiles({ 'hisbridge.yaml': 'http: { enabled: false }\nlisteners:\n  - { name: mllp, port: 0 }\n  - { name: his-http, type: http, path: /hl7/his }\n' });
    const issues = loadIssues(path.join(dir, 'hisbridge.yaml'));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/hisbridge\.yaml:4:\d+: listeners\[1\] "his-http" \(type http\) is mounted on the engine's HTTP server, but http\.enabled is false/);
  });
});

describe('database listener refused: statement', () => {
  it('a refused: that is not a non-empty statement naming :cursor is refused at its line:column', () => {
    const head = (v: string) =>
      'listeners:\n' +
      `  - { name: his-view, type: database, client: pg, connection: "postgres://h/db", query: "SELECT * FROM t WHERE id > :cursor", cursor: id, refused: ${v} }\n`;
    for (const bad of ['42', '""', '"INSERT INTO err (reason) VALUES (:reason)"']) {
      const dir = tempFiles({ 'hisbridge.yaml': head(bad) });
      const issues = loadIssues(path.join(dir, 'hisbridge.yaml'));
      expect(issues.length, bad).toBeGreaterThan(0);
      expect(issues.join('\n'), bad).toMatch(/hisbridge\.yaml:2:\d+: refused (must be string|must NOT have fewer than 1 characters|does not match :cursor)/);
    }
    const ok = tempFiles({ 'hisbridge.yaml': head('"INSERT INTO err (c, r) VALUES (:cursor, :reason)"') });
    expect(loadIssues(path.join(ok, 'hisbridge.yaml')).filter((i) => /refused/.test(i))).toEqual([]);
  });
});
