/**
 * Back-pressure: past the high-water mark of pending deliveries the listener
 * stops reading (overload: pause) or answers AE (overload: reject), so memory
 * stays bounded while the provincial platform is down.
 */
import { describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { startEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

const ROUTE = `name: bp-authorize
match: { events: [ADT^A04] }
steps:
  - plugin: gd-ehr-authorize
    config: { consent: false }
delivery:
  retry: { max: 1000, initial: 50ms, maxDelay: 200ms }
`;

function msg(i: number): string {
  return `MSH|^~\\&|HIS|H1|GD|GD|20250312080000||ADT^A04|BP${i}|P|2.5||||||UNICODE UTF-8\rPID|1||P${i}^^^HOSP^PI~44010619900101${String(100 + (i % 900)).padStart(3, '0')}7^^^CHN^NI||测试^患者${i}\r`;
}

async function faultAll(simUrl: string, on: boolean): Promise<void> {
  await fetch(`${simUrl}/__sim/reset`, { method: 'POST' });
  if (on) await fetch(`${simUrl}/__sim/faults`, { method: 'POST', body: JSON.stringify({ status: 503 }) });
}

describe('back-pressure', () => {
  it('pauses reading past the high-water mark and resumes when deliveries drain', async () => {
    const routes = tempFiles({ 'bp.yaml': ROUTE });
    const t = await startEngine({ routesDir: routes, siteYaml: 'store: { highWaterMark: 40, overload: pause }\n' });
    try {
      const sim = t.engine.simulators.gdEhr!.url;
      await faultAll(sim, true);
      const client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 60_000 });
      let acked = 0;
      const sends = Array.from({ length: 200 }, (_, i) => client.send(msg(i)).then(() => acked++));
      // Wait (no timing gate: up to 30 s on a loaded machine) until the mark is reached and the controller paused.
      for (let waited = 0; !(t.engine.health().paused === true) && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      // Then give the listener time in which it would have read everything had it not paused.
      await new Promise((r) => setTimeout(r, 1000));
      // Reading stopped: far fewer than 200 messages were accepted, and pending stays near the mark.
      const pendingWhilePaused = t.engine.store.pendingCount();
      expect(acked).toBeLessThan(200);
      expect(pendingWhilePaused).toBeLessThanOrEqual(40 + 70); // mark + one connection's read-ahead (64 frames) + in-flight
      expect(t.engine.health().paused).toBe(true);
      await faultAll(sim, false);
      await Promise.all(sends);
      expect(acked).toBe(200);
      client.close();
    } finally {
      await t.stop();
    }
  }, 60_000);

  it('answers AE with the reason when overload is reject', async () => {
    const routes = tempFiles({ 'bp.yaml': ROUTE });
    const t = await startEngine({ routesDir: routes, siteYaml: 'store: { highWaterMark: 5, overload: reject }\n' });
    try {
      await faultAll(t.engine.simulators.gdEhr!.url, true);
      const client = await MllpClient.connect('127.0.0.1', t.port);
      const codes: string[] = [];
      for (let i = 0; i < 20; i++) {
        const a = parseHl7((await client.send(msg(i))).toString('utf8'));
        codes.push(a.get('MSA-1'));
        if (a.get('MSA-1') === 'AE') expect(a.get('ERR-8')).toMatch(/high-water mark/);
      }
      client.close();
      expect(codes.filter((c) => c === 'AA').length).toBeLessThanOrEqual(6);
      expect(codes).toContain('AE');
    } finally {
      await t.stop();
    }
  }, 30_000);
});

describe('retention rule', () => {
  it('refuses to start with metadataRetentionDays below 180, naming the rule', async () => {
    await expect(startEngine({ siteYaml: 'store: { metadataRetentionDays: 90 }\n' })).rejects.toThrow(/at least 180: the provincial platform requires .* \(docs\/operations.md#audit-retention\)/);
  });
});
