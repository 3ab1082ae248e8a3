import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface EngineProcess {
  child: ChildProcess;
  mllpPort: number;
  httpUrl: string;
  stderr: () => string;
  /** What it wrote to stdout so far (its JSON log lines, when the site's log goes there). */
  stdout: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** Spawns `hisbridge start` from dist/ and waits for its ready line. */
export async function spawnEngine(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<EngineProcess> {
  const child = spawn(process.execPath, [path.resolve('dist/core/cli/main.js'), 'start', ...args], {
    env: { ...process.env, HISBRIDGE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const ready = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`engine not ready in ${timeoutMs} ms:\n${err}`)), timeoutMs);
    const check = () => {
      const m = /hisbridge ready: MLLP \S+ [\d.]+:(\d+); HTTP (\S+);/.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    };
    child.stderr!.on('data', check);
    void exited.then((c) => {
      clearTimeout(t);
      reject(new Error(`engine exited (${c}) before ready:\n${err}`));
    });
  });
  return { child, mllpPort: Number(ready[1]), httpUrl: ready[2]!, stderr: () => err, stdout: () => out, exited };
}
