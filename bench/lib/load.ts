/**
 * Load generator: MLLP senders on N connections, each waiting for the ACK of
 * one message before sending the next (what a HIS does). Two modes:
 * closed loop (as fast as the server answers) and fixed rate (an offered
 * rate, latency measured from the intended send time so a stalled server
 * cannot hide its queueing delay).
 */
import { ackCode, MllpSender } from './mllp-sender.js';
import { latencySummary, round, type LatencySummary } from './stats.js';
import type { MessageFactory } from './messages.js';

export interface Target {
  host: string;
  port: number;
}

export interface LoadResult {
  /** Messages answered with any ACK. */
  acked: number;
  /** ACKs whose MSA-1 is not AA/CA (counted, not retried). */
  rejected: number;
  /** Transport failures (timeouts, resets). */
  errors: number;
  elapsedMs: number;
  msgPerSec: number;
  latency: LatencySummary;
  /** First ACK code that was not AA/CA, for the note. */
  firstRejection?: string;
}

async function openAll(t: Target, n: number, timeoutMs: number): Promise<MllpSender[]> {
  const out: MllpSender[] = [];
  try {
    for (let i = 0; i < n; i++) out.push(await MllpSender.connect(t.host, t.port, { timeoutMs }));
  } catch (e) {
    await Promise.allSettled(out.map((s) => s.close()));
    throw e;
  }
  return out;
}

function accepted(code: string): boolean {
  return code === 'AA' || code === 'CA';
}

/**
 * Sends `messages` messages over `connections` connections as fast as ACKs come back.
 * Stops early (and reports what was done) after `maxMs`.
 */
export async function closedLoop(t: Target, opts: {
  connections: number;
  messages: number;
  factory: MessageFactory;
  timeoutMs?: number;
  maxMs?: number;
  /** Called with the factory index of each message just before it is written. */
  onSend?(index: number): void;
}): Promise<LoadResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const senders = await openAll(t, opts.connections, timeoutMs);
  const lat = new Float64Array(opts.messages);
  let next = 0;
  let acked = 0;
  let rejected = 0;
  let errors = 0;
  let firstRejection: string | undefined;
  const start = process.hrtime.bigint();
  const deadline = Date.now() + (opts.maxMs ?? 120_000);
  try {
    await Promise.all(senders.map(async (s) => {
      while (next < opts.messages && Date.now() < deadline) {
        next++;
        const frame = opts.factory.nextFrame();
        opts.onSend?.(opts.factory.count - 1);
        const t0 = process.hrtime.bigint();
        try {
          const code = ackCode(await s.sendFrame(frame));
          lat[acked++] = Number(process.hrtime.bigint() - t0);
          if (!accepted(code)) {
            rejected++;
            firstRejection ??= code || '(no MSA)';
          }
        } catch {
          errors++;
          return; // this connection is gone; the others carry on
        }
      }
    }));
  } finally {
    await Promise.allSettled(senders.map((s) => s.close()));
  }
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  return {
    acked,
    rejected,
    errors,
    elapsedMs: round(elapsedMs),
    msgPerSec: round(acked / (elapsedMs / 1000), 0),
    latency: latencySummary(lat.subarray(0, acked)),
    ...(firstRejection ? { firstRejection } : {}),
  };
}

export interface FixedRateResult extends LoadResult {
  offeredPerSec: number;
  scheduled: number;
  /** True when every scheduled message was sent and answered within the window plus one second. */
  sustained: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Offers `rate` msg/s for `durationMs`, spread evenly over the connections.
 * A connection that falls behind sends its backlog back to back; latency is
 * counted from each message's scheduled time.
 */
export async function fixedRate(t: Target, opts: { connections: number; rate: number; durationMs: number; factory: MessageFactory; timeoutMs?: number }): Promise<FixedRateResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const senders = await openAll(t, opts.connections, timeoutMs);
  const intervalNs = (1e9 * opts.connections) / opts.rate;
  const perConn = Math.floor((opts.rate * opts.durationMs) / 1000 / opts.connections);
  const scheduled = perConn * opts.connections;
  const lat = new Float64Array(scheduled);
  let acked = 0;
  let rejected = 0;
  let errors = 0;
  let firstRejection: string | undefined;
  const start = process.hrtime.bigint();
  // Hard stop well after the window so a dead server cannot hang the run.
  const hardStop = Date.now() + opts.durationMs + timeoutMs + 5_000;
  try {
    await Promise.all(senders.map(async (s, c) => {
      const offset = (intervalNs * c) / opts.connections;
      for (let k = 0; k < perConn && Date.now() < hardStop; k++) {
        const due = start + BigInt(Math.round(offset + k * intervalNs));
        const waitNs = Number(due - process.hrtime.bigint());
        if (waitNs > 0) await sleep(Math.ceil(waitNs / 1e6));
        const frame = opts.factory.nextFrame();
        // From the scheduled time when behind schedule; from the real send when a timer fired early.
        const sentAt = process.hrtime.bigint();
        const from = sentAt < due ? sentAt : due;
        try {
          const code = ackCode(await s.sendFrame(frame));
          lat[acked++] = Number(process.hrtime.bigint() - from);
          if (!accepted(code)) {
            rejected++;
            firstRejection ??= code || '(no MSA)';
          }
        } catch {
          errors++;
          return;
        }
      }
    }));
  } finally {
    await Promise.allSettled(senders.map((s) => s.close()));
  }
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  return {
    acked,
    rejected,
    errors,
    elapsedMs: round(elapsedMs),
    msgPerSec: round(acked / (elapsedMs / 1000), 0),
    latency: latencySummary(lat.subarray(0, acked)),
    offeredPerSec: opts.rate,
    scheduled,
    sustained: acked === scheduled && errors === 0 && rejected === 0 && elapsedMs <= opts.durationMs + 1000,
    ...(firstRejection ? { firstRejection } : {}),
  };
}
