#!/usr/bin/env node
/**
 * What `hisbridge backup` costs a busy store (docs/operations.md, "Backups
 * and recovery"): fills a WAL store with N thousand 1 KB rows (default 300:
 * about 410 MB),
 * measures a writer process committing one row per millisecond with
 * synchronous=FULL (as the engine does) for 10 s, then again while
 * `node dist/core/cli/main.js backup` copies the store to the same disk, and
 * prints both latency summaries and the backup's own line.
 *
 *   npm run build && node scripts/backup-impact.mjs [N]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const thousands = Number(process.argv[2] ?? 300);
const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-backup-impact-'));
const data = path.join(dir, 'data');

const WRITER = `
const Database = require(${JSON.stringify(path.resolve('node_modules/better-sqlite3'))});
const [dir, mode, arg] = process.argv.slice(1);
require('fs').mkdirSync(dir, { recursive: true });
const db = new Database(dir + '/hisbridge.db');
db.pragma('journal_mode = WAL'); db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, control_id TEXT, raw BLOB)');
const ins = db.prepare('INSERT INTO messages (control_id, raw) VALUES (?, ?)');
const blob = Buffer.alloc(1024, 7);
if (mode === 'fill') {
  const tx = db.transaction((n) => { for (let i = 0; i < n; i++) ins.run('F' + i, blob); });
  for (let k = 0; k < Number(arg); k++) tx(1000);
  db.pragma('wal_checkpoint(TRUNCATE)');
  process.exit(0);
}
const lat = []; const end = Date.now() + Number(arg);
(function tick() {
  const t = performance.now(); ins.run('W', blob); lat.push(performance.now() - t);
  if (Date.now() < end) return setTimeout(tick, 1);
  lat.sort((a, b) => a - b);
  const q = (x) => +lat[Math.floor(x * (lat.length - 1))].toFixed(1);
  console.log(JSON.stringify({ commits: lat.length, p50Ms: q(0.5), p99Ms: q(0.99), over100Ms: lat.filter((x) => x > 100).length, maxMs: q(1) }));
})();
`;

function writer(mode, arg) {
  return spawn(process.execPath, ['-e', WRITER, data, mode, String(arg)], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function output(child) {
  return new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('close', () => resolve(out.trim()));
  });
}

try {
  await output(writer('fill', thousands));
  const alone = await output(writer('run', 10_000));
  const busy = writer('run', 14_000);
  const during = output(busy);
  await new Promise((r) => setTimeout(r, 1000));
  const b = spawnSync(process.execPath, ['dist/core/cli/main.js', 'backup', path.join(dir, 'copy.db'), '--data-dir', data], { encoding: 'utf8' });
  console.log(JSON.stringify({ rows: thousands * 1000, writerAlone: JSON.parse(alone), writerDuringBackup: JSON.parse(await during), backup: b.stdout.trim(), backupExit: b.status }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
