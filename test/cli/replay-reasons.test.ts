/**
 * `hisbridge replay` as a process on files an integration engineer would try
 * first: a refused message says why (MSA-3 and the catalogued code, as the
 * listener answers), and a batch whose trailer count is wrong is processed
 * with a warn line on stderr, as the listener logs it (issue 11, items 3 and 5).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

const corpus = (f: string) => path.join('test/corpus', f);
const lines = (out: string) => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('hisbridge replay says why a message is refused and warns about batch trailers', () => {
  it('a message with invalid UTF-8 in PID-5: AE with the reason naming PID-5 and HL7_E_INVALID_BYTES; exit 1', async () => {
    const r = await cli(['replay', corpus('invalid-utf8-pid5.hl7')]);
    expect(r.code).toBe(1);
    const [line] = lines(r.stdout);
    expect(line!.ack).toBe('AE');
    expect(line!.reason).toMatch(/invalid UTF-8 bytes in PID-5/);
    expect(line!.errorCode).toBe('HL7_E_INVALID_BYTES');
  });

  it('accepted messages carry no reason', async () => {
    const r = await cli(['replay', corpus('multi-three-lf.hl7')]);
    expect(r.code).toBe(0);
    for (const l of lines(r.stdout)) {
      expect(l.ack).toBe('AA');
      expect(l).not.toHaveProperty('reason');
    }
  });

  it('a batch whose BTS count is wrong: every message replayed, one HL7_W_BATCH_TRAILER warn line on stderr', async () => {
    // The default log level of the tools (the helper silences them for other tests).
    const r = await cli(['replay', corpus('batch-bts-count-wrong.hl7')], { HISBRIDGE_LOG_LEVEL: undefined });
    expect(lines(r.stdout).length).toBeGreaterThan(0);
    const warns = r.stderr.split('\n').filter((l) => l.includes('HL7_W_BATCH_TRAILER'));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toContain('"level":"warn"');
  });
});
