/**
 * Gateway signature of the provincial API gateway (x-tif-* headers, seed 001
 * §9.2.3): signature = upper-case hex SHA-256 of
 * `timestamp + paasToken + nonce + timestamp`, timestamp in unix seconds.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';

/** Computes the x-tif-signature value. */
export function gatewaySignature(timestamp: string, paasToken: string, nonce: string): string {
  return createHash('sha256').update(timestamp + paasToken + nonce + timestamp, 'utf8').digest('hex').toUpperCase();
}

/**
 * A fresh nonce: 32 hex characters carrying 122 random bits (a version-4 UUID
 * without its dashes: unique in practice, unguessable). randomUUID draws from
 * a cached block of entropy; randomBytes(16) asked OpenSSL once per request.
 */
export function newNonce(): string {
  const u = randomUUID();
  return u.slice(0, 8) + u.slice(9, 13) + u.slice(14, 18) + u.slice(19, 23) + u.slice(24);
}

export interface GatewayHeaderOptions {
  paasId: string;
  paasToken: string;
  /** Milliseconds since the epoch; default Date.now(). */
  now?: number;
  /** Default: a fresh random nonce. */
  nonce?: string;
}

/** The four x-tif-* headers for one request. Never log the result: the signature is a credential for its window. */
export function gatewayHeaders(opts: GatewayHeaderOptions): Record<string, string> {
  const timestamp = String(Math.floor((opts.now ?? Date.now()) / 1000));
  const nonce = opts.nonce ?? newNonce();
  return {
    'x-tif-paasid': opts.paasId,
    'x-tif-timestamp': timestamp,
    'x-tif-nonce': nonce,
    'x-tif-signature': gatewaySignature(timestamp, opts.paasToken, nonce),
  };
}

/** Constant-time check of a received signature (used by the simulator). */
export function verifyGatewaySignature(timestamp: string, paasToken: string, nonce: string, signature: string): boolean {
  const want = Buffer.from(gatewaySignature(timestamp, paasToken, nonce));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}
