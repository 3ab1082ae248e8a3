/** Assertions on catalogued errors, shared by the tests. */
import { expect } from 'vitest';
import { HisbridgeError } from '../../core/errors.js';

/** Awaits `p`, expects it to reject with a HisbridgeError and returns that error (fails if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<HisbridgeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HisbridgeError);
    return e as HisbridgeError;
  }
  throw new Error('expected a rejection');
}
