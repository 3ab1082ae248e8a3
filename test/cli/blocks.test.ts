/**
 * `hisbridge send` and `hisbridge replay` with batch files and files of
 * several messages, as real processes against a real engine: send puts a
 * batch in one block and prints every MSA of the batch ACK; replay splits a
 * file exactly as the listener splits a block, so the two agree message for
 * message (issue 11, items 2 and 3).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { useEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

interface Case { file: string; acks: [string, string][] }
const manifest = JSON.parse(readFileSync('test/corpus/manifest.json', 'utf8')) as Case[];
const corpus = (f: string) => path.join('test/corpus', f);
const expected = (f: string) => manifest.find((c) => c.file === f)!.acks;
const msaLines = (out: string) => out.split('\n').filter((l) => l.startsWith('MSA|')).map((l) => l.split('|').slice(1, 3));

describe('hisbridge send with batches and multi-message files', () => {
  const t = useEngine();

  it('sends a batch file as one block and prints the batch ACK with every MSA; exit 0', async () => {
    const r = await cli(['send', corpus('batch-fhs-bhs-three-oru.hl7'), '--port', String(t.port)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines[0]!.startsWith('BHS|')).toBe(true);
    expect(lines[lines.length - 1]).toBe('BTS|3');
    expect(msaLines(r.stdout)).toEqual(expected('batch-fhs-bhs-three-oru.hl7'));
  });

  it('a batch with one refused message: every MSA printed, exit 1, and the count named', async () => {
    const r = await cli(['send', corpus('batch-one-bad-message.hl7'), '--port', String(t.port)]);
    expect(msaLines(r.stdout)).toEqual(expected('batch-one-bad-message.hl7'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('1 of 3 messages not accepted');
  });

  it('a plain file of several messages still goes one message per block, one ACK each', async () => {
    const r = await cli(['send', corpus('multi-three-lf.hl7'), corpus('msh2-three-chars.hl7'), '--port', String(t.port)]);
    expect(r.code).toBe(0);
    expect(msaLines(r.stdout)).toEqual([...expected('multi-three-lf.hl7'), ...expected('msh2-three-chars.hl7')]);
    expect(r.stdout).not.toContain('BHS|');
  });
});

describe('hisbridge replay splits files like the listener splits blocks', () => {
  it('batch files and multi-message files give one line per message, with the codes the listener answers', async () => {
    const files = ['batch-file-two-batches.hl7', 'batch-one-bad-message.hl7', 'multi-three-crlf.hl7', 'multi-one-bad-in-middle.hl7', 'msh2-three-chars-multi.hl7', 'invalid-utf8-pid5.hl7'];
    const r = await cli(['replay', ...files.map(corpus)]);
    const out = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { file: string; index: number; controlId: string; ack: string });
    for (const f of files) {
      const mine = out.filter((l) => path.basename(l.file) === f);
      expect(mine.map((l) => [l.ack, l.controlId]), f).toEqual(expected(f));
      expect(mine.map((l) => l.index)).toEqual(mine.map((_, i) => i + 1));
    }
    // Some messages are refused on purpose: replay reports it.
    expect(r.code).toBe(1);
  }, 120_000);

  it('a file with no HL7 in it is still a usage problem named as before', async () => {
    const dir = tempFiles({ 'notes.hl7': 'hello\nworld\n' });
    const r = await cli(['replay', path.join(dir, 'notes.hl7')]);
    expect(r.stderr).toContain('no HL7 message (no line starting with MSH)');
    expect(r.code).toBe(1);
  }, 60_000);
});
