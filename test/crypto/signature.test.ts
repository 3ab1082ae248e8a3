import { describe, expect, it } from 'vitest';
import { gatewayHeaders, gatewaySignature, verifyGatewaySignature } from '../../core/crypto/signature.js';

describe('gateway signature (x-tif-*)', () => {
  it('matches a hand-computed value', () => {
    // printf '%s' '1700000000tokenabcnonce11700000000' | sha256sum | tr a-f A-F
    expect(gatewaySignature('1700000000', 'tokenabc', 'nonce1')).toBe('C8B47421B24408025D1F4C875D7A75D63381EE2957FC1E856D8421671AF18C71');
  });

  it('builds the four headers with unix seconds and a fresh nonce', () => {
    const h = gatewayHeaders({ paasId: 'pid', paasToken: 'tok', now: 1_700_000_000_999 });
    expect(Object.keys(h).sort()).toEqual(['x-tif-nonce', 'x-tif-paasid', 'x-tif-signature', 'x-tif-timestamp']);
    expect(h['x-tif-paasid']).toBe('pid');
    expect(h['x-tif-timestamp']).toBe('1700000000');
    expect(h['x-tif-nonce']).toMatch(/^[0-9a-f]{32}$/);
    expect(h['x-tif-signature']).toBe(gatewaySignature('1700000000', 'tok', h['x-tif-nonce']!));
    expect(h['x-tif-signature']).toMatch(/^[0-9A-F]{64}$/);
    const nonces = new Set(Array.from({ length: 1000 }, () => gatewayHeaders({ paasId: 'p', paasToken: 't' })['x-tif-nonce']));
    expect(nonces.size).toBe(1000);
  });

  it('verifies in constant time and rejects a wrong token', () => {
    const h = gatewayHeaders({ paasId: 'p', paasToken: 'right', nonce: 'n1', now: 1_000_000 });
    expect(verifyGatewaySignature('1000', 'right', 'n1', h['x-tif-signature']!)).toBe(true);
    expect(verifyGatewaySignature('1000', 'wrong', 'n1', h['x-tif-signature']!)).toBe(false);
    expect(verifyGatewaySignature('1000', 'right', 'n1', 'short')).toBe(false);
  });
});
