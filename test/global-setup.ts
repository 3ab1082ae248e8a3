/**
 * Builds dist/ once before the suite so tests that drive the CLI as a
 * process (`node dist/core/cli/main.js`) run the current code. The build is
 * skipped when dist/ is already current (every source has its .js, none older
 * than the newest source or tsconfig.json): `npm ci` builds it (prepare) just
 * before `npm test`, and a second full tsc costs CI half a minute.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const SOURCE_DIRS = ['core', 'plugins', 'bench'];

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** True when dist/ holds a .js for every source, each at least as new as the newest source and tsconfig.json. */
export function distIsCurrent(root = '.'): boolean {
  try {
    const files = SOURCE_DIRS.flatMap((d) => sources(path.join(root, d)));
    let newestSource = statSync(path.join(root, 'tsconfig.json')).mtimeMs;
    let oldestOutput = Infinity;
    for (const f of files) {
      newestSource = Math.max(newestSource, statSync(f).mtimeMs);
      const js = path.join(root, 'dist', path.relative(root, f)).replace(/\.ts$/, '.js');
      oldestOutput = Math.min(oldestOutput, statSync(js).mtimeMs);
    }
    return files.length > 0 && oldestOutput >= newestSource;
  } catch {
    return false; // a missing output (or source dir): build
  }
}

export default function setup(): void {
  if (distIsCurrent()) return;
  const tsc = path.resolve('node_modules/typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'pipe' });
  } catch (e) {
    // Type errors still emit JavaScript; show them so they are not missed.
    const out = (e as { stdout?: Buffer }).stdout?.toString() ?? '';
    process.stderr.write(`tsc reported problems:\n${out}\n`);
  }
}
