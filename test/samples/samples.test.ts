/**
 * Self-check of samples/: every file decodes in its declared charset and
 * starts with MSH, manifest.json matches the files and their MSH fields, the
 * synthetic identifiers and embedded PDFs are well-formed, the coverage the
 * issue asks for is there, and the files equal the generator's output.
 * Replaying the samples through the engine is the engine's own test.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Message } from 'node-hl7-client';

interface ManifestEntry {
  file: string;
  type: string;
  charset: 'gb18030' | 'utf-8';
  msh18: string;
  terminator: string;
  controlId: string;
  description: string;
  features?: string[];
  expects: { consent: boolean; routes: string[]; sensitive?: string };
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = join(root, 'samples');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ManifestEntry[];
const hl7Files = readdirSync(dir).filter((f) => f.endsWith('.hl7')).sort();

const ROUTES = ['gd-ehr-authorize', 'gd-ehr-viewer', 'recognition-patient', 'recognition-dict', 'recognition-check', 'recognition-lab', 'recognition-exam'];
const GB_NAMES = ['GB 18030-2000', 'GBK', 'GB2312', ''];

function decode(e: ManifestEntry): string {
  return new TextDecoder(e.charset, { fatal: true }).decode(readFileSync(join(dir, e.file)));
}

/** Segments as field arrays. Fine after decoding; splitting raw GBK bytes would not be. */
function segments(e: ManifestEntry): string[][] {
  return decode(e).split(e.terminator).filter((s) => s !== '').map((s) => s.split('|'));
}

function idCheckOk(id: string): boolean {
  if (!/^\d{17}[\dX]$/.test(id)) return false;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = w.reduce((acc, wi, i) => acc + wi * Number(id[i]), 0);
  return '10X98765432'[sum % 11] === id[17];
}

describe('samples/manifest.json', () => {
  it('lists exactly the .hl7 files, once each, in file order', () => {
    expect(manifest.map((e) => e.file)).toEqual(hl7Files);
    expect(hl7Files.length).toBeGreaterThanOrEqual(18);
  });

  it('names files NN-<event>-<what>.hl7 with unique numbers', () => {
    const numbers = hl7Files.map((f) => {
      expect(f).toMatch(/^\d{2}-[a-z]{3}-[a-z]\d{2}-[a-z0-9-]+\.hl7$/);
      return f.slice(0, 2);
    });
    expect(new Set(numbers).size).toBe(numbers.length);
  });

  it('uses only known route names', () => {
    for (const e of manifest) for (const r of e.expects.routes) expect(ROUTES).toContain(r);
  });
});

describe.each(manifest)('$file', (e) => {
  it('decodes in its charset and starts with MSH', () => {
    const text = decode(e);
    expect(text.startsWith('MSH|^~\\&|')).toBe(true);
    expect(text.endsWith(e.terminator)).toBe(true);
    expect(text).not.toContain('\uFFFD');
  });

  it('uses only its declared segment terminator', () => {
    const text = decode(e);
    const others = ['\r\n', '\r', '\n'].filter((t) => t !== e.terminator);
    const stripped = text.split(e.terminator).join('');
    for (const t of others) expect(stripped.includes(t)).toBe(false);
  });

  it('agrees with MSH-9, MSH-10 and MSH-18', () => {
    const msh = segments(e)[0];
    expect(msh[8].split('^').slice(0, 2).join('^')).toBe(e.type);
    expect(msh[9]).toBe(e.controlId);
    expect(msh[17] ?? '').toBe(e.msh18);
    if (e.charset === 'utf-8') expect(e.msh18).toBe('UNICODE UTF-8');
    else expect(GB_NAMES).toContain(e.msh18);
  });

  it('is read the same way by node-hl7-client (reference parser)', () => {
    const m = new Message({ text: decode(e).split(e.terminator).join('\r') });
    expect(m.get('MSH.10').toString()).toBe(e.controlId);
    expect(`${m.get('MSH.9.1').toString()}^${m.get('MSH.9.2').toString()}`).toBe(e.type);
  });

  it('has the consent marker exactly when expects.consent', () => {
    const zcn = segments(e).find((s) => s[0] === 'ZCN');
    expect(zcn?.[1] === 'Y').toBe(e.expects.consent);
    if (e.expects.consent) expect(zcn?.[2]).toBe('30');
  });

  it('carries well-formed synthetic identifiers', () => {
    for (const s of segments(e).filter((x) => x[0] === 'PID')) {
      const reps = s[3].split('~').map((r) => r.split('^'));
      expect(reps[0][4]).toBe('PI');
      const ni = reps.find((r) => r[4] === 'NI');
      expect(ni, 'PID-3 has an NI repetition').toBeDefined();
      expect(idCheckOk(ni![0]), `check digit of ${ni![0].slice(0, 6)}...`).toBe(true);
      expect(ni![0].slice(0, 2)).toBe('44');
    }
  });

  it('embeds only valid PDFs in ED observations', () => {
    for (const s of segments(e).filter((x) => x[0] === 'OBX' && x[2] === 'ED')) {
      const [, type, subtype, encoding, data] = s[5].split('^');
      expect([type, subtype, encoding]).toEqual(['application', 'pdf', 'Base64']);
      const pdf = Buffer.from(data, 'base64');
      expect(pdf.toString('base64')).toBe(data);
      const text = pdf.toString('latin1');
      expect(text.startsWith('%PDF-1.')).toBe(true);
      expect(text.endsWith('%%EOF\n')).toBe(true);
      const xrefAt = Number(/startxref\n(\d+)\n/.exec(text)![1]);
      expect(text.slice(xrefAt, xrefAt + 4)).toBe('xref');
      const offsets = [...text.slice(xrefAt).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) => Number(m[1]));
      expect(offsets.length).toBeGreaterThan(0);
      offsets.forEach((off, i) => expect(text.slice(off, off + 8)).toBe(`${i + 1} 0 obj\n`));
    }
  });
});

describe('coverage of the issue (item 9 and SPEC section 4)', () => {
  const types = new Set(manifest.map((e) => e.type));
  const has = (f: string) => manifest.filter((e) => e.features?.includes(f));

  it('covers every event row', () => {
    for (const t of ['ADT^A04', 'ADT^A01', 'SIU^S12', 'ADT^A05', 'ADT^A28', 'ADT^A31', 'ADT^A08', 'MFN^M05', 'MFN^M02', 'ORM^O01', 'ORU^R01']) {
      expect(types.has(t), t).toBe(true);
    }
    const obr25 = (app: string) => new Set(manifest.flatMap((e) => {
      const segs = segments(e);
      return segs[0][2] === app ? segs.filter((s) => s[0] === 'OBR').map((s) => s[25]) : [];
    }));
    expect([...obr25('LIS')].sort()).toEqual(['C', 'F', 'X']);
    expect([...obr25('RIS')].sort()).toEqual(['C', 'F', 'X']);
    const orc1 = new Set(manifest.flatMap((e) => segments(e).filter((s) => s[0] === 'ORC').map((s) => s[1])));
    expect(orc1.has('NW') && orc1.has('CA')).toBe(true);
  });

  it('registrations with and without consent, and a withdrawal', () => {
    const regs = manifest.filter((e) => e.type === 'ADT^A04');
    expect(regs.some((e) => e.expects.consent)).toBe(true);
    expect(regs.some((e) => !e.expects.consent)).toBe(true);
    const withdrawn = has('consent-withdrawn');
    expect(withdrawn.length).toBeGreaterThan(0);
    expect(segments(withdrawn[0]).find((s) => s[0] === 'ZCN')?.[1]).toBe('N');
  });

  it('charsets: GBK with MSH-18, UTF-8, and MSH-18 empty as GBK bytes', () => {
    expect(manifest.filter((e) => e.charset === 'gb18030' && e.msh18 !== '').length).toBeGreaterThanOrEqual(2);
    expect(manifest.some((e) => e.charset === 'utf-8')).toBe(true);
    const empty = manifest.filter((e) => e.msh18 === '');
    expect(empty.length).toBeGreaterThan(0);
    for (const e of empty) {
      const bytes = readFileSync(join(dir, e.file));
      expect(bytes.some((b) => b >= 0x80), 'non-ASCII bytes').toBe(true);
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toThrow();
    }
  });

  it('a GBK name whose second bytes are | and ^ (億 83 7C, 區 85 5E)', () => {
    const [e] = has('gbk-delimiter-bytes');
    const bytes = readFileSync(join(dir, e.file));
    expect(bytes.includes(Buffer.from([0x83, 0x7c]))).toBe(true);
    expect(bytes.includes(Buffer.from([0x85, 0x5e]))).toBe(true);
    expect(segments(e).find((s) => s[0] === 'PID')?.[5]).toBe('區^億華');
  });

  it('LF terminators, and every escape sequence in one text', () => {
    expect(manifest.some((e) => e.terminator === '\n')).toBe(true);
    const [e] = has('escapes');
    const text = decode(e);
    for (const esc of ['\\F\\', '\\S\\', '\\T\\', '\\R\\', '\\E\\', '\\.br\\']) expect(text).toContain(esc);
  });

  it('sensitive records: tuberculosis A15 and HIV B20', () => {
    const dg1 = has('sensitive').flatMap((e) => segments(e).filter((s) => s[0] === 'DG1').map((s) => s[3].split('^')[0]));
    expect(dg1.some((c) => c.startsWith('A15'))).toBe(true);
    expect(dg1).toContain('B20');
  });
});

describe('samples/tools/make-samples.mjs', () => {
  it('regenerates byte-identical files, manifest and README', () => {
    const out = mkdtempSync(join(tmpdir(), 'hisbridge-samples-'));
    try {
      const r = spawnSync(process.execPath, [join(dir, 'tools/make-samples.mjs'), '--out', out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const generated = readdirSync(out).sort();
      expect(generated).toEqual([...hl7Files, 'README.md', 'manifest.json'].sort());
      for (const f of generated) expect(readFileSync(join(out, f)).equals(readFileSync(join(dir, f))), f).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
