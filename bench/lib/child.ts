/**
 * Child processes for servers under test (baselines, the engine, sinks), so
 * the load generator never shares their event loop. Every child is killed
 * when the harness exits, fails or is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface ChildHandle {
  readonly pid: number;
  /** The capture groups of the ready pattern. */
  readonly ready: RegExpMatchArray;
  /** Last lines of output (stdout and stderr), for failure notes. */
  tail(): string;
  /** Resident set size in MB (Linux /proc). */
  rssMb(): number;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves when the process exits by itself. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `node <script> ...args` and waits until a line of its stdout or
 * stderr matches `ready` (rejects on exit or after timeoutMs).
 */
export function startChild(script: string, args: string[], opts: { ready: RegExp; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; nodeArgs?: string[]; wrap?: string[] }): Promise<ChildHandle> {
  hookExit();
  // `wrap` runs node under another program (strace); the handle's pid is then that program's.
  const argv = [process.execPath, ...(opts.nodeArgs ?? []), script, ...args];
  const cmd = opts.wrap?.length ? [...opts.wrap, ...argv] : argv;
  const child = spawn(cmd[0]!, cmd.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  live.add(child);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    live.delete(child);
    resolve(code);
  }));
  return new Promise<ChildHandle>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${script} not ready after ${opts.timeoutMs ?? 30_000} ms`)), opts.timeoutMs ?? 30_000);
    const handle = (m: RegExpMatchArray): ChildHandle => ({
      pid: child.pid!,
      ready: m,
      tail: () => lines.slice(-20).join('\n'),
      rssMb: () => rssMb(child.pid!),
      exited,
      stop: async (graceMs = 5000) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      },
    });
    function finish(err: Error | null, m?: RegExpMatchArray) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        child.kill('SIGKILL');
        // One line, so that a note in results.json says why without the whole log.
        if (lines.length) err.message += ` (last output: ${lines.slice(-3).map((l) => l.slice(0, 200)).join(' | ')})`;
        reject(err);
      } else resolve(handle(m!));
    }
    const onLine = (line: string) => {
      lines.push(line);
      if (lines.length > 200) lines.splice(0, 100);
      const m = line.match(opts.ready);
      if (m) finish(null, m);
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        const parts = (partial + d).split('\n');
        partial = parts.pop() ?? '';
        parts.forEach(onLine);
      });
    }
    void exited.then((code) => finish(new Error(`${script} exited with code ${code} before it was ready`)));
  });
}

/** VmRSS of a process in MB; NaN when it cannot be read. */
export function rssMb(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
  } catch {
    return NaN;
  }
}
