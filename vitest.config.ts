import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

const include = ['test/**/*.test.ts', 'plugins/**/*.test.ts', 'examples/**/*.test.ts'];

/**
 * Files that assert wall-clock bounds (an event-loop stall under 100 ms, a
 * parse in under a second, a 10x input in under 40x the time). They run on
 * their own, one file at a time, after the rest of the suite, so that the
 * other test files' processes do not take the CPU from under the measurement.
 */
const timed = [
  'test/alerts/cost.test.ts',
  'test/hl7/linear.test.ts',
  'test/hl7/batch.test.ts',
  'test/hl7/trailing-separators.test.ts',
  'test/routes/tables.test.ts',
  'test/routes/json-events.test.ts',
  'test/engine/read-json.test.ts',
  'test/engine/cooperative-json.test.ts',
  'test/http/source-http.test.ts',
  // Statements and WAL bytes per message depend on how many messages share a commit, which a CPU shared with
  // other test files shrinks (12.0 KB of WAL with 0.36 commits per message under 3 workers, 7.7 KB alone).
  'test/store/sql-budget.test.ts',
];

/**
 * Most test files spend their time waiting: on child processes (the CLI,
 * `hisbridge start`, Chromium, PostgreSQL, MariaDB, kcat), on sockets and on
 * retry timers. Vitest's default on a 2-core machine is a single worker, which
 * leaves a core idle most of the time; a few more workers than cores keep both
 * busy. Every server a test starts listens on a port of its own (port 0), so
 * files do not collide. HISBRIDGE_TEST_WORKERS overrides the count.
 */
const workers = Number(process.env.HISBRIDGE_TEST_WORKERS) || Math.max(3, availableParallelism() + 1);

// 60 s, not 30: with several files at once on two cores, a test that runs a few CLI processes in a row can take over 30 s.
const shared = { testTimeout: 60_000, hookTimeout: 90_000, pool: 'forks' } as const;

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    ...shared,
    // The JSON report lets .ci/run print a plain `N passed, N failed` line.
    reporters: ['default', ['json', { outputFile: 'test-artifacts/vitest-results.json' }]],
    projects: [
      // Not `extends: true`: a project that extends the root runs the root's global setup (a full tsc) once more.
      { test: { ...shared, name: 'suite', include, exclude: [...configDefaults.exclude, ...timed], maxWorkers: workers, sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: 'timed', include: timed, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
