/**
 * Issue 11, "no message blocks the event loop for more than 50 ms": a
 * 100,000-OBX report read segment by segment (sensitive scan, lab payload,
 * PDF search) kept every segment's split fields alive as long as the parsed
 * message, and the garbage collector's pauses copying them were 30-110 ms.
 * The message now keeps the fields of its first segments only; a later
 * segment's fields live as long as the Hl7Segment that read them.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { parseHl7 } from '../../core/hl7/index.js';
import { findPdf, findPdfYielding, labPayload, labPayloadAndPdfYielding } from '../../plugins/recognition-upload/payload.js';
import { DEFAULT_CARD_TYPES } from '../../plugins/recognition/hl7-patient.js';
import { manyObxSegments } from '../../bench/lib/pathological.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('split fields of a big message', () => {
  it('are not kept by the message after every OBX of a 100,000-OBX report was read', () => {
    const msg = parseHl7(manyObxSegments(100_000));
    // The segment index and the first segments' fields are built before the baseline.
    expect(msg.get('OBX-3.1')).not.toBe('');
    const before = heapAfterGc();
    let codes = 0;
    for (const seg of msg.eachSegment()) if (seg.name === 'OBX' && seg.get(3, 1, 1) !== '') codes++;
    expect(codes).toBeGreaterThanOrEqual(100_000);
    const grown = heapAfterGc() - before;
    // Kept, 100,000 arrays of ~15 field strings are well over 30 MB; not kept, nothing stays.
    expect(grown).toBeLessThan(8 * 1024 * 1024);
    expect(msg.segmentCount).toBeGreaterThan(100_000);
  });

  it('read through an older segment object reflect a later set() on that segment', () => {
    const msg = parseHl7(manyObxSegments(200));
    const seg = msg.segments('OBX')[150]!;
    const occurrence = 151;
    expect(seg.get(3, 1, 1)).not.toBe('NEWCODE');
    msg.set(`OBX[${occurrence}]-3.1`, 'NEWCODE');
    expect(seg.get(3, 1, 1)).toBe('NEWCODE');
    expect(msg.get(`OBX[${occurrence}]-3.1`)).toBe('NEWCODE');
    expect(msg.encode()).toContain('NEWCODE');
    // A segment read again after a change of another one still reads its own fields.
    const other = msg.segments('OBX')[160]!;
    const code = other.get(3, 1, 1);
    msg.set('OBX[170]-3.1', 'OTHER');
    expect(other.get(3, 1, 1)).toBe(code);
  });

  it('findPdfYielding finds the PDF after 100,000 results, the same as findPdf, giving the event loop turns', async () => {
    const text = `${manyObxSegments(100_000)}OBX|100001|ED|PDF^Report^L||^application^pdf^Base64^JVBERi0xLjQKJcfs||||||F\r`;
    const msg = parseHl7(text);
    let turns = 0;
    const timer = setInterval(() => turns++, 1);
    const slice = { n: 0, due: () => ++slice.n % 1000 === 0, pause: () => new Promise<void>((r) => setImmediate(r)) };
    const found = await findPdfYielding(msg, undefined, slice as never);
    clearInterval(timer);
    expect(found).toEqual(findPdf(msg));
    expect(found?.content).toBe('JVBERi0xLjQKJcfs');
    expect(slice.n).toBeGreaterThan(100_000);
    expect(turns).toBeGreaterThan(0);
  });

  it('the lab payload and the PDF come from one walk over the segments (each OBX read once), equal to labPayload and findPdf', async () => {
    const text = `${manyObxSegments(20_000)}OBX|20001|ED|PDF^Report^L||^application^pdf^Base64^JVBERi0xLjQKJcfs||||||F\r`;
    const msg = parseHl7(text);
    const opts = { cardTypes: DEFAULT_CARD_TYPES, findings: /FIND/i, impression: /IMP/i, mask: false };
    const slice = { n: 0, due: () => ++slice.n % 1000 === 0, pause: () => new Promise<void>((r) => setImmediate(r)) };
    const both = await labPayloadAndPdfYielding(msg, { orgCode: 'H1' }, 'R1', 'F', opts, { code: undefined }, slice as never);
    // The results are written as JSON bytes, the same text JSON.stringify makes of labPayload's objects.
    expect(JSON.stringify(both.payload)).toBe(JSON.stringify(labPayload(msg, { orgCode: 'H1' }, 'R1', 'F', opts)));
    expect(both.pdf).toEqual(findPdf(msg));
    expect(both.pdf?.content).toBe('JVBERi0xLjQKJcfs');
    // One slice check per segment: one walk, not one for the results and another for the PDF.
    expect(slice.n).toBe(msg.segmentCount);
    // Without a PDF search nothing is looked for.
    expect((await labPayloadAndPdfYielding(msg, { orgCode: 'H1' }, 'R1', 'F', opts, undefined)).pdf).toBeUndefined();
  });
});
