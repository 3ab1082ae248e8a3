import { describe, expect, it } from 'vitest';
import { benchSm4 } from '../../bench/sm4.js';

describe('bench/sm4.ts', () => {
  it('reports OpenSSL and sm-crypto side by side for both payload sizes', async () => {
    const r = await benchSm4({ quick: true, trials: 1, largeBytes: 64 * 1024 });
    expect(r.results.map((x) => [x.name, x.unit])).toEqual([
      ['sm4-encrypt-100B', 'ops/s'],
      ['sm4-encrypt-1MiB', 'MB/s'],
    ]);
    for (const x of r.results) {
      expect(x.openssl).toBeGreaterThan(0);
      expect(x.smCrypto).toBeGreaterThan(0);
    }
  });
});
