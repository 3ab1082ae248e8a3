import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import path from 'node:path';
import { PAUSE_STAMP, RoutePauses } from '../../core/ops/route-pauses.js';
import { DB_FILE } from '../../core/store/sqlite.js';
import { openStore, tempDir } from '../helpers/store.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function setup() {
  const tmp = tempDir();
  const store = openStore(tmp.dir);
  // Two connections as two processes would hold them: the engine's and the CLI's.
  const engine = RoutePauses.open(store.dir);
  const cli = RoutePauses.open(store.dir);
  cleanups.push(tmp.cleanup, () => store.close(), () => engine.close(), () => cli.close());
  return { dir: store.dir, engine, cli };
}

describe('RoutePauses: cached names, re-read when another connection pauses or resumes (issue 15)', () => {
  it('sees a pause and a resume made through another connection at its next call (calls within 1 ms share one check)', async () => {
    const { engine, cli } = setup();
    const later = () => new Promise((r) => setTimeout(r, 3));
    expect(engine.names()).toEqual([]);
    expect(cli.pause('recognition-lab', 'ops')).toBe(true);
    await later();
    expect(engine.names()).toEqual(['recognition-lab']);
    expect(cli.pause('gd-ehr-consent', 'ops')).toBe(true);
    expect(cli.resume('recognition-lab')).toBe(true);
    await later();
    expect(engine.names()).toEqual(['gd-ehr-consent']);
    expect(cli.resume('gd-ehr-consent')).toBe(true);
    await later();
    expect(engine.names()).toEqual([]);
  });

  it('answers from its cache while the stamp is unchanged (no query per call), and the stamp grows by one byte per change', async () => {
    const { dir, engine, cli } = setup();
    expect(engine.names()).toEqual([]);
    // A row written behind the stamp's back (no pause() call) is not seen until the stamp moves or the cache expires:
    // proof that the calls in between read no table.
    const raw = new Database(path.join(dir, DB_FILE));
    cleanups.push(() => raw.close());
    raw.prepare("INSERT INTO route_pauses (route, paused_at, paused_by, reason) VALUES ('hidden', 0, 'x', NULL)").run();
    for (let i = 0; i < 100; i++) expect(engine.names()).toEqual([]);
    await new Promise((r) => setTimeout(r, 3));
    expect(engine.names()).toEqual([]);
    expect(cli.pause('shown', 'ops')).toBe(true);
    await new Promise((r) => setTimeout(r, 3));
    expect(engine.names()).toEqual(['hidden', 'shown']);
    expect(statSync(path.join(dir, PAUSE_STAMP)).size).toBe(1);
    expect(cli.pause('shown', 'ops')).toBe(false);
    expect(statSync(path.join(dir, PAUSE_STAMP)).size).toBe(1);
    expect(cli.resume('shown')).toBe(true);
    expect(statSync(path.join(dir, PAUSE_STAMP)).size).toBe(2);
    expect(statSync(path.join(dir, PAUSE_STAMP)).mode & 0o777).toBe(0o600);
  });
});
