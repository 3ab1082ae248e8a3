/**
 * Deliveries of one stored message share one decoded and parsed copy
 * (core/engine/deliver.ts ParsedCache, issue 11): a 4.5 MB message with
 * several deliveries was decoded and parsed once per delivery.
 */
import { describe, expect, it } from 'vitest';
import { ParsedCache } from '../../core/engine/deliver.js';
import { parseHl7, type Hl7Message } from '../../core/hl7/index.js';

const text = (id: string) => `MSH|^~\\&|HIS|H1|EHR|GD|20260101120000||ADT^A04|${id}|P|2.5\rPID|1||P1^^^^PI||X^Y\r`;

describe('ParsedCache', () => {
  it('loads a message once for all its deliveries, concurrent ones included', async () => {
    const cache = new ParsedCache(1024 * 1024);
    let loads = 0;
    const load = async (): Promise<Hl7Message> => {
      loads++;
      await new Promise((r) => setTimeout(r, 5));
      return parseHl7(text('C1'));
    };
    const [a, b] = await Promise.all([cache.get(7, 100, load), cache.get(7, 100, load)]);
    const c = await cache.get(7, 100, load);
    expect(loads).toBe(1);
    expect(cache.loads).toBe(1);
    expect(a).toBe(b);
    expect(c).toBe(a);
    expect(c.controlId).toBe('C1');
  });

  it('is bounded by raw bytes, least recently used out first; a message bigger than the bound is not kept', async () => {
    const cache = new ParsedCache(300);
    const load = (id: string) => async () => parseHl7(text(id));
    await cache.get(1, 100, load('A'));
    await cache.get(2, 100, load('B'));
    await cache.get(3, 100, load('C'));
    await cache.get(1, 100, load('A')); // 1 is now the most recent
    await cache.get(4, 100, load('D')); // evicts 2
    expect(cache.size).toBe(3);
    const before = cache.loads;
    await cache.get(1, 100, load('A'));
    await cache.get(3, 100, load('C'));
    expect(cache.loads).toBe(before);
    await cache.get(2, 100, load('B'));
    expect(cache.loads).toBe(before + 1);
    await cache.get(9, 1000, load('HUGE'));
    await cache.get(9, 1000, load('HUGE'));
    expect(cache.loads).toBe(before + 3);
  });

  it('is bounded by the number of messages too, so many small messages do not pile up', async () => {
    const cache = new ParsedCache(1024 * 1024, 2);
    const load = (id: string) => async () => parseHl7(text(id));
    await cache.get(1, 100, load('A'));
    await cache.get(2, 100, load('B'));
    await cache.get(3, 100, load('C')); // evicts 1 although the bytes would fit
    expect(cache.size).toBe(2);
    const before = cache.loads;
    await cache.get(1, 100, load('A'));
    expect(cache.loads).toBe(before + 1);
    await cache.get(3, 100, load('C'));
    expect(cache.loads).toBe(before + 1);
  });

  it('a message seeded at ingest with its number of deliveries stays until the last of them succeeded (issue 15)', async () => {
    const cache = new ParsedCache();
    cache.seed(7, 100, parseHl7(text('SEEDED')), 2);
    expect(cache.size).toBe(1);
    // A backlog: the deliveries come long after the ingest, and find the parse without a load.
    const m = await cache.get(7, 100, async () => { throw new Error('must not load'); });
    expect(m.controlId).toBe('SEEDED');
    cache.used(7);
    expect(cache.size).toBe(1);
    cache.used(7);
    expect(cache.size).toBe(0);
    expect(cache.loads).toBe(1);
    // An entry loaded from the store (not seeded) is left to the LRU bounds.
    await cache.get(8, 100, async () => parseHl7(text('LOADED')));
    cache.used(8);
    expect(cache.size).toBe(1);
  });

  it('does not keep a failed load: the next delivery tries again', async () => {
    const cache = new ParsedCache();
    await expect(cache.get(5, 10, async () => { throw new Error('body gone'); })).rejects.toThrow('body gone');
    await new Promise((r) => setImmediate(r));
    expect(cache.size).toBe(0);
    const m = await cache.get(5, 10, async () => parseHl7(text('OK')));
    expect(m.controlId).toBe('OK');
  });
});
