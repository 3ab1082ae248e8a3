/**
 * The baseline servers and the no-op sink, run as the bench runs them: child
 * processes from dist/ (built by the global setup) on random ports.
 */
import { describe, expect, it } from 'vitest';
import { Message } from 'node-hl7-client';
import { MllpSender } from '../../bench/lib/mllp-sender.js';
import { controlIdOf, MessageFactory } from '../../bench/lib/messages.js';
import { startBaseline, startSink } from '../../bench/lib/servers.js';

describe('baseline MLLP servers', () => {
  for (const kind of ['raw-echo', 'echo+node-hl7-client'] as const) {
    it(`${kind}: answers each frame with an AA naming its MSH-10, and exits on stop`, async () => {
      const b = await startBaseline(kind);
      try {
        const s = await MllpSender.connect(b.target.host, b.target.port, { timeoutMs: 5000 });
        const f = new MessageFactory(kind === 'raw-echo' ? 'adt' : 'oru', 'bs');
        for (let i = 0; i < 5; i++) {
          const msg = f.next();
          const ack = new Message({ text: (await s.send(msg)).toString('utf8') });
          expect(ack.get('MSA.1').toString()).toBe('AA');
          expect(ack.get('MSA.2').toString()).toBe(controlIdOf(msg));
          expect(ack.get('MSH.3').toString()).toBe('HISBRIDGE');
        }
        await s.close();
      } finally {
        await b.child.stop();
      }
      expect(await b.child.exited).not.toBeUndefined();
      await expect(MllpSender.connect(b.target.host, b.target.port, { timeoutMs: 1000 })).rejects.toThrow();
    });
  }
});

describe('no-op sink', () => {
  it('counts deliveries and answers the injected status while faulted', async () => {
    const sink = await startSink();
    try {
      expect((await fetch(`${sink.url}/deliver`, { method: 'POST', body: '{}' })).status).toBe(200);
      await sink.fault(503);
      expect((await fetch(`${sink.url}/deliver`, { method: 'POST', body: '{}' })).status).toBe(503);
      await sink.fault(0);
      expect((await fetch(`${sink.url}/deliver`, { method: 'POST', body: '{}' })).status).toBe(200);
      expect(await sink.count()).toBe(2);
    } finally {
      await sink.child.stop();
    }
  });
});
