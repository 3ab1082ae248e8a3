/**
 * PHI outside known fields (issue 11, item 9): ID numbers and mobile numbers
 * are masked in every log line wherever they appear (MSH-10, MSH-9, error
 * texts, bindings), not only under known field names.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { idCheckDigitValid, scrubText } from '../../core/mask.js';
import { MllpClient } from '../../core/mllp/client.js';
import { useEngine } from '../helpers/engine.js';

// Synthetic values of the right shapes: a resident ID with a valid check digit, an old 15-digit ID, a mobile number.
const ID18 = '11010519491231002X';
const ID15 = '440106900101123';
const MOBILE = '13812345678';

function memoryLog() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), lines };
}

describe('scrubText', () => {
  it('checks the ISO 7064 MOD 11-2 check digit', () => {
    expect(idCheckDigitValid(ID18)).toBe(true);
    expect(idCheckDigitValid('110105194912310021')).toBe(false);
    expect(idCheckDigitValid('11010519491231002')).toBe(false);
  });

  it('masks IDs and mobile numbers anywhere in a text, as whole runs of digits only', () => {
    expect(scrubText(`a|${ID18}|b`)).toBe('a|110105********002X|b');
    expect(scrubText(`P${ID18.toLowerCase()}^`)).toBe('P110105********002x^');
    expect(scrubText(`old ${ID15}.`)).toBe('old 440106*****1123.');
    expect(scrubText(`tel:${MOBILE}`)).toBe('tel:138****5678');
    expect(scrubText(`ADT^${MOBILE}^A04`)).toBe('ADT^138****5678^A04');
    // After a JSON control-character escape whose hex digits touch the value.
    expect(scrubText(`"\\u0011${ID18}"`)).toBe('"\\u0011110105********002X"');
    // Not ID- or phone-shaped: longer or shorter runs, other prefixes, no birth date and no valid check digit.
    for (const keep of ['1381234567', '138123456789', '12812345678', '20250312080000123', '1733011122233', '999999000000000011', 'HIS202503120001']) {
      expect(scrubText(`x ${keep} y`)).toBe(`x ${keep} y`);
    }
  });

  it('is linear: a megabyte of digits and a megabyte dense with IDs are scanned in well under a second each', () => {
    const digits = '1'.repeat(1 << 20);
    const dense = `${ID18}^${MOBILE}|`.repeat(Math.floor((1 << 20) / 31));
    for (const text of [digits, dense]) {
      const t0 = performance.now();
      const out = scrubText(text);
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(out.length).toBe(text.length);
    }
    expect(scrubText(dense)).not.toContain(ID18);
    expect(scrubText(dense)).not.toContain(MOBILE);
  });
});

describe('the log layer', () => {
  it('masks values in messages, unknown keys, nested error texts and child bindings', () => {
    const m = memoryLog();
    const child = m.log.child({ peer: `caller ${MOBILE}` });
    child.warn({ msgId: ID18, type: `ADT^${MOBILE}`, err: { message: `remote said: patient ${ID15} unknown` }, list: [ID18] }, `could not send ${ID18}`);
    const text = m.lines.join('\n');
    for (const v of [ID18, ID15, MOBILE]) expect(text).not.toContain(v);
    const line = JSON.parse(m.lines[0]!) as Record<string, unknown>;
    expect(line.msgId).toBe('110105********002X');
    expect(line.type).toBe('ADT^138****5678');
    expect(line.msg).toBe('could not send 110105********002X');
    expect(line.peer).toBe('caller 138****5678');
    expect((line.err as { message: string }).message).toBe('remote said: patient 440106*****1123 unknown');
  });
});

describe('an engine receiving ID numbers in MSH fields', () => {
  const t = useEngine();

  it('never writes the ID number or the phone number in plain in any log line', async () => {
    const client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
    const pid = `PID|1||P100^^^^PI~${ID18}^^^^NI||测试^患者||19491231|M|||||${MOBILE}\r`;
    try {
      // MSH-10 an ID number, MSH-9 with a phone number (no route accepts it: its type goes into the error text too).
      await client.send(Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^${MOBILE}|${ID18}|P|2.5|||||CHN|UNICODE UTF-8\r${pid}`, 'utf8'));
      // A routed one whose MSH-10 is an old ID, another whose MSH-10 is a phone number.
      await client.send(Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A28|${ID15}|P|2.5|||||CHN|UNICODE UTF-8\r${pid}`, 'utf8'));
      await client.send(Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A04|${MOBILE}|P|2.5|||||CHN|UNICODE UTF-8\r${pid}`, 'utf8'));
      // The same control id again: the duplicate path logs it too.
      await client.send(Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A28|${ID15}|P|2.5|||||CHN|UNICODE UTF-8\r${pid}`, 'utf8'));
      // Unparsable after a readable MSH-10.
      await client.send(Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A04|${ID18}|P|2.5|||||CHN|UNICODE UTF-8\rPID|\xff\xfe${MOBILE}\r`, 'latin1'));
    } finally {
      client.close();
    }
    await expect.poll(() => t.logs.filter((l) => l.includes('110105********002X')).length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(t.logs.some((l) => l.includes('"msgId":"440106*****1123"'))).toBe(true);
    expect(t.logs.some((l) => l.includes('"msgId":"138****5678"'))).toBe(true);
    // Wait for deliveries to settle so their log lines are scanned too.
    await new Promise((r) => setTimeout(r, 1000));
    for (const line of t.logs) {
      for (const v of [ID18, ID18.toLowerCase(), ID15, MOBILE]) expect(line).not.toContain(v);
    }
  });
});
