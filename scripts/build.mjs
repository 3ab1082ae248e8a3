// `npm run build` (and `prepare`): tsc over tsconfig.json into dist/, the CLI made executable,
// then dist/.build-start written with the time the build began. The test suite's global setup
// (test/global-setup.ts) skips its own build when no source is newer than that time.
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export const BUILD_STAMP = 'dist/.build-start';

/** Builds dist/; returns tsc's exit code. The stamp is written only after a clean build. */
export function build() {
  const started = Date.now();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
  try {
    chmodSync('dist/core/cli/main.js', 0o755);
  } catch {
    // no main.js: tsc said why
  }
  if (r.status === 0) writeFileSync(BUILD_STAMP, `${started}\n`);
  return r.status ?? 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(build());
