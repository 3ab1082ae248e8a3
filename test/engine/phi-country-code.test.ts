/**
 * Mobile numbers written with the country code as digits (8613912345678,
 * +8613912345678, 008613912345678) are masked like the bare number: in any
 * text, and in the engine's log lines for a message that carries one in
 * MSH-10 and MSH-9 over a real MLLP socket (issue 11, item 9).
 */
import { describe, expect, it } from 'vitest';
import { scrubText } from '../../core/mask.js';
import { MllpClient } from '../../core/mllp/client.js';
import { useEngine } from '../helpers/engine.js';
import { until } from '../ops/fixtures.js';

const MOBILE = '13912345678';

describe('mobile numbers after the country code', () => {
  it('scrubText masks 86, +86 and 0086 forms and keeps the prefix', () => {
    expect(scrubText(`tel 86${MOBILE}`)).toBe('tel 86139****5678');
    expect(scrubText(`tel +86${MOBILE};`)).toBe('tel +86139****5678;');
    expect(scrubText(`0086${MOBILE}`)).toBe('0086139****5678');
    // Not a mobile after 86, or another 13-digit run: unchanged.
    for (const keep of ['8612912345678', '8713912345678', '1733011122233', '0087139123456']) expect(scrubText(keep)).toBe(keep);
  });

  describe('through the engine', () => {
    const t = useEngine({}, 30_000);

    it('no log line holds the number when MSH-10 and MSH-9 carry it with +86', async () => {
      const c = await MllpClient.connect('127.0.0.1', t.port);
      const ack = await c.send(Buffer.from(`MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^+86${MOBILE}|+86${MOBILE}|P|2.5||||||UNICODE UTF-8\rPID|1||T0000031^^^HOSP^PI||A^B||19000101|M\r`, 'latin1'));
      await c.close();
      expect(ack.toString('latin1')).toContain('MSA|AA|');
      await until(() => t.logs.filter((l) => l.includes('message accepted')), (l) => l.length > 0);
      const leaked = t.logs.filter((l) => l.includes(MOBILE));
      expect(leaked).toEqual([]);
      expect(t.logs.some((l) => l.includes('+86139****5678'))).toBe(true);
    });
  });
});
