/**
 * `node dist/bench/wal-pages.js [N] [--route sink|gd-ehr]`: where a message's
 * WAL bytes go (issue 15 row 3). Runs the engine with HISBRIDGE_COUNT_SQL=1
 * (checkpoints suspended, so the -wal file only grows), sends N ~1 KB ADT
 * messages over 8 connections after a warm-up, waits until every delivery
 * settled, copies the database and its WAL, and attributes each WAL frame
 * written during the run to the table or index that owns its page (SQLite's
 * dbstat). Prints frames per message by b-tree and messages per commit.
 * Routes: `sink` (the bench's row-3 route: one http step to a no-op sink in
 * another process) or `gd-ehr` (row 1's consented registrations, one
 * provincial authorization each, audited with the patient's hash).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { ingressRoute, startEngine } from './lib/engine.js';
import { authRoute, startGdEhrRig } from './lib/gdehr.js';
import { closedLoop } from './lib/load.js';
import { MessageFactory } from './lib/messages.js';
import { startSink } from './lib/servers.js';
import { runTag } from './scenarios/mllp-setup.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { route: { type: 'string' } } });
const n = Number(positionals[0] ?? 2000);
const routeKind = values.route ?? 'sink';
if (!Number.isInteger(n) || n < 1 || (routeKind !== 'sink' && routeKind !== 'gd-ehr')) {
  process.stderr.write('usage: node dist/bench/wal-pages.js [N] [--route sink|gd-ehr]\n');
  process.exit(2);
}

interface Frame {
  page: number;
  commit: boolean;
}

function framesOf(file: string, from: number): { frames: Frame[]; pageSize: number; end: number } {
  const buf = readFileSync(file);
  const pageSize = buf.readUInt32BE(8);
  const frames: Frame[] = [];
  let off = Math.max(32, from);
  for (; off + 24 + pageSize <= buf.length; off += 24 + pageSize) frames.push({ page: buf.readUInt32BE(off), commit: buf.readUInt32BE(off + 4) !== 0 });
  return { frames, pageSize, end: off };
}

const env = { HISBRIDGE_COUNT_SQL: '1' };
const sink = routeKind === 'sink' ? await startSink() : undefined;
const rig = routeKind === 'gd-ehr' ? await startGdEhrRig({ route: authRoute(), env }) : undefined;
const engine = rig ? rig.engine : await startEngine({ routes: { 'ingress.yaml': ingressRoute(sink!.url) }, env });
const tmp = mkdtempSync(path.join(tmpdir(), 'hb-wal-pages-'));
try {
  const wal = path.join(engine.dir, 'data', 'hisbridge.db-wal');
  const warm = await closedLoop(engine.mllp, { connections: 8, messages: 300, factory: new MessageFactory('adt', runTag()), maxMs: 60_000 });
  if (warm.acked < 300) throw new Error(`warm-up: ${warm.acked}/300 acked`);
  await engine.waitPending((p) => p === 0, 60_000);
  await new Promise((r) => setTimeout(r, 500));
  const start = framesOf(wal, 0).end;
  const r = await closedLoop(engine.mllp, { connections: 8, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 300_000 });
  await engine.waitPending((p) => p === 0, 120_000);
  await new Promise((r2) => setTimeout(r2, 500));
  copyFileSync(path.join(engine.dir, 'data', 'hisbridge.db'), path.join(tmp, 'copy.db'));
  copyFileSync(wal, path.join(tmp, 'copy.db-wal'));
  const { frames, pageSize } = framesOf(path.join(tmp, 'copy.db-wal'), start);
  const db = new Database(path.join(tmp, 'copy.db'), { readonly: true });
  const owner = new Map<number, string>();
  for (const row of db.prepare('SELECT name, pageno FROM dbstat').iterate() as Iterable<{ name: string; pageno: number }>) owner.set(row.pageno, row.name);
  db.close();
  const by = new Map<string, number>();
  let commits = 0;
  for (const f of frames) {
    const name = owner.get(f.page) ?? '(free or new)';
    by.set(name, (by.get(name) ?? 0) + 1);
    if (f.commit) commits++;
  }
  const per = (x: number) => (x / r.acked).toFixed(2);
  process.stdout.write(`${r.acked} messages acked, page size ${pageSize}, ${frames.length} frames (${per(frames.length)} per message, ${((frames.length * (pageSize + 24)) / r.acked / 1024).toFixed(2)} KB), ${commits} commits (${(r.acked / commits).toFixed(1)} messages per commit)\n`);
  for (const [name, k] of [...by].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${name.padEnd(28)} ${per(k).padStart(6)} frames/msg  ${(k / commits).toFixed(2).padStart(6)} per commit\n`);
} finally {
  await Promise.allSettled([rig ? rig.close() : engine.stop(), sink?.child.stop()]);
  rmSync(tmp, { recursive: true, force: true });
}
