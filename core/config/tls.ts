/**
 * TLS options shared by every listener that can speak TLS (the HTTP server,
 * MLLP listeners) and by `hisbridge send --tls`: one JSON schema for the
 * `tls:` key and one loader that turns PEM file paths into node:tls options.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TlsOptions } from 'node:tls';
import { hbError } from '../errors.js';

/** JSON schema of `tls: { cert, key, ca?, requestCert? }` (PEM file paths). */
export const tlsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cert', 'key'],
  description: 'TLS with PEM files: { cert, key, ca?, requestCert? }',
  properties: {
    cert: { type: 'string', minLength: 1, description: 'PEM file with the certificate (chain) this side presents' },
    key: { type: 'string', minLength: 1, description: 'PEM file with the private key of `cert`' },
    ca: { type: 'string', minLength: 1, description: 'PEM file with the CA certificate(s) trusted for the other side' },
    requestCert: {
      type: 'boolean',
      description: 'Ask the client for a certificate; with `ca`, a client without a certificate signed by `ca` is refused at the handshake (mutual TLS)',
    },
  },
} as const;

export interface TlsFileConfig {
  cert: string;
  key: string;
  ca?: string;
  requestCert?: boolean;
}

function readPem(baseDir: string | undefined, key: string, file: string): Buffer {
  const full = baseDir && !path.isAbsolute(file) ? path.resolve(baseDir, file) : path.resolve(file);
  let data: Buffer;
  try {
    data = readFileSync(full);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw hbError('CONFIG_E_SCHEMA', { detail: `tls.${key}: cannot read PEM file ${full} (${why})` });
  }
  if (!data.includes('-----BEGIN ')) {
    throw hbError('CONFIG_E_SCHEMA', { detail: `tls.${key}: ${full} is not a PEM file (no "-----BEGIN" line)` });
  }
  return data;
}

/**
 * Reads the PEM files named by a `tls:` section (paths relative to `baseDir`
 * when given) and returns options for tls.createServer / https.createServer /
 * tls.connect. With `requestCert` and `ca`, peers without a certificate signed
 * by `ca` are refused at the handshake (rejectUnauthorized true).
 */
export function loadTlsOptions(cfg: { cert: string; key: string; ca?: string; requestCert?: boolean }, baseDir?: string): TlsOptions {
  const opts: TlsOptions = {
    cert: readPem(baseDir, 'cert', cfg.cert),
    key: readPem(baseDir, 'key', cfg.key),
    minVersion: 'TLSv1.2',
  };
  if (cfg.ca) opts.ca = readPem(baseDir, 'ca', cfg.ca);
  if (cfg.requestCert) {
    // Never accept an unverified client certificate: with `ca` the peer must be signed by it,
    // without `ca` by one of Node's built-in roots.
    opts.requestCert = true;
    opts.rejectUnauthorized = true;
  }
  return opts;
}
