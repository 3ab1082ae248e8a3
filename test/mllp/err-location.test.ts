/**
 * A message with bytes invalid in its charset, over a real MLLP socket: the
 * AE names where they are in ERR-2 (segment ^ sequence ^ field), with ERR-3
 * 102, and never echoes the bytes or the text around them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

describe('ERR-2 for invalid bytes over MLLP', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('answers AE with ERR-2 PID^1^5 and ERR-3 102 for a bad UTF-8 byte in the patient name', async () => {
    const head = 'MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312093015||ADT^A04^ADT_A01|ERRLOC01|P|2.5|||||CHN|UNICODE UTF-8\rEVN|A04|20250312093015\rPID|1||PT1^^^HOSP^PI||';
    const frame = Buffer.concat([Buffer.from(head, 'utf8'), Buffer.from([0xe6, 0xb5]), Buffer.from('^SECRETNAME\rPV1|1|O\r', 'utf8')]);
    const client = await MllpClient.connect('127.0.0.1', t.port);
    try {
      const reply = await client.send(frame);
      const ack = parseHl7(decodeHl7(reply, 'utf-8').text);
      expect(ack.get('MSA-1')).toBe('AE');
      expect(ack.get('MSA-2')).toBe('ERRLOC01');
      expect(ack.get('ERR-2')).toBe('PID^1^5');
      expect(ack.get('ERR-3.1')).toBe('102');
      expect(reply.toString('utf8')).not.toContain('SECRETNAME');
    } finally {
      client.close();
    }
  });

  it('counts the segment sequence: the second OBX', async () => {
    const text = 'MSH|^~\\&|LIS|H1|HISBRIDGE|GDPLAT|20250312093015||ORU^R01^ORU_R01|ERRLOC02|P|2.5|||||CHN|UNICODE UTF-8\rPID|1||PT2^^^HOSP^PI\rOBR|1|A1\rOBX|1|ST|X^Y||ok\rOBX|2|ST|X^Y||';
    const frame = Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0xff]), Buffer.from('\r', 'utf8')]);
    const client = await MllpClient.connect('127.0.0.1', t.port);
    try {
      const ack = parseHl7(decodeHl7(await client.send(frame), 'utf-8').text);
      expect(ack.get('MSA-1')).toBe('AE');
      expect(ack.get('ERR-2')).toBe('OBX^2^5');
    } finally {
      client.close();
    }
  });
});
