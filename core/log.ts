import { pino, type Logger, type DestinationStream } from 'pino';
import { scrubText } from './mask.js';

export type { Logger };

/**
 * Two layers keep PHI out of logs: the keys below are redacted by name, and
 * every written line passes through `scrubText` (core/mask.ts), which masks
 * ID-number- and mobile-shaped values anywhere in it.
 *
 * Keys that must never appear in a log line with a value. Redaction is a
 * safety net: code is expected to log only masked values (core/mask.ts), ids
 * (MSH-10), route/plugin names and outcomes.
 */
export const REDACT_PATHS = [
  'password', 'passwd', 'token', 'paasToken', 'sm4Key', 'secret', 'authorization', 'cookie',
  'idcard', 'idCard', 'patientIdcard', 'idNumber', 'patientName', 'name', 'phone', 'raw', 'hl7', 'body',
  '*.password', '*.token', '*.paasToken', '*.sm4Key', '*.secret', '*.authorization', '*.cookie',
  '*.idcard', '*.idCard', '*.patientIdcard', '*.idNumber', '*.patientName', '*.phone', '*.raw', '*.hl7', '*.body',
  'headers["x-tif-signature"]', 'req.headers.authorization', 'req.headers.cookie',
];

export interface LogOptions {
  level?: string;
  /** Destination stream; default stdout. Tests pass a memory stream to scan logs for PHI. */
  destination?: DestinationStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.HISBRIDGE_LOG_LEVEL ?? 'info',
      base: { app: 'hisbridge' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Every finished line, whatever field or message text it came from (MSH-10, MSH-9, error texts,
      // child bindings), has ID-number- and mobile-shaped values masked before it is written.
      hooks: { streamWrite: scrubText },
    },
    opts.destination,
  );
}

/** A logger that drops everything (unit tests, CLI commands that print their own output). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
