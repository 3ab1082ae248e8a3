/**
 * Who the batch ACK says it is from (issue 11 follow-up). The batch ACK swaps
 * the request's BHS sender and receiver; before the fix a request with empty
 * BHS-5/BHS-6 (common: LIS batch headers name only themselves) got a reply
 * whose BHS-3/BHS-4 were empty, although each ACK inside named a sender.
 * Now BHS-3/BHS-4 are the first ACK's MSH-3/MSH-4 (the enclosed message's
 * MSH-5/MSH-6), and when nothing names a receiver the engine's own
 * application name, HISBRIDGE, as in single ACKs. Through a real engine and
 * a real MLLP socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBatchAckEnvelope, ENGINE_APPLICATION } from '../../core/hl7/ack.js';
import { MllpClient } from '../../core/mllp/client.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

let seq = 0;
/** A patient update (the shipped recognition-patient route) with the given MSH-5 and MSH-6. */
function a28(id: string, receiver: string, facility: string): string {
  seq++;
  return [
    `MSH|^~\\&|LIS|H4413020001|${receiver}|${facility}|20250312093015||ADT^A28^ADT_A05|${id}|P|2.5||||||UNICODE UTF-8`,
    'EVN|A28|20250312093015',
    `PID|1||BA${String(seq).padStart(6, '0')}^^^HOSP^PI||CESHI^YI||19000101|M`,
  ].join('\r') + '\r';
}

/** The fields of a reply segment, [0] being its name (so index n is field n, BHS-1 aside). */
const fields = (lines: string[], name: string, nth = 0) => lines.filter((l) => l.startsWith(`${name}|`))[nth]!.split('|');

describe('batch ACK sender fields over MLLP', () => {
  let t: TestEngine;
  let c: MllpClient;
  beforeAll(async () => {
    t = await startEngine();
    c = await MllpClient.connect('127.0.0.1', t.port);
  }, 60_000);
  afterAll(async () => {
    await c?.close();
    await t?.stop();
  });

  const send = async (payload: string) => (await c.send(payload)).toString('latin1').split('\r').filter(Boolean);

  it('empty BHS-5/BHS-6: BHS-3/BHS-4 are the ACKs\' sender (the messages\' MSH-5/MSH-6), BHS-5/BHS-6 the request\'s sender', async () => {
    const batch = `BHS|^~\\&|LIS|H4413020001|||20250312093015||||LB-E1\r${a28('BE-1', 'HISBRIDGE', 'GDPLAT')}${a28('BE-2', 'HISBRIDGE', 'GDPLAT')}BTS|2\r`;
    const lines = await send(batch);
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['BHS', 'MSH', 'MSA', 'MSH', 'MSA', 'BTS']);
    const bhs = fields(lines, 'BHS');
    expect(bhs.slice(2, 6)).toEqual(['HISBRIDGE', 'GDPLAT', 'LIS', 'H4413020001']);
    expect(bhs[11]).toBe('LB-E1');
    for (const n of [0, 1]) expect(fields(lines, 'MSH', n).slice(2, 6)).toEqual(['HISBRIDGE', 'GDPLAT', 'LIS', 'H4413020001']);
    expect(lines.filter((l) => l.startsWith('MSA|')).map((l) => l.split('|').slice(1, 3).join('|'))).toEqual(['AA|BE-1', 'AA|BE-2']);
  });

  it('no receiver named anywhere: BHS-3 and every ACK\'s MSH-3 are the engine\'s application name', async () => {
    const batch = `FHS|^~\\&|LIS|H1\rBHS|^~\\&|LIS|H1\r${a28('BN-1', '', '')}BTS|1\rFTS|1\r`;
    const lines = await send(batch);
    const bhs = fields(lines, 'BHS');
    expect(bhs[2]).toBe(ENGINE_APPLICATION);
    expect(bhs[2]).toBe('HISBRIDGE');
    expect(bhs[4]).toBe('LIS');
    expect(fields(lines, 'MSH')[2]).toBe('HISBRIDGE');
    expect(lines).toContain('MSA|AA|BN-1');
  });

  it('a request naming its receiver in BHS-5/BHS-6 gets them back as BHS-3/BHS-4, whatever the messages say', async () => {
    const batch = `BHS|^~\\&|LIS|H1|BATCHRCV|BATCHFAC|20250312093015||||LB-N1\r${a28('BR-1', 'OTHER', 'ELSE')}BTS|1\r`;
    const bhs = fields(await send(batch), 'BHS');
    expect(bhs.slice(2, 6)).toEqual(['BATCHRCV', 'BATCHFAC', 'LIS', 'H1']);
  });

  it('a single message with an empty MSH-5 gets an ACK whose MSH-3 is the engine\'s application name', async () => {
    const lines = await send(a28('SN-1', '', ''));
    expect(fields(lines, 'MSH')[2]).toBe('HISBRIDGE');
    expect(lines).toContain('MSA|AA|SN-1');
  });
});

describe('buildBatchAckEnvelope sender fallback', () => {
  it('takes BHS-3/BHS-4 from the first ACK in the same delimiters, else the engine name', () => {
    const ack = 'MSH|^~\\&|RCV^1.2^ISO|FAC|LIS|H1|20250101||ACK|X|P|2.5\rMSA|AA|C1\r';
    expect(buildBatchAckEnvelope('BHS|^~\\&|LIS|H1', 1, { controlId: 'R', firstAck: ack }).header.split('|').slice(2, 6)).toEqual(['RCV^1.2^ISO', 'FAC', 'LIS', 'H1']);
    // An ACK in other delimiters is not copied into this header.
    const other = 'MSH#^~\\&#RCV#FAC#LIS#H1#20250101##ACK#X#P#2.5\r';
    expect(buildBatchAckEnvelope('BHS|^~\\&|LIS|H1', 1, { controlId: 'R', firstAck: other }).header.split('|').slice(2, 4)).toEqual(['HISBRIDGE', '']);
    expect(buildBatchAckEnvelope('BHS|^~\\&|LIS|H1', 0, { controlId: 'R' }).header.split('|').slice(2, 4)).toEqual(['HISBRIDGE', '']);
  });
});
