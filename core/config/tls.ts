/**
 * TLS for listeners: `tls: { cert, key, ca?, requestCert? }` (PEM file paths).
 * The same block configures an MLLP listener and the HTTP server. Relative
 * paths are read from the directory of hisbridge.yaml. With `requestCert`
 * and `ca`, a client must present a certificate signed by `ca` or the
 * handshake fails (mutual TLS). Errors name the key and the file, never the
 * file's contents.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { hbError } from '../errors.js';

/** The `tls:` block as written in the config. */
export interface TlsConfig {
  /** Server (or client) certificate chain, PEM. */
  cert: string;
  /** Private key of `cert`, PEM (unencrypted). */
  key: string;
  /** CA certificate(s), PEM: clients must be signed by it when `requestCert` is set. */
  ca?: string;
  /** Ask every client for a certificate and refuse the handshake without a valid one (needs `ca`). */
  requestCert?: boolean;
}

/** JSON schema of the `tls:` block (used by the listener and HTTP sections). */
export const tlsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cert', 'key'],
  properties: {
    cert: { type: 'string', minLength: 1, description: 'PEM file of the certificate (chain); relative to hisbridge.yaml' },
    key: { type: 'string', minLength: 1, description: 'PEM file of its private key (unencrypted); keep it readable by the engine only' },
    ca: { type: 'string', minLength: 1, description: 'PEM file of the CA that signs client certificates (mutual TLS)' },
    requestCert: { type: 'boolean', description: 'Require a client certificate signed by ca; clients without one are refused at the handshake (needs ca)' },
  },
  description: 'TLS on this listener: { cert, key, ca?, requestCert? } (PEM file paths)',
} as const;

function readPem(which: 'cert' | 'key' | 'ca', file: string, baseDir: string | undefined): Buffer {
  const full = baseDir && !path.isAbsolute(file) ? path.resolve(baseDir, file) : path.resolve(file);
  let data: Buffer;
  try {
    data = readFileSync(full);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw hbError('CONFIG_E_SCHEMA', { detail: `tls.${which}: cannot read PEM file ${full} (${code})` });
  }
  if (!data.includes('-----BEGIN ')) throw hbError('CONFIG_E_SCHEMA', { detail: `tls.${which}: ${full} is not a PEM file (no "-----BEGIN" line)` });
  return data;
}

/**
 * Reads the PEM files of a `tls:` block and returns options for
 * `tls.createServer` (and, for a client, `tls.connect`). Throws
 * CONFIG_E_SCHEMA naming the file when one is missing or not PEM, when the
 * key does not belong to the certificate, or when `requestCert` has no `ca`.
 */
export function loadTlsOptions(cfg: TlsConfig, baseDir?: string): tls.TlsOptions {
  if (cfg.requestCert && !cfg.ca) {
    // Without a CA of our own, any certificate from a public CA would pass: refuse the config instead.
    throw hbError('CONFIG_E_SCHEMA', { detail: 'tls.requestCert needs tls.ca (the CA that signs the clients\' certificates)' });
  }
  const opts: tls.TlsOptions = {
    cert: readPem('cert', cfg.cert, baseDir),
    key: readPem('key', cfg.key, baseDir),
    minVersion: 'TLSv1.2',
  };
  if (cfg.ca) opts.ca = readPem('ca', cfg.ca, baseDir);
  if (cfg.requestCert) {
    opts.requestCert = true;
    opts.rejectUnauthorized = true;
  }
  try {
    tls.createSecureContext(opts);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw hbError('CONFIG_E_SCHEMA', { detail: `tls: cert ${cfg.cert} / key ${cfg.key}${cfg.ca ? ` / ca ${cfg.ca}` : ''} cannot be used (${reason})` });
  }
  return opts;
}

/** The same block under the name the HTTP server's config uses. */
export type TlsFileConfig = TlsConfig;
