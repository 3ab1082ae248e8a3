/**
 * Directory checks of the `file` source that never hang.
 *
 * Node's `mkdir(p, { recursive: true })` loops forever on a path where
 * mkdir answers ENOENT although the parent exists (anything under /proc,
 * for example): it retries the parent, finds it, and tries again. The sync
 * variant blocks the event loop; the async one holds a libuv thread for good.
 * `makeDirs` walks up once with stat and creates each missing level with a
 * plain mkdir, so it takes one step per path component and fails with the
 * real error code instead.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { access, mkdir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

function errno(code: string, message: string): NodeJS.ErrnoException {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

/** Makes `dir` and any missing parents (mode for the new ones); fails with ENOTDIR when a level is not a directory. */
export async function makeDirs(dir: string, mode: number): Promise<void> {
  const missing: string[] = [];
  let cur = path.resolve(dir);
  for (;;) {
    try {
      const st = await stat(cur);
      if (!st.isDirectory()) throw errno('ENOTDIR', `${cur} is not a directory`);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const parent = path.dirname(cur);
      if (parent === cur) throw e;
      missing.push(cur);
      cur = parent;
    }
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const d = missing[i]!;
    try {
      await mkdir(d, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // Made by someone else meanwhile: fine when it is a directory.
      if (!(await stat(d)).isDirectory()) throw errno('ENOTDIR', `${d} is not a directory`);
    }
  }
}

/**
 * Makes `dir`, a path inside `root`, and its missing levels below `root`, but
 * never `root` itself: the poll's subdirectories (done, error, ack, .work) are
 * made with it, and a recursive make raced an operator removing the watched
 * directory, quietly creating it again, so health never said it was gone.
 */
export async function makeDirsUnder(root: string, dir: string, mode: number): Promise<void> {
  let cur = path.resolve(root);
  for (const part of path.relative(cur, path.resolve(dir)).split(path.sep)) {
    if (!part || part === '.') continue;
    cur = path.join(cur, part);
    try {
      await mkdir(cur, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!(await stat(cur)).isDirectory()) throw errno('ENOTDIR', `${cur} is not a directory`);
    }
  }
}

/**
 * Proves the source can do its job in `dir`: list it, create a file in it and
 * rename that file into `work` (the claim step), then remove it. A directory
 * where any of these fails (a pseudo file system, read-only, no permission)
 * fails here, at start, rather than at the first claim.
 */
export async function probeDir(dir: string, work: string): Promise<void> {
  await readdir(dir);
  await access(dir, fsc.R_OK | fsc.W_OK | fsc.X_OK);
  const name = `.probe-${randomBytes(6).toString('hex')}`;
  const at = path.join(dir, name);
  const to = path.join(work, name);
  await writeFile(at, '', { flag: 'wx', mode: 0o600 });
  try {
    await rename(at, to);
  } finally {
    await unlink(at).catch(() => undefined);
  }
  await unlink(to).catch(() => undefined);
}

/** Plain words for the error codes a directory check meets. */
export function dirProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const words: Record<string, string> = {
    ENOENT: 'it does not exist and cannot be created there',
    ENOTDIR: 'not a directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    EXDEV: 'the work area is on another file system',
    EINVAL: 'the file system refuses the operation',
    ENOSPC: 'no space left on the device',
  };
  if (code) return words[code] ? `${code} (${words[code]})` : code;
  return e instanceof Error ? e.message : String(e);
}
