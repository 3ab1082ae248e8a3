/**
 * The real-world-style corpus (test/corpus/*.hl7, written by make-corpus.mjs)
 * through a real engine over real MLLP sockets, with the shipped routes: each
 * file is one block; every message in it must get exactly one MSA, with its
 * own MSH-10 as MSA-2 and the expected code, in order, and nothing
 * acknowledged AA/CA may be missing from the store. The same files go through
 * Debian's mllp_send (python3-hl7), a client we did not write. The huge
 * cases are generated here rather than committed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpFrameDecoder, encodeFrame } from '../../core/mllp/framing.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

interface Case { file: string; what: string; frames: number; acks: [string, string][]; listener?: 'lenient' }

const DIR = path.resolve('test/corpus');
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as Case[];
const MLLP_SEND = '/usr/bin/mllp_send';

const SITE = `
listeners:
  - { name: mllp, port: 0 }
  - { name: lenient, port: 0, invalidBytes: replace }
`;

/** MSA-1 and MSA-2 of every MSA segment in the reply bytes (MSA is ASCII whatever the charset). */
function msas(bytes: Buffer): [string, string][] {
  return bytes.toString('latin1').split(/\r\n|\r|\n/).filter((l) => l.startsWith('MSA')).map((l) => {
    const f = l.split(l[3]!);
    return [f[1] ?? '', f[2] ?? ''];
  });
}

/** One block on a fresh connection; resolves with the reply frames once `want` arrived and 300 ms passed without more (or after `ms`). */
async function sendBlock(port: number, payload: Buffer, want: number, ms = 20_000): Promise<Buffer[]> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const dec = new MllpFrameDecoder();
  const frames: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  sock.write(encodeFrame(payload));
  await new Promise<void>((resolve) => {
    let settle: NodeJS.Timeout | undefined;
    const timer = setTimeout(resolve, ms);
    sock.on('data', (c: Buffer) => {
      for (const ev of dec.push(c)) if (ev.kind === 'frame') frames.push(ev.frame);
      if (frames.length >= want) {
        clearTimeout(timer);
        clearTimeout(settle);
        settle = setTimeout(resolve, 300);
      }
    });
  });
  sock.destroy();
  return frames;
}

describe('real-world corpus over MLLP', () => {
  let t: TestEngine;
  let port: (name: string) => number;
  beforeAll(async () => {
    t = await startEngine({ siteYaml: SITE });
    port = (name) => t.engine.listeners.find((l) => l.config.name === name)!.port!;
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('holds at least 30 files, and they are exactly what make-corpus.mjs writes', () => {
    expect(manifest.length).toBeGreaterThanOrEqual(30);
    const out = mkdtempSync(path.join(tmpdir(), 'hb-corpus-'));
    try {
      execFileSync(process.execPath, [path.join(DIR, 'make-corpus.mjs'), out]);
      const files = readdirSync(out).filter((f) => f.endsWith('.hl7')).sort();
      expect(files).toEqual(readdirSync(DIR).filter((f) => f.endsWith('.hl7')).sort());
      for (const f of files) expect(readFileSync(path.join(out, f)).equals(readFileSync(path.join(DIR, f))), f).toBe(true);
      expect(readFileSync(path.join(out, 'manifest.json'), 'utf8')).toBe(readFileSync(path.join(DIR, 'manifest.json'), 'utf8'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  for (const c of manifest) {
    it(`${c.file}: ${c.what}`, async () => {
      const frames = await sendBlock(port(c.listener ?? 'mllp'), readFileSync(path.join(DIR, c.file)), c.frames);
      expect(frames).toHaveLength(c.frames);
      // Every message answered once, in order, with its own MSA-2 and the right code.
      expect(frames.flatMap(msas)).toEqual(c.acks);
      // A multi-message block answers one ACK per frame; a batch answers BHS ... BTS with the count.
      for (const f of frames) {
        const text = f.toString('latin1');
        if (text.startsWith('BHS')) expect(text.trimEnd().split(/\r/).pop()).toBe(`BTS${text[3]}${msas(f).length}`);
        else expect(msas(f)).toHaveLength(1);
      }
      // Nothing acknowledged as accepted is missing from the store.
      for (const [code, id] of c.acks) {
        if (code !== 'AA' && code !== 'CA') continue;
        expect(t.engine.store.searchMessages({ controlId: id, limit: 5 }).length, id).toBeGreaterThan(0);
      }
    });
  }

  it('huge repetitions and many segments, generated here: a multi-message block and a batch are answered in full', async () => {
    const reps = Array.from({ length: 10_000 }, (_, i) => `T${String(i).padStart(8, '0')}^^^HOSP^PI`).join('~');
    const hugePid = `MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|C-HUGE-1|P|2.5||||||UNICODE UTF-8\rPID|1||${reps}||CESHI^DA\r`;
    const small = 'MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A03|C-HUGE-2|P|2.5||||||UNICODE UTF-8\rPID|1||T1^^^HOSP^PI||CESHI^XIAO\r';
    const block = Buffer.from(hugePid + small, 'utf8');
    expect(block.length).toBeGreaterThan(180_000);
    const frames = await sendBlock(port('mllp'), block, 2, 60_000);
    expect(frames.flatMap(msas)).toEqual([['AA', 'C-HUGE-1'], ['AA', 'C-HUGE-2']]);

    const obx = Array.from({ length: 5_000 }, (_, i) => `OBX|${i + 1}|NM|${i}^ITEM^LOCAL||1.0|g/L|||||F`).join('\r');
    const oru = (id: string) => `MSH|^~\\&|LIS|H4413020001|HISBRIDGE|GDPLAT|20250312100000||ORU^R01^ORU_R01|${id}|P|2.5||||||UNICODE UTF-8\rPID|1||T2^^^HOSP^PI||CESHI^ER\rOBR|1|${id}-O|${id}-F|2001^CBC^LOCAL|||20250312090000||||||||||||||||||F||||||||||LAB\r${obx}\r`;
    const batch = Buffer.from(`BHS|^~\\&|LIS|H1\r${oru('C-HUGE-3')}${oru('C-HUGE-4')}BTS|2\r`, 'utf8');
    const reply = await sendBlock(port('mllp'), batch, 1, 60_000);
    expect(reply.flatMap(msas)).toEqual([['AA', 'C-HUGE-3'], ['AA', 'C-HUGE-4']]);
  }, 120_000);

  it('mllp_send (python3-hl7) sends every single-reply corpus block and gets exactly the expected MSAs, in order', async () => {
    expect(existsSync(MLLP_SEND), 'install python3-hl7 (apt-get install -y python3-hl7)').toBe(true);
    // mllp_send reads one reply per block it sends, so blocks answered with several frames are left to the test above.
    const cases = manifest.filter((c) => c.frames === 1 && !c.listener);
    const dir = mkdtempSync(path.join(tmpdir(), 'hb-corpus-send-'));
    try {
      // Without --loose mllp_send reads an MLLP-framed file and sends each frame as it is.
      const file = path.join(dir, 'corpus.mllp');
      writeFileSync(file, Buffer.concat(cases.map((c) => encodeFrame(readFileSync(path.join(DIR, c.file))))));
      const stdout = await new Promise<Buffer>((resolve, reject) => {
        execFile(MLLP_SEND, ['--file', file, '-p', String(port('mllp')), '127.0.0.1'], { encoding: 'buffer', timeout: 60_000 }, (err, out, errOut) => {
          if (err) reject(new Error(`mllp_send failed: ${err.message} ${errOut.toString()}`));
          else resolve(out);
        });
      });
      expect(msas(stdout)).toEqual(cases.flatMap((c) => c.acks));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
