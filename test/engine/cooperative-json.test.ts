/**
 * JSON in time slices (issue 11): parseJsonYielding and stringifyJsonYielding
 * give the same results as JSON.parse and JSON.stringify, fail where they
 * fail, and let the event loop run while a big text is processed.
 */
import { describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import { parseJsonYielding, stringifyJsonYielding, TimeSlice } from '../../core/cooperative.js';

const samples: unknown[] = [
  {},
  [],
  { a: 1, b: 'x', c: null, d: true, e: false, f: [1, 2, { g: 'h' }], i: { j: { k: [] } } },
  { s: 'quote " backslash \\ slash / tab \t newline \n unicode 测试 \u0001 emoji 😀', n: [-0.5, 1e21, 12345678901234567890, -3e-7, 0] },
  [null, 'a', [[], {}], { '': 1, __proto__x: 2 }],
  // Runs of flat items (written 32 at a time) broken by nested ones, undefined, functions and Dates.
  Array.from({ length: 1000 }, (_, i) => (i % 97 === 0 ? { nested: { i } } : i % 89 === 0 ? undefined : i % 83 === 0 ? () => 1 : i % 79 === 0 ? new Date(0) : i % 2 ? { seq: i, v: `x${i}` } : i)),
  { report: { results: Array.from({ length: 3000 }, (_, i) => ({ seq: i + 1, code: `T${i}`, value: `${i}.5`, nested: i % 500 === 0 ? { deep: [i] } : null })) } },
];

describe('parseJsonYielding', () => {
  it('reads what JSON.parse reads, small and big (the sliced path), with and without key renames', async () => {
    for (const v of samples) {
      const text = JSON.stringify(v);
      expect(await parseJsonYielding(text)).toEqual(JSON.parse(text));
      // A rename forces the sliced parser even for small texts.
      expect(await parseJsonYielding(text, { renameKey: (k) => k })).toEqual(JSON.parse(text));
      const spaced = JSON.stringify(v, null, 2);
      expect(await parseJsonYielding(spaced, { renameKey: (k) => k })).toEqual(JSON.parse(spaced));
    }
    const renamed = (await parseJsonYielding('{"a":{"a":[{"a":1,"b":2}]}}', { renameKey: (k) => (k === 'a' ? 'x' : k) })) as Record<string, unknown>;
    expect(renamed).toEqual({ x: { x: [{ x: 1, b: 2 }] } });
  });

  it('refuses what JSON.parse refuses, with a SyntaxError', async () => {
    for (const bad of ['', ' ', '{', '[1,]', '{"a":1,}', '{"a" 1}', '{a:1}', '"abc', '[1 2]', '01', '-', '1 2', 'tru', '{"a":"\u0001"}', '["\\x"]', '{"a":1}}', 'nul', '[', '[-]']) {
      expect(() => JSON.parse(bad), bad).toThrow(SyntaxError);
      await expect(parseJsonYielding(bad, { renameKey: (k) => k }), bad).rejects.toThrow(SyntaxError);
    }
  });

  it('reads short array-item objects in one native call with the same result as JSON.parse: braces and escapes in strings, nesting, renames, __proto__, errors inside an item', async () => {
    const item = (i: number) => `{"seq":${i},"s":"a}b{c\\\"}","n":[1,{"k":"]"}],"e":{},"u":"\\u00e9 测"}`;
    const text = `{"results":[${Array.from({ length: 3000 }, (_, i) => item(i)).join(',')}],"tail":[{"__proto__":{"p":1},"a":1},${'{"big":"' + 'x'.repeat(5000) + '"}'}]}`;
    expect(text.length).toBeGreaterThan(64 * 1024);
    expect(await parseJsonYielding(text)).toEqual(JSON.parse(text));
    const rename = (k: string) => (k === 's' ? 'S' : k === 'k' ? 'K' : k);
    const renamed = (await parseJsonYielding(text, { renameKey: rename })) as { results: Record<string, unknown>[]; tail: Record<string, unknown>[] };
    expect(Object.keys(renamed.results[7]!)).toEqual(['seq', 'S', 'n', 'e', 'u']);
    expect(renamed.results[7]!.S).toBe('a}b{c"}');
    expect(renamed.results[7]!.n).toEqual([1, { K: ']' }]);
    expect(Object.getPrototypeOf(renamed.tail[0])).toBe(Object.prototype);
    expect(Object.keys(renamed.tail[0]!)).toEqual(['__proto__', 'a']);
    expect(({} as { p?: unknown }).p).toBeUndefined();
    // An error inside a short item is still a SyntaxError.
    const bad = text.replace('"seq":5,', '"seq":5,,');
    expect(() => JSON.parse(bad)).toThrow(SyntaxError);
    await expect(parseJsonYielding(bad)).rejects.toThrow(SyntaxError);
  });

  it('makes "__proto__" an own property, never the prototype', async () => {
    const o = (await parseJsonYielding('{"__proto__":{"polluted":true},"a":1}', { renameKey: (k) => k })) as Record<string, unknown>;
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect((o as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(o)).toEqual(['__proto__', 'a']);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('gives the event loop turns while a big text (100,000 objects) is read, and no turn is long', async () => {
    const text = JSON.stringify({ results: Array.from({ length: 100_000 }, (_, i) => ({ seq: i, code: `T${i}`, value: 'x\\y' })) });
    let ticks = 0;
    let longest = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      ticks++;
    }, 1);
    const v = (await parseJsonYielding(text, { slice: new TimeSlice(5, 1) })) as { results: unknown[] };
    clearInterval(timer);
    expect(v.results).toHaveLength(100_000);
    expect(v).toEqual(JSON.parse(text));
    expect(ticks).toBeGreaterThan(3);
    // Generous: a slice is 5 ms of work; this only catches a parse done in one piece on a slow machine.
    expect(longest).toBeLessThan(1000);
  });
});

describe('stringifyJsonYielding', () => {
  it('writes the same text as JSON.stringify', async () => {
    for (const v of samples) expect(await stringifyJsonYielding(v)).toBe(JSON.stringify(v));
    const odd = { u: undefined, f: () => 1, arr: Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? undefined : i % 3 === 1 ? new Date(0) : Buffer.from('ab'))), big: Array.from({ length: 300 }, (_, i) => [i, { k: undefined, v: i }]) };
    expect(await stringifyJsonYielding(odd)).toBe(JSON.stringify(odd));
    expect(await stringifyJsonYielding('x')).toBe('"x"');
  });

  it('gives the event loop turns while 100,000 results are written', async () => {
    const v = { reportId: 'R1', results: Array.from({ length: 100_000 }, (_, i) => ({ seq: i, code: `T${i}`, value: `${i}.5` })) };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const text = await stringifyJsonYielding(v, new TimeSlice(5));
    clearInterval(timer);
    expect(text).toBe(JSON.stringify(v));
    expect(ticks).toBeGreaterThan(3);
  });
});
