/**
 * Cooperative scheduling for big messages (issue 11, "no message blocks the
 * event loop for more than 50 ms"). The engine runs on one thread: a step
 * that works through a 100,000-segment message in one go stalls every ACK,
 * every socket and /healthz meanwhile. Such steps are linear, and they give
 * the event loop a turn between pieces of work with these helpers.
 */
import { performance } from 'node:perf_hooks';

/** Gives the event loop a turn (I/O callbacks, timers, other connections) before going on. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Above this many bytes a message's big synchronous steps (decode, parse,
 * routing, commit) are separated by a turn of the event loop. Smaller
 * messages, nearly all traffic, pay nothing.
 */
export const BIG_MESSAGE_BYTES = 64 * 1024;

/** A turn of the event loop when `bytes` is big (see BIG_MESSAGE_BYTES); nothing otherwise. */
export function yieldIfBig(bytes: number): Promise<void> | undefined {
  return bytes > BIG_MESSAGE_BYTES ? yieldToLoop() : undefined;
}

/**
 * Time slices for a long loop: `if (slice.due()) await slice.pause();` in the
 * loop body gives the event loop a turn once the loop has run `budgetMs`
 * since the last turn. The clock is read every `checkEvery` iterations only,
 * so a short loop costs a counter increment per iteration.
 */
export class TimeSlice {
  #start = performance.now();
  #n = 0;
  constructor(
    readonly budgetMs = 10,
    readonly checkEvery = 64,
  ) {}

  /** True when the loop has used its time slice. */
  due(): boolean {
    if (++this.#n % this.checkEvery !== 0) return false;
    return performance.now() - this.#start >= this.budgetMs;
  }

  /** Yields to the event loop and starts a new slice. */
  async pause(): Promise<void> {
    await yieldToLoop();
    this.#start = performance.now();
  }
}
