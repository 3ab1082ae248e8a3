/**
 * test/helpers/engine.ts useEngine and withEngine: the shared engine
 * start/stop of the tests. The handle works inside the block's tests, says so
 * outside them, and the engine (its port, its data dir) is gone afterwards.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { useEngine, withEngine, type TestEngine } from '../helpers/engine.js';

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

describe('useEngine', () => {
  let seen: { port: number; dataDir: string } | undefined;

  describe('inside the block', () => {
    const t = useEngine();
    it('gives the running engine: MLLP port open, HTTP answering, data dir present', async () => {
      expect(await connects(t.port)).toBe(true);
      expect((await fetch(`${t.httpUrl}/healthz`)).status).toBeLessThan(500);
      expect(existsSync(t.dataDir)).toBe(true);
      seen = { port: t.port, dataDir: t.dataDir };
    });
  });

  const outside = useEngine();
  afterAll(async () => {
    // After its block's afterAll, the inner engine is stopped and its directory removed.
    expect(seen).toBeDefined();
    expect(existsSync(seen!.dataDir)).toBe(false);
    expect(await connects(seen!.port)).toBe(false);
  });

  it('the handle of a block is running in its own tests', () => {
    expect(outside.port).toBeGreaterThan(0);
  });
});

describe('useEngine outside the tests', () => {
  const t = useEngine();
  // Read at collection time, before beforeAll started it.
  let early: unknown;
  try {
    void t.port;
  } catch (e) {
    early = e;
  }
  it('throws a clear error when read before the engine started', () => {
    expect(String(early)).toMatch(/useEngine: the engine is not running here/);
  });
});

describe('withEngine', () => {
  it('stops the engine when the function throws, and rethrows', async () => {
    let kept: TestEngine | undefined;
    await expect(withEngine({}, async (t) => {
      kept = t;
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(existsSync(kept!.dataDir)).toBe(false);
    expect(await connects(kept!.port)).toBe(false);
  });
});
