/**
 * Builds dist/ once before the suite so tests that drive the CLI as a
 * process (`node dist/core/cli/main.js`) run the current code. The build is
 * skipped when dist/ is already current: every source has its .js and none
 * was changed after the last clean build began (dist/.build-start, written by
 * `npm run build`, `prepare` and this setup). `npm ci` builds dist/ just
 * before `npm test`, and a second full tsc cost CI half a minute.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const BUILD_STAMP = 'dist/.build-start';

const SOURCE_DIRS = ['core', 'plugins', 'bench'];

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** True when dist/ holds a .js for every source and no source (nor tsconfig.json) changed after the stamped build began. */
export function distIsCurrent(root = '.'): boolean {
  try {
    const started = Number(readFileSync(path.join(root, BUILD_STAMP), 'utf8'));
    if (!Number.isFinite(started)) return false;
    const files = SOURCE_DIRS.flatMap((d) => sources(path.join(root, d)));
    if (statSync(path.join(root, 'tsconfig.json')).mtimeMs >= started) return false;
    for (const f of files) {
      if (statSync(f).mtimeMs >= started) return false;
      if (!existsSync(path.join(root, 'dist', path.relative(root, f)).replace(/\.ts$/, '.js'))) return false;
    }
    return files.length > 0;
  } catch {
    return false; // no stamp (or no source dir): build
  }
}

export default function setup(): void {
  if (distIsCurrent()) return;
  const tsc = path.resolve('node_modules/typescript/bin/tsc');
  const started = Date.now();
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'pipe' });
    writeFileSync(BUILD_STAMP, `${started}\n`);
  } catch (e) {
    // Type errors still emit JavaScript; show them so they are not missed.
    const out = (e as { stdout?: Buffer }).stdout?.toString() ?? '';
    process.stderr.write(`tsc reported problems:\n${out}\n`);
  }
}
