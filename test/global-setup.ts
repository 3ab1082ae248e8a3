/**
 * Builds dist/ once before the suite so tests that drive the CLI as a
 * process (`node dist/core/cli/main.js`) run the current code.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const tsc = path.resolve('node_modules/typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'pipe' });
  } catch (e) {
    // Type errors still emit JavaScript; show them so they are not missed.
    const out = (e as { stdout?: Buffer }).stdout?.toString() ?? '';
    process.stderr.write(`tsc reported problems:\n${out}\n`);
  }
}
