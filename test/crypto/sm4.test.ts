import { describe, expect, it } from 'vitest';
import { randomBytes, randomInt } from 'node:crypto';
import smCrypto from 'sm-crypto';
import { opensslSm4, smCryptoSm4, sm4Backend, sm4DecryptHex, sm4EncryptHex, sm4Decrypt } from '../../core/crypto/sm4.js';
import { isHisbridgeError } from '../../core/errors.js';

// Seed 001 §9.3.3: the guide's Java example.
const GUIDE_KEY = '33edd0637a6cbd8e7d057fbc0944d621';
const GUIDE_PLAIN = 'orgCode=o1&staffNo=a1n&staffName=pn2&cardType=01&idcard=64212419560933091T&patientName=N1&patientId=d1&callSysCode=zhspt';
const GUIDE_CIPHER =
  '55d0dad78cfe0a426b78632a08adce38e832d90c11a09d3c1df0dd540e12fdfc8f94f46a5ea1dba7e217d4d8f6d3dcd7fc87acfe8d39a6d7a02ca2c974753d9e6f5935560fe6448eca34059caf3d016bd071f41251d3874aca227788ec1c52f7af8c9d7099eb221652d94523db2d86f28892d291a70c5854be5b4be1ff6f2eec';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isHisbridgeError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  throw new Error('expected an error');
}

/** Random text mixing ASCII, CJK, other BMP and astral code points (no lone surrogates). */
function randomText(maxLen: number, maxCodePoint: number): string {
  const n = randomInt(0, maxLen + 1);
  let s = '';
  for (let i = 0; i < n; i++) {
    const kind = randomInt(0, 4);
    let cp: number;
    if (kind === 0) cp = randomInt(0x20, 0x7f);
    else if (kind === 1) cp = randomInt(0x4e00, 0x9fa6); // CJK unified ideographs
    else if (kind === 2) cp = randomInt(0x80, 0xd800);
    else cp = randomInt(0x10000, maxCodePoint + 1);
    s += String.fromCodePoint(cp);
  }
  return s;
}

describe('SM4 (ECB, PKCS#7, hex)', () => {
  it('reproduces the guide vector (seed 001 §9.3.3) and decrypts it back', () => {
    expect(sm4EncryptHex(GUIDE_KEY, GUIDE_PLAIN)).toBe(GUIDE_CIPHER);
    expect(sm4DecryptHex(GUIDE_KEY, GUIDE_CIPHER)).toBe(GUIDE_PLAIN);
    expect(sm4DecryptHex(GUIDE_KEY.toUpperCase(), GUIDE_CIPHER.toUpperCase())).toBe(GUIDE_PLAIN);
  });

  it('both implementations give the guide vector', () => {
    const key = Buffer.from(GUIDE_KEY, 'hex');
    expect(opensslSm4.encrypt(key, Buffer.from(GUIDE_PLAIN)).toString('hex')).toBe(GUIDE_CIPHER);
    expect(smCryptoSm4.encrypt(key, Buffer.from(GUIDE_PLAIN)).toString('hex')).toBe(GUIDE_CIPHER);
    expect(smCryptoSm4.decrypt(key, Buffer.from(GUIDE_CIPHER, 'hex')).toString('utf8')).toBe(GUIDE_PLAIN);
    expect(sm4Backend().name).toBe('openssl');
  });

  it('matches sm-crypto (its own string API) on 1000 random strings incl. Chinese', () => {
    for (let i = 0; i < 1000; i++) {
      const key = randomBytes(16).toString('hex');
      // sm-crypto's own UTF-8 encoder is only right below U+40000 (see PACKAGES.md).
      const text = i === 0 ? '' : randomText(80, 0x3ffff);
      const ours = sm4EncryptHex(key, text);
      expect(ours, `case ${i}`).toBe(smCrypto.sm4.encrypt(text, key));
      expect(sm4DecryptHex(key, ours)).toBe(text);
      expect(smCrypto.sm4.decrypt(ours, key)).toBe(text);
    }
  });

  it('OpenSSL and the byte-fed fallback agree on 1000 random strings over the full Unicode range', () => {
    for (let i = 0; i < 1000; i++) {
      const key = randomBytes(16);
      const plain = Buffer.from(randomText(60, 0x10ffff), 'utf8');
      const a = opensslSm4.encrypt(key, plain);
      expect(smCryptoSm4.encrypt(key, plain).equals(a), `case ${i}`).toBe(true);
      expect(smCryptoSm4.decrypt(key, a).equals(plain)).toBe(true);
      expect(opensslSm4.decrypt(key, a).equals(plain)).toBe(true);
    }
  });

  it('keeps Chinese names intact', () => {
    const key = randomBytes(16).toString('hex');
    expect(sm4DecryptHex(key, sm4EncryptHex(key, '欧阳娜娜·𠀋'))).toBe('欧阳娜娜·𠀋');
  });

  it('refuses bad keys with CRYPTO_E_BAD_KEY', () => {
    for (const k of ['', '33edd0637a6cbd8e7d057fbc0944d62', '33edd0637a6cbd8e7d057fbc0944d6211', '33edd0637a6cbd8e7d057fbc0944d62g', ' 33edd0637a6cbd8e7d057fbc0944d62']) {
      expect(codeOf(() => sm4EncryptHex(k, 'x'))).toMatch(/^CRYPTO_E_BAD_KEY/);
      expect(codeOf(() => sm4DecryptHex(k, GUIDE_CIPHER))).toMatch(/^CRYPTO_E_BAD_KEY/);
    }
    expect(codeOf(() => sm4Decrypt(Buffer.alloc(15), Buffer.alloc(16)))).toMatch(/^CRYPTO_E_BAD_KEY/);
  });

  it('says what is wrong with bad ciphertext', () => {
    expect(codeOf(() => sm4DecryptHex(GUIDE_KEY, 'zz' + GUIDE_CIPHER.slice(2)))).toBe('CRYPTO_E_BAD_CIPHERTEXT: ciphertext is not hex');
    expect(codeOf(() => sm4DecryptHex(GUIDE_KEY, GUIDE_CIPHER.slice(1)))).toBe('CRYPTO_E_BAD_CIPHERTEXT: ciphertext has an odd number of hex digits');
    expect(codeOf(() => sm4DecryptHex(GUIDE_KEY, GUIDE_CIPHER.slice(2)))).toBe('CRYPTO_E_BAD_CIPHERTEXT: ciphertext is 127 bytes, not a multiple of 16');
    expect(codeOf(() => sm4DecryptHex(GUIDE_KEY, ''))).toBe('CRYPTO_E_BAD_CIPHERTEXT: ciphertext is empty');
    // A wrong key almost always breaks the padding; try a few keys so the test is not luck.
    let padding = 0;
    for (let i = 0; i < 20; i++) {
      const msg = codeOf(() => sm4DecryptHex(randomBytes(16).toString('hex'), GUIDE_CIPHER));
      expect(msg).toMatch(/^CRYPTO_E_BAD_CIPHERTEXT: ciphertext (has bad padding|does not decrypt to UTF-8)/);
      if (msg.includes('bad padding')) padding++;
    }
    expect(padding).toBeGreaterThan(10);
  });

  it('the fallback refuses bad padding too, including a zero pad byte', () => {
    const key = randomBytes(16);
    const zeroPad = opensslSm4.encrypt(key, Buffer.alloc(16, 0)).subarray(0, 16); // first block decrypts to all zeros
    expect(codeOf(() => smCryptoSm4.decrypt(key, zeroPad))).toMatch(/bad padding/);
    expect(codeOf(() => opensslSm4.decrypt(key, zeroPad))).toMatch(/bad padding/);
  });
});
