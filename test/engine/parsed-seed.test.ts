/**
 * Issue 11: the deliveries of a message use the ingest's own parse (the
 * parsed-message cache is seeded at commit), instead of loading, decoding and
 * parsing the stored bytes again. For the 4.5 MB, 100,000-OBX report that
 * second parse was a few hundred ms of its ACK-to-delivered time. Through a
 * real engine, real MLLP and the built-in simulators; before the change the
 * deliveries did one load per message.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { useEngine } from '../helpers/engine.js';
import { until } from '../helpers/kafka.js';

describe('deliveries reuse the ingest parse', () => {
  const t = useEngine();

  it('a registration with consent is delivered to the province and the recognition platform without a second parse of its stored bytes', async () => {
    const frame = Buffer.from(readFileSync('samples/01-adt-a04-registration-consent.hl7', 'latin1').replace(/\r?\n/g, '\r').replace(/\|([^|]*)\|P\|2\./, '|SEED-1|P|2.'), 'latin1');
    const before = t.engine.parsedLoads;
    const c = await MllpClient.connect('127.0.0.1', t.port);
    try {
      const ack = parseHl7(decodeHl7(await c.send(frame), 'utf-8').text);
      expect(ack.get('MSA-1')).toBe('AA');
    } finally {
      c.close();
    }
    const row = await until(() => t.engine.store.searchMessages({ controlId: 'SEED-1', limit: 1 })[0], (r) => r !== undefined && r.status !== 'queued', 30_000);
    expect(row!.status).toBe('done');
    expect(t.engine.store.pendingCount()).toBe(0);
    expect(t.engine.parsedLoads - before).toBe(0);
  });
});
