/**
 * `mllp` (issue 17): forwards the message, as the route's earlier steps left
 * it, to another system over MLLP (ADT from the HIS to the LIS and the PACS)
 * and waits for its ACK:
 *
 * - AA / CA: done;
 * - AE / CE: MLLPOUT_E_AE, retried by the route's delivery policy;
 * - AR / CR: MLLPOUT_E_AR, dead letter at once, with the ERR (or MSA-3) text;
 * - no ACK within `timeout`, a refused or lost connection: MLLP_E_TIMEOUT,
 *   MLLP_E_CONNECT, MLLP_E_CLOSED, retried by policy.
 *
 * Connections are pooled (`pool`, default 2) and kept open between messages;
 * one message at a time on each. Messages with the same ordering key go one
 * after the other (the engine's delivery ordering: `delivery.orderingKey`).
 * The receiver simulator is the `mllpReceiver` site extension (simulator.ts).
 * README.md beside this file.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import {
  decodeHl7, durationSchema, encodeText, HisbridgeError, normalizeCharset, parseDuration, parseHl7, scrubText,
  type Hl7Message, type PluginDefinition, type SiteExtension,
} from '../../core/sdk.js';
import { mllpForwardErrors as errors } from './errors.js';
import { MllpPool } from './pool.js';
import { startMllpReceiver } from './simulator.js';

export interface MllpForwardConfig {
  host: string;
  port: number;
  charset?: string;
  tls?: { ca?: string; cert?: string; key?: string; servername?: string };
  timeout?: number | string;
  pool?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_POOL = 2;
/** Longest text of the receiver's taken into an error (it is scrubbed of ID numbers and phones too). */
const MAX_TEXT = 200;

/** What an ACK said. */
export interface AckReading {
  code: string;
  /** MSA-2: the control id it acknowledges. */
  acknowledges: string;
  /** ERR-8, else ERR-3.2, else MSA-3 ('' when none). */
  text: string;
}

/** Reads an ACK payload; throws MLLPOUT_E_BAD_ACK when it is not one. */
export function readAck(ack: Buffer, charset: string, target: string): AckReading {
  let msg: Hl7Message;
  try {
    msg = parseHl7(decodeHl7(ack, charset).text);
  } catch {
    throw errors.error('MLLPOUT_E_BAD_ACK', { target, detail: 'not an HL7 message' });
  }
  if (!msg.has('MSA-1')) throw errors.error('MLLPOUT_E_BAD_ACK', { target, detail: 'no MSA segment' });
  const text = msg.get('ERR-8') || msg.get('ERR-3.2') || msg.get('MSA-3');
  return { code: msg.get('MSA-1').toUpperCase(), acknowledges: msg.get('MSA-2'), text: scrubText(text.slice(0, MAX_TEXT)) };
}

function tlsOptions(cfg: NonNullable<MllpForwardConfig['tls']>): ConnectionOptions {
  const read = (key: 'ca' | 'cert' | 'key', file: string): Buffer => {
    try {
      return readFileSync(path.resolve(file));
    } catch (e) {
      throw errors.error('MLLPOUT_E_CONFIG', { detail: `tls.${key}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})` });
    }
  };
  return {
    ...(cfg.ca ? { ca: read('ca', cfg.ca) } : {}),
    ...(cfg.cert ? { cert: read('cert', cfg.cert) } : {}),
    ...(cfg.key ? { key: read('key', cfg.key) } : {}),
    ...(cfg.servername ? { servername: cfg.servername } : {}),
  };
}

const plugin: PluginDefinition<MllpForwardConfig> = {
  name: 'mllp',
  summary: 'Forward the message over MLLP to another system (LIS, PACS) and wait for its ACK: AA done, AE retried, AR dead letter',
  kind: 'outbound',
  errors,
  // A delivery waiting for one of the pool's connections holds a delivery worker: bound them so a slow receiver
  // cannot take every worker from the other plugins (delivery.pluginConcurrency.mllp overrides).
  concurrency: 8,
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['host', 'port'],
    properties: {
      host: { type: 'string', minLength: 1, description: 'Receiver host name or IP' },
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Receiver MLLP port' },
      charset: { type: 'string', description: 'Bytes sent in this charset (GBK, GB18030, UTF-8); default: the message MSH-18, else UTF-8' },
      tls: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ca: { type: 'string', minLength: 1, description: 'PEM file of the CA the receiver certificate is checked against (default: the system CAs)' },
          cert: { type: 'string', minLength: 1, description: 'PEM file of our client certificate, for a receiver that asks for one' },
          key: { type: 'string', minLength: 1, description: 'PEM file of its private key' },
          servername: { type: 'string', minLength: 1, description: 'Name checked in the receiver certificate (default: host)' },
        },
        description: 'MLLP inside TLS; {} for the system CAs. File paths are relative to the working directory',
      },
      timeout: { ...durationSchema, description: 'Longest wait for the ACK (default 30s); then MLLP_E_TIMEOUT, retried' },
      pool: { type: 'integer', minimum: 1, maximum: 64, description: 'Connections kept open to the receiver, at most (default 2)' },
    },
  },
  examples: [
    { title: 'ADT to the LIS', yaml: 'plugin: mllp\nconfig: { host: lis.hospital.local, port: 6661, charset: GBK, timeout: 10s }' },
  ],
  create(ctx, config) {
    const target = `${config.host}:${config.port}`;
    if (config.charset !== undefined) {
      try {
        normalizeCharset(config.charset, config.charset);
      } catch {
        throw errors.error('MLLPOUT_E_CONFIG', { detail: `charset "${config.charset.slice(0, 40)}" is not a known HL7 charset (GBK, GB18030, UTF-8 ...)` });
      }
    }
    const timeoutMs = parseDuration(config.timeout, DEFAULT_TIMEOUT_MS);
    const pool = new MllpPool(config.host, config.port, config.pool ?? DEFAULT_POOL, {
      timeoutMs,
      connectTimeoutMs: Math.min(timeoutMs || 10_000, 10_000),
      ...(config.tls ? { tls: tlsOptions(config.tls) } : {}),
    });
    return {
      async process(input, call) {
        const msg = input.hl7;
        if (!msg) throw errors.error('MLLPOUT_E_NOT_HL7', { format: 'JSON' });
        const charset = config.charset ?? (msg.get('MSH-18') || 'utf-8');
        const bytes = encodeText(msg.encode(), charset);
        const started = Date.now();
        const client = await pool.take();
        let healthy = false;
        const onAbort = () => void client.close();
        call.signal.addEventListener('abort', onAbort, { once: true });
        try {
          const ack = readAck(await client.send(bytes), charset, target);
          const sentId = msg.get('MSH-10');
          if (ack.acknowledges !== sentId) {
            throw errors.error('MLLPOUT_E_BAD_ACK', { target, detail: 'MSA-2 does not name the message sent' });
          }
          healthy = true;
          const latencyMs = Date.now() - started;
          ctx.audit({ route: call.route, plugin: 'mllp', operation: 'forward', result: ack.code, latencyMs, messageId: sentId, detail: target });
          if (ack.code === 'AA' || ack.code === 'CA') {
            return { outcome: 'ok', detail: `${ack.code} from ${target}`, output: { ack: ack.code } };
          }
          const text = ack.text || '(no text)';
          if (ack.code === 'AR' || ack.code === 'CR') throw errors.error('MLLPOUT_E_AR', { target, code: ack.code, text });
          if (ack.code === 'AE' || ack.code === 'CE') throw errors.error('MLLPOUT_E_AE', { target, code: ack.code, text });
          throw errors.error('MLLPOUT_E_BAD_ACK', { target, detail: `unknown acknowledgment code ${ack.code.slice(0, 4)}` });
        } catch (e) {
          if (e instanceof HisbridgeError && e.code === 'MLLPOUT_E_BAD_ACK') healthy = false;
          throw e;
        } finally {
          call.signal.removeEventListener('abort', onAbort);
          pool.release(client, healthy);
        }
      },
      close: () => pool.close(),
    };
  },
};

export default plugin;

/** Port of the receiver simulator with the engine's HTTP server off; otherwise derived from the HTTP port (core/engine/sim-ports.ts). */
export const MLLP_RECEIVER_SIMULATOR_PORT = 8483;

/**
 * Site extension `mllpReceiver`: only the `mllp` plugin's simulator, a small
 * MLLP receiver started with the other simulators (`simulators: true`). Its
 * section sets what it answers: `{ answer: AA | AE | AR | hang, text }`.
 */
export const mllpReceiver: SiteExtension = {
  key: 'mllpReceiver',
  summary: 'MLLP receiver simulator for the mllp plugin (answers AA, AE, AR or never)',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      answer: { enum: ['AA', 'AE', 'AR', 'CA', 'CE', 'CR', 'hang'], description: 'What the simulator answers every message (default AA); hang: never answers' },
      text: { type: 'string', description: 'MSA-3 and ERR text of AE/AR answers' },
      charset: { type: 'string', description: 'Charset of frames without MSH-18 (default UTF-8)' },
    },
  },
  defaults: () => ({}),
  simulator: {
    defaultPort: MLLP_RECEIVER_SIMULATOR_PORT,
    start: startMllpReceiver,
  },
};

export { startMllpReceiver, type MllpReceiver, type ReceiverAnswer, type ReceivedMessage } from './simulator.js';
