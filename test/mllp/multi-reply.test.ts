/**
 * The MLLP server writes a handler's several reply frames in order, before
 * the next frame of the connection is handled (a block of several messages
 * is answered one ACK frame per message).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { createMllpServer, type MllpServer } from '../../core/mllp/server.js';

let server: MllpServer | undefined;
afterAll(async () => server?.close(500));

describe('MLLP server: several reply frames for one frame', () => {
  it('writes every reply frame of a handler in order, then handles the next frame', async () => {
    const seen: string[] = [];
    server = createMllpServer({
      name: 'multi',
      host: '127.0.0.1',
      port: 0,
      log: silentLogger(),
      handler: async (frame) => {
        const s = frame.toString('latin1');
        seen.push(s);
        const n = Number(s.split(':')[1] ?? '1');
        // Slow first reply: the second frame must still wait for all of this frame's replies.
        await new Promise((r) => setTimeout(r, 20));
        return Array.from({ length: n }, (_, i) => Buffer.from(`${s}#${i + 1}`, 'latin1'));
      },
    });
    const { port } = await server.listen();
    const c = await MllpClient.connect('127.0.0.1', port, { timeoutMs: 5000 });
    try {
      const [a, b] = await Promise.all([c.sendBlock('A:3', 3), c.send('B:1')]);
      expect(a.map((x) => x.toString('latin1'))).toEqual(['A:3#1', 'A:3#2', 'A:3#3']);
      expect(b.toString('latin1')).toBe('B:1#1');
      expect(await c.send('C:1').then((x) => x.toString('latin1'))).toBe('C:1#1');
      expect(seen).toEqual(['A:3', 'B:1', 'C:1']);
    } finally {
      await c.close();
    }
  });
});
