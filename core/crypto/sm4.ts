/**
 * SM4 as the Guangdong health-record guide uses it (seed 001 §9.3.3): ECB
 * mode, PKCS#7 padding, key = 32 hex characters decoded to 16 bytes,
 * ciphertext as lower-case hex, text as UTF-8.
 *
 * Node's OpenSSL (`sm4-ecb`) does the work; sm-crypto is the fallback for
 * builds whose OpenSSL lacks SM4, and the independent implementation tests
 * compare against. The backend is chosen once, on first use.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import smCrypto from 'sm-crypto';
import { hbError } from '../errors.js';

const BLOCK = 16;
const KEY_HEX = /^[0-9a-fA-F]{32}$/;
const HEX = /^[0-9a-fA-F]*$/;

/** One SM4-ECB/PKCS#7 implementation working on bytes. Inputs are already validated. */
export interface Sm4Impl {
  readonly name: 'openssl' | 'sm-crypto';
  encrypt(key: Buffer, plain: Buffer): Buffer;
  /** Throws CRYPTO_E_BAD_CIPHERTEXT when the padding is wrong (usually: wrong key). */
  decrypt(key: Buffer, cipher: Buffer): Buffer;
}

const badPadding = () => hbError('CRYPTO_E_BAD_CIPHERTEXT', { detail: 'has bad padding (wrong key?)' });

export const opensslSm4: Sm4Impl = {
  name: 'openssl',
  encrypt(key, plain) {
    const c = createCipheriv('sm4-ecb', key, null);
    return Buffer.concat([c.update(plain), c.final()]);
  },
  decrypt(key, cipher) {
    const d = createDecipheriv('sm4-ecb', key, null);
    const head = d.update(cipher);
    let tail: Buffer;
    try {
      tail = d.final();
    } catch (e) {
      throw hbError('CRYPTO_E_BAD_CIPHERTEXT', { detail: 'has bad padding (wrong key?)' }, { cause: e });
    }
    return Buffer.concat([head, tail]);
  },
};

/**
 * sm-crypto fed with bytes, not strings: its own UTF-8 encoder differs from
 * the standard for code points U+40000..U+FFFFF and throws on lone surrogates.
 * Padding is checked here because sm-crypto accepts a zero pad byte.
 */
export const smCryptoSm4: Sm4Impl = {
  name: 'sm-crypto',
  encrypt(key, plain) {
    const out = smCrypto.sm4.encrypt(Array.from(plain), Array.from(key), { output: 'array', padding: 'pkcs#7' });
    return Buffer.from(out);
  },
  decrypt(key, cipher) {
    const out = Buffer.from(smCrypto.sm4.decrypt(Array.from(cipher), Array.from(key), { output: 'array', padding: 'none' }));
    const pad = out[out.length - 1] ?? 0;
    if (pad < 1 || pad > BLOCK || pad > out.length) throw badPadding();
    for (let i = out.length - pad; i < out.length; i++) if (out[i] !== pad) throw badPadding();
    return out.subarray(0, out.length - pad);
  },
};

let backend: Sm4Impl | undefined;

/** The implementation in use: OpenSSL when it has SM4 (checked once with a known answer), else sm-crypto. */
export function sm4Backend(): Sm4Impl {
  if (!backend) {
    backend = smCryptoSm4;
    try {
      const key = Buffer.alloc(16, 1);
      const probe = Buffer.from('hisbridge probe');
      if (opensslSm4.encrypt(key, probe).equals(smCryptoSm4.encrypt(key, probe))) backend = opensslSm4;
    } catch {
      // OpenSSL built without SM4 (or with it disabled by policy): keep the fallback.
    }
  }
  return backend;
}

/** Decodes and checks a key given as 32 hex characters. */
export function parseSm4Key(key: string | Buffer): Buffer {
  if (Buffer.isBuffer(key)) {
    if (key.length !== BLOCK) throw hbError('CRYPTO_E_BAD_KEY');
    return key;
  }
  if (typeof key !== 'string' || !KEY_HEX.test(key)) throw hbError('CRYPTO_E_BAD_KEY');
  return Buffer.from(key, 'hex');
}

function checkCipherBytes(cipher: Buffer): void {
  if (cipher.length === 0) throw hbError('CRYPTO_E_BAD_CIPHERTEXT', { detail: 'is empty' });
  if (cipher.length % BLOCK !== 0) throw hbError('CRYPTO_E_BAD_CIPHERTEXT', { detail: `is ${cipher.length} bytes, not a multiple of 16` });
}

/** Encrypts bytes (SM4-ECB, PKCS#7). */
export function sm4Encrypt(key: string | Buffer, plain: Buffer): Buffer {
  return sm4Backend().encrypt(parseSm4Key(key), plain);
}

/** Decrypts bytes; CRYPTO_E_BAD_CIPHERTEXT for a wrong length or bad padding. */
export function sm4Decrypt(key: string | Buffer, cipher: Buffer): Buffer {
  const k = parseSm4Key(key);
  checkCipherBytes(cipher);
  return sm4Backend().decrypt(k, cipher);
}

/** Encrypts UTF-8 text; returns lower-case hex, as the guide's Java example prints it. */
export function sm4EncryptHex(keyHex: string, plaintext: string): string {
  return sm4Encrypt(keyHex, Buffer.from(plaintext, 'utf8')).toString('hex');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decrypts hex ciphertext (either case) to UTF-8 text. Errors say which check
 * failed: not hex, odd length, not a multiple of 16 bytes, bad padding, not UTF-8.
 */
export function sm4DecryptHex(keyHex: string, cipherHex: string): string {
  const key = parseSm4Key(keyHex);
  if (typeof cipherHex !== 'string' || !HEX.test(cipherHex)) throw hbError('CRYPTO_E_BAD_CIPHERTEXT', { detail: 'is not hex' });
  if (cipherHex.length % 2 !== 0) throw hbError('CRYPTO_E_BAD_CIPHERTEXT', { detail: 'has an odd number of hex digits' });
  const plain = sm4Decrypt(key, Buffer.from(cipherHex, 'hex'));
  try {
    return utf8.decode(plain);
  } catch (e) {
    throw hbError('CRYPTO_E_BAD_CIPHERTEXT', { detail: 'does not decrypt to UTF-8 text (wrong key?)' }, { cause: e });
  }
}
