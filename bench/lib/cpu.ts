/**
 * CPU time of another process, read from Linux /proc: the sum of every
 * thread's on-CPU time from /proc/PID/task/TID/schedstat (nanoseconds), or
 * utime + stime from /proc/PID/stat (clock ticks) where schedstat is missing.
 * Used to report the CPU per message of the engine and of the baseline
 * servers next to their wall-clock throughput. NaN when it cannot be read.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat (USER_HZ; 100 on Linux). */
const TICKS_PER_SEC = 100;

/** Total CPU time (user + system, all threads) of a process, in microseconds. */
export function processCpuUs(pid: number): number {
  try {
    let ns = 0;
    let seen = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        seen++;
      } catch {
        // a thread that ended between the listing and the read
      }
    }
    if (seen > 0 && Number.isFinite(ns)) return ns / 1000;
  } catch {
    // no schedstat: fall back to /proc/PID/stat
  }
  try {
    return statCpuUs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return NaN;
  }
}

/** utime + stime of a /proc/PID/stat line, in microseconds (the command name may hold spaces and parentheses). */
export function statCpuUs(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const ticks = Number(rest[11]) + Number(rest[12]);
  return Number.isFinite(ticks) ? (ticks * 1e6) / TICKS_PER_SEC : NaN;
}

/** Starts a CPU meter on a process; `stop(n)` gives the CPU microseconds per unit of work since the start. */
export function cpuMeter(pid: number): { stop(units: number): number; elapsedCpuUs(): number } {
  const start = processCpuUs(pid);
  const elapsedCpuUs = () => processCpuUs(pid) - start;
  return { elapsedCpuUs, stop: (units) => (units > 0 ? elapsedCpuUs() / units : NaN) };
}
