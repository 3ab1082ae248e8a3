/**
 * Issue 15's bench harness pieces: pairing math, the results.json entry of
 * paired trials, the README table writer (`--table --write-readme` through
 * the real CLI process), the preloaded SQLite statement counter on a real
 * better-sqlite3 database, the strace log summing and the /proc CPU reader.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { median, runPairs, summarizePairs } from '../../bench/lib/pairs.js';
import { pairedEntry, pairOf, type Results } from '../../bench/lib/result.js';
import { markdownTable } from '../../bench/lib/table.js';
import { replaceTable, TABLE_END, TABLE_START } from '../../bench/lib/readme.js';
import { processCpuUs, statCpuUs } from '../../bench/lib/cpu.js';
import { sumStrace } from '../../bench/scenarios/sql.js';
import { memoryMet, pairCount } from '../../bench/scenarios/targets.js';

const run = promisify(execFile);

describe('pairing math', () => {
  it('takes the median of per-pair ratios, not the ratio of medians, with min and max', () => {
    // A baseline that swings 2x: the pairs show the engine steady at half of it.
    const pairs = [{ engine: 50, baseline: 100 }, { engine: 100, baseline: 200 }, { engine: 60, baseline: 120 }, { engine: 40, baseline: 100 }, { engine: 90, baseline: 150 }];
    const s = summarizePairs('msg/s', 'echo', pairs);
    expect(s.ratios).toEqual([0.5, 0.5, 0.5, 0.4, 0.6]);
    expect(s.median).toBe(0.5);
    expect(s.min).toBe(0.4);
    expect(s.max).toBe(0.6);
    // The ratio of medians would have said 0.5 too here, but not with this one:
    const skew = summarizePairs('msg/s', 'echo', [{ engine: 10, baseline: 20 }, { engine: 100, baseline: 200 }, { engine: 30, baseline: 60 }, { engine: 12, baseline: 30 }]);
    expect(skew.median).toBe(0.5);
    expect(median([10, 100, 30, 12]) / median([20, 200, 60, 30])).not.toBe(0.5);
  });

  it('leaves out pairs with a missing or zero side and reports none as NaN', () => {
    const s = summarizePairs('x', 'b', [{ engine: 1, baseline: 0 }, { engine: NaN, baseline: 2 }, { engine: 3, baseline: 6 }]);
    expect(s.ratios).toEqual([0.5]);
    expect(Number.isNaN(summarizePairs('x', 'b', []).median)).toBe(true);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('alternates which side runs first and drops a pair whose half failed', async () => {
    const order: string[] = [];
    const errors: string[] = [];
    const pairs = await runPairs(4, {
      baseline: async (i) => {
        order.push(`b${i}`);
        return { value: 10 };
      },
      engine: async (i) => {
        order.push(`e${i}`);
        if (i === 2) throw new Error('boom');
        return { value: 5 + i };
      },
    }, (side, i, e) => errors.push(`${side}${i}:${(e as Error).message}`));
    expect(order).toEqual(['b0', 'e0', 'e1', 'b1', 'b2', 'e2', 'e3', 'b3']);
    expect(pairs.map((p) => p.engine.value)).toEqual([5, 6, 8]);
    expect(errors).toEqual(['engine2:boom']);
  });

  it('uses at least 5 pairs in full mode and at most 3 in quick mode', () => {
    const say = () => {};
    expect(pairCount({ quick: false, trials: 3, say })).toBe(5);
    expect(pairCount({ quick: false, trials: 7, say })).toBe(7);
    expect(pairCount({ quick: true, trials: 5, say })).toBe(3);
  });
});

describe('results entry of paired trials', () => {
  it('keeps pair ratios, CPU per message of both sides and the CPU ratio', () => {
    const e = pairedEntry({ name: 'e2e-cpu', scenario: 1, title: 't', unit: 'msg/s', better: 'higher', target: 'x' }, 'echo', [
      { engine: { value: 300, cpuUsPerMsg: 200 }, baseline: { value: 200, cpuUsPerMsg: 250 } },
      { engine: { value: 330, cpuUsPerMsg: 220 }, baseline: { value: 300, cpuUsPerMsg: 200 } },
      { engine: { value: 240, cpuUsPerMsg: 210 }, baseline: { value: 150, cpuUsPerMsg: 300 } },
    ]);
    expect(e.trials).toBe(3);
    expect(e.status).toBe('ok');
    expect(pairOf(e, 'msg/s')).toMatchObject({ ratios: [1.5, 1.1, 1.6], median: 1.5, min: 1.1, max: 1.6, baseline: 'echo' });
    expect(pairOf(e, 'CPU us/msg')).toMatchObject({ ratios: [0.8, 1.1, 0.7], median: 0.8 });
    expect(e.ratios.echo).toBe(1.5);
    expect(e.cpuUsPerMsg).toEqual({ hisbridge: { median: 210, min: 200, max: 220 }, echo: { median: 250, min: 200, max: 300 } });
    expect(e.hisbridge).toEqual({ median: 300, min: 240, max: 330 });
    // JSON round trip: the shape results.json stores.
    expect(JSON.parse(JSON.stringify(e))).toEqual(e);
  });

  it('has no CPU ratio when CPU was not measured, and fails with no pair', () => {
    const e = pairedEntry({ name: 'k', scenario: 5, title: 't', unit: 'records/s', better: 'higher', target: 'x' }, 'raw', [{ engine: { value: 7 }, baseline: { value: 10 } }]);
    expect(e.pairs!.map((p) => p.metric)).toEqual(['records/s']);
    expect(e.cpuUsPerMsg).toBeUndefined();
    const none = pairedEntry({ name: 'k', scenario: 5, title: 't', unit: 'records/s', better: 'higher', target: 'x' }, 'raw', []);
    expect(none.status).toBe('failed');
    expect(none.pairs![0]!.ratios).toEqual([]);
  });

  it('judges the memory row by 1.2x idle or by no growth over the cycles', () => {
    expect(memoryMet(100, [150, 119, 118])).toBe(true);
    expect(memoryMet(100, [150, 152, 154])).toBe(true);
    expect(memoryMet(100, [150, 170, 190])).toBe(false);
    expect(memoryMet(NaN, [1, 2, 3])).toBe(null);
  });
});

const sample: Results = {
  machine: { cpus: 2, cpuModel: 'Test CPU', node: 'v20.0.0', platform: 'linux', date: '2026-12-02T00:00:00.000Z' },
  mode: 'full',
  command: 'npm run bench',
  scenarios: [
    pairedEntry({ name: 'ingress-log-only', scenario: 2, title: 't', unit: 'msg/s', better: 'higher', target: '>= 2 x', met: false, note: 'a | b' }, 'echo+node-hl7-client', [
      { engine: { value: 4000, cpuUsPerMsg: 80 }, baseline: { value: 3000, cpuUsPerMsg: 180 } },
    ]),
  ],
};

describe('README table', () => {
  it('renders pair ratios, spread and CPU per message, escaping pipes', () => {
    const t = markdownTable(sample);
    expect(t).toContain('| 2 | ingress-log-only | msg/s | 4,000 (4,000-4,000) | echo+node-hl7-client 3,000 | 1.33x (1.33-1.33) msg/s vs echo+node-hl7-client, 1 pairs; 0.44x (0.44-0.44) CPU us/msg vs echo+node-hl7-client, 1 pairs | hisbridge 80.0; echo+node-hl7-client 180 | >= 2 x | NO |');
    expect(t).toContain('- ingress-log-only: a | b');
    expect(t).toContain('full mode, 2026-12-02');
  });

  it('replaces only the text between the markers, and refuses a README without them', () => {
    const readme = `# X\n\nintro\n\n${TABLE_START}\nold table\n${TABLE_END}\n\nafter\n`;
    const out = replaceTable(readme, 'NEW');
    expect(out).toBe(`# X\n\nintro\n\n${TABLE_START}\nNEW\n${TABLE_END}\n\nafter\n`);
    expect(replaceTable(out, 'NEWER')).toContain(`${TABLE_START}\nNEWER\n${TABLE_END}`);
    expect(() => replaceTable('# no markers', 'x')).toThrow(/markers/);
    expect(() => replaceTable(`${TABLE_END}\n${TABLE_START}`, 'x')).toThrow(/order/);
  });

  it('the repository README has the markers', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(() => replaceTable(readme, 'x')).not.toThrow();
  });

  it('`run.js --table` prints the table of a results file; --write-readme alone is refused', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'hb-bench-table-')), 'results.json');
    writeFileSync(file, JSON.stringify(sample));
    const { stdout } = await run(process.execPath, ['dist/bench/run.js', '--table', '--out', file], { timeout: 15_000 });
    expect(stdout).toContain('| 2 | ingress-log-only |');
    await expect(run(process.execPath, ['dist/bench/run.js', '--write-readme', '--out', file], { timeout: 15_000 })).rejects.toMatchObject({ code: 2 });
  });
});

describe('SQL statement counter (preloaded into a real process)', () => {
  it('counts run/get/all/iterate/exec/pragma (BEGIN and COMMIT as runs) and transactions of better-sqlite3 on the main thread', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hb-bench-sql-'));
    const out = path.join(dir, 'counts.json');
    const script = path.join(dir, 'work.cjs');
    writeFileSync(script, [
      `const Database = require(${JSON.stringify(path.resolve('node_modules/better-sqlite3'))});`,
      `const db = new Database(${JSON.stringify(path.join(dir, 'x.db'))});`,
      "db.exec('CREATE TABLE t (a INTEGER)');",
      "db.pragma('journal_mode = WAL');",
      "const ins = db.prepare('INSERT INTO t VALUES (?)');",
      'const many = db.transaction((n) => { for (let i = 0; i < n; i++) ins.run(i); });',
      'many(3); many.immediate(2);',
      "db.prepare('SELECT count(*) c FROM t').get();",
      "db.prepare('SELECT a FROM t').all();",
      "for (const r of db.prepare('SELECT a FROM t').iterate()) void r;",
      'db.close();',
    ].join('\n'));
    await run(process.execPath, ['--import', pathToFileURL(path.resolve('dist/bench/lib/count-sql.js')).href, script], { env: { ...process.env, HB_BENCH_SQL_COUNT_FILE: out }, timeout: 15_000 });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ run: 9, get: 1, all: 1, iterate: 1, exec: 1, pragma: 1, transactions: 2, prepare: 4 });
    // 5 inserts + BEGIN and COMMIT of each of the 2 transactions = 9 runs.
  });
});

describe('strace and /proc readers', () => {
  it('sums bytes written to the WAL and the database file and counts syncs, ignoring sockets and other files', () => {
    const log = [
      '101 pwrite64(12</d/hisbridge.db-wal>, ""..., 4120, 32) = 4120',
      '101 pwrite64(12</d/hisbridge.db-wal>, ""..., 24, 4152) = 24',
      '102 pwrite64(11</d/hisbridge.db>, ""..., 4096, 8192) = 4096',
      '101 fdatasync(12</d/hisbridge.db-wal>) = 0',
      '101 write(20<TCP:[127.0.0.1:1->127.0.0.1:2]>, ""..., 90) = 90',
      '101 write(1</dev/null>, ""..., 50) = 50',
      '101 pwrite64(12</d/hisbridge.db-wal>, ""..., 4120, 0) = -1 ENOSPC (No space left on device)',
    ].join('\n');
    expect(sumStrace(log)).toEqual({ walBytes: 4144, dbBytes: 4096, syncs: 1 });
  });

  it('reads utime + stime from a stat line whose name holds spaces and parentheses, and this process’s CPU', () => {
    const stat = '4242 (node (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0';
    expect(statCpuUs(stat)).toBe(3_000_000);
    // Burn 30 ms of CPU (by this process's own account, whatever the machine's load) and compare.
    const a = processCpuUs(process.pid);
    const c0 = process.cpuUsage();
    let x = 0;
    for (;;) {
      x++;
      const c = process.cpuUsage(c0);
      if (c.user + c.system >= 30_000) break;
    }
    expect(x).toBeGreaterThan(0);
    expect(processCpuUs(process.pid) - a).toBeGreaterThan(25_000);
  });
});
