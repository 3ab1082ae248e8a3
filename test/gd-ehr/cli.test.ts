import { describe, expect, it } from 'vitest';
import { run as sm4 } from '../../core/cli/cmd-sm4.js';
import { run as gdEhr } from '../../plugins/gd-ehr/cli.js';
import { GUIDE_KEY } from './helpers.js';

const GUIDE_PLAIN = 'orgCode=o1&staffNo=a1n&staffName=pn2&cardType=01&idcard=64212419560933091T&patientName=N1&patientId=d1&callSysCode=zhspt';
const GUIDE_CIPHER_START = '55d0dad78cfe0a426b78632a08adce38';

async function cli(fn: (argv: string[], io: { out(l: string): void; err(l: string): void }) => Promise<number>, argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await fn(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('hisbridge sm4', () => {
  it('encrypts and decrypts the guide vector', async () => {
    const enc = await cli(sm4, ['encrypt', '--key', GUIDE_KEY, GUIDE_PLAIN]);
    expect(enc.code).toBe(0);
    expect(enc.out).toHaveLength(1);
    expect(enc.out[0]!.startsWith(GUIDE_CIPHER_START)).toBe(true);
    const dec = await cli(sm4, ['decrypt', '--key', GUIDE_KEY, enc.out[0]!]);
    expect(dec).toEqual({ code: 0, out: [GUIDE_PLAIN], err: [] });
  });

  it('bad key or ciphertext: exit 1 with the error code on stderr', async () => {
    const badKey = await cli(sm4, ['encrypt', '--key', 'abc', 'x']);
    expect(badKey.code).toBe(1);
    expect(badKey.err[0]).toBe('hisbridge sm4: CRYPTO_E_BAD_KEY: SM4 key must be 32 hex characters (16 bytes)');
    const badCipher = await cli(sm4, ['decrypt', '--key', GUIDE_KEY, 'abc']);
    expect(badCipher.code).toBe(1);
    expect(badCipher.err[0]).toBe('hisbridge sm4: CRYPTO_E_BAD_CIPHERTEXT: ciphertext has an odd number of hex digits');
  });

  it('usage errors exit 2', async () => {
    expect((await cli(sm4, ['encrypt', 'x'])).code).toBe(2);
    expect((await cli(sm4, ['rot13', '--key', GUIDE_KEY, 'x'])).code).toBe(2);
    expect((await cli(sm4, ['encrypt', '--kee', GUIDE_KEY, 'x'])).code).toBe(2);
  });
});

describe('hisbridge gd-ehr viewer-url', () => {
  const args = ['viewer-url', '--key', GUIDE_KEY, '--app-id', 'ff80', '--org-code', 'o1', '--staff-no', 'a1n', '--staff-name', 'pn2', '--card-type', '01', '--idcard', '64212419560933091T', '--patient-name', 'N1', '--patient-id', 'd1', '--call-sys-code', 'zhspt'];

  it('prints the URL alone on the last line (guide vector)', async () => {
    const r = await cli(gdEhr, [...args, '--base-url', 'https://qmjk.gd.gov.cn/gdehr/privilege/getPrivilege']);
    expect(r.code).toBe(0);
    expect(r.out.at(-1)).toMatch(new RegExp(`^https://qmjk\\.gd\\.gov\\.cn/gdehr/privilege/getPrivilege\\?param=${GUIDE_CIPHER_START}[0-9a-f]+&appId=ff80$`));
  });

  it('refuses & or = in a value with the error code, exit 1', async () => {
    const r = await cli(gdEhr, args.map((a) => (a === 'pn2' ? 'pn2&patientId=x' : a)));
    expect(r.code).toBe(1);
    expect(r.err[0]).toBe('hisbridge gd-ehr: GDEHR_E_UNSAFE_VALUE: value of staffName contains "&", "=" or a control character');
    expect(r.out).toEqual([]);
  });

  it('names missing flags, exit 2', async () => {
    const r = await cli(gdEhr, ['viewer-url', '--key', GUIDE_KEY]);
    expect(r.code).toBe(2);
    expect(r.err[0]).toMatch(/^hisbridge gd-ehr: missing --app-id, --org-code/);
  });
});
