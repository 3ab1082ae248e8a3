/**
 * Each key once per JSON log line (issue 11 follow-up). Before the fix the
 * source plugins logged `{ listener }` through a logger that already bound
 * `listener` (SourceContext.log), so lines such as "mllp listening" carried
 * `"listener":"mllp","listener":"mllp"`. JSON.parse keeps the last value, so
 * the raw text of every line is scanned for repeated top-level keys.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { until } from '../helpers/kafka.js';

/** The top-level keys of one JSON object text, in order, repeats included (strings and nesting skipped). */
export function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

function repeatedKeys(line: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const k of topLevelKeys(line)) {
    if (seen.has(k)) out.push(k);
    seen.add(k);
  }
  return out;
}

function memoryLogger(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: sink }), lines };
}

const MSG = (id: string, seq: number) =>
  [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|${id}|P|2.5||||||UNICODE UTF-8`,
    'EVN|A28|20250312093015',
    `PID|1||LK${String(seq).padStart(6, '0')}^^^HOSP^PI||CESHI^YI||19000101|M`,
    '',
  ].join('\r');

describe('log lines: each key once', () => {
  it('the key scanner sees repeats that JSON.parse hides', () => {
    expect(topLevelKeys('{"a":1,"b":{"a":2,"c":[{"a":3}]},"s":"x,\\"a\\":","a":4}')).toEqual(['a', 'b', 's', 'a']);
    expect(repeatedKeys('{"listener":"m","listener":"m"}')).toEqual(['listener']);
  });

  it('a call repeating a bound key, and a child of a child binding it again, write it once (the bound value)', () => {
    const { log, lines } = memoryLogger();
    const a = log.child({ listener: 'mllp' });
    a.info({ listener: 'mllp', port: 1 }, 'one');
    const b = a.child({ listener: 'mllp-2', route: 'r' });
    b.warn({ route: 'r', code: 'X' }, 'two');
    b.child({ route: 'r2' }).error({ listener: 'x' }, 'three');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(repeatedKeys(l), l).toEqual([]);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ listener: 'mllp', port: 1, msg: 'one' });
    expect(parsed[1]).toMatchObject({ listener: 'mllp-2', route: 'r', code: 'X', msg: 'two' });
    expect(parsed[2]).toMatchObject({ listener: 'mllp-2', route: 'r2', msg: 'three' });
    // The caller's object is not changed.
    const obj = { listener: 'z', n: 1 };
    a.info(obj, 'four');
    expect(obj).toEqual({ listener: 'z', n: 1 });
  });

  describe('a running engine (MLLP, HTTP and file sources, one message each, delivered)', () => {
    let t: TestEngine;
    beforeAll(async () => {
      t = await startEngine({
        siteYaml: 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: his-http, type: http, path: /hl7/his }\n  - { name: lab-drop, type: file, dir: drop, poll: 40ms }\n',
      });
    }, 60_000);
    afterAll(async () => {
      await t?.stop();
    });

    it('writes no JSON line with a repeated key', async () => {
      const c = await MllpClient.connect('127.0.0.1', t.port);
      try {
        expect((await c.send(MSG('LOGKEY-1', 1))).toString('latin1')).toMatch(/MSA\|AA\|LOGKEY-1/);
      } finally {
        await c.close();
      }
      const res = await fetch(`${t.httpUrl}/hl7/his`, { method: 'POST', headers: { 'content-type': 'application/hl7-v2; charset=utf-8' }, body: MSG('LOGKEY-2', 2) });
      expect(await res.text()).toMatch(/MSA\|AA\|LOGKEY-2/);
      const dir = path.join(t.dataDir, 'drop');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, '.one.part'), MSG('LOGKEY-3', 3));
      renameSync(path.join(dir, '.one.part'), path.join(dir, 'one.hl7'));
      await until(() => t.logs.some((l) => l.includes('"msg":"file done"')), Boolean, 15_000);
      // Every message's route ran (its deliveries logged), so the lines about a message are all there.
      await until(() => t.engine.store.searchMessages({ controlId: 'LOGKEY-3', limit: 1 }).length, (n) => n === 1, 10_000);
      const about = t.logs.filter((l) => /LOGKEY-|"listener"/.test(l));
      expect(about.length).toBeGreaterThan(3);
      const bad = t.logs.map((l) => ({ l, keys: repeatedKeys(l) })).filter((x) => x.keys.length);
      expect(bad, bad.map((x) => x.l).join('\n')).toEqual([]);
    });
  });
});
