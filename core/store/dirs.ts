/**
 * Creating the data directory without hanging. Node's
 * `mkdirSync(p, { recursive: true })` loops forever, blocking the event loop,
 * on a path where mkdir answers ENOENT although the parent exists (anything
 * under /proc, for example). `makeDirsSync` walks up once with stat and
 * creates each missing level with a plain mkdir: one step per path
 * component, and the real error code when a level cannot be made.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { hbError } from '../errors.js';

function notDir(p: string): NodeJS.ErrnoException {
  const e = new Error(`${p} is not a directory`) as NodeJS.ErrnoException;
  e.code = 'ENOTDIR';
  return e;
}

/** Makes `dir` and its missing parents (new ones get `mode`); throws the errno error of the level that failed. */
export function makeDirsSync(dir: string, mode: number): void {
  const missing: string[] = [];
  let cur = path.resolve(dir);
  for (;;) {
    const st = statSync(cur, { throwIfNoEntry: false });
    if (st) {
      if (!st.isDirectory()) throw notDir(cur);
      break;
    }
    const parent = path.dirname(cur);
    if (parent === cur) break;
    missing.push(cur);
    cur = parent;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const d = missing[i]!;
    try {
      mkdirSync(d, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!statSync(d).isDirectory()) throw notDir(d);
    }
  }
}

/** The data directory, made 0700 where missing; a directory that cannot be made is STORE_E_DATA_DIR naming it. */
export function makeDataDir(dir: string): void {
  try {
    makeDirsSync(dir, 0o700);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw hbError('STORE_E_DATA_DIR', { dir, detail: code ?? (e as Error).message }, { cause: e });
  }
}
