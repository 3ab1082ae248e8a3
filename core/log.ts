import { pino, type Logger, type DestinationStream } from 'pino';
import { LOG_KEYS } from './mask-fields.js';
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
const SECRET_KEYS = ['password', 'passwd', 'token', 'paasToken', 'sm4Key', 'secret', 'authorization', 'cookie'];
/** Message bodies are never logged whole. */
const BODY_KEYS = ['raw', 'hl7', 'body'];

/** Secrets, the person-identifying keys of core/mask-fields.ts (LOG_KEYS) and message bodies, at the top level and one level down. */
export const REDACT_PATHS = [
  ...SECRET_KEYS, ...LOG_KEYS, ...BODY_KEYS,
  ...[...SECRET_KEYS.filter((k) => k !== 'passwd'), ...LOG_KEYS.filter((k) => k !== 'name'), ...BODY_KEYS].map((k) => `*.${k}`),
  'headers["x-tif-signature"]', 'req.headers.authorization', 'req.headers.cookie',
].filter((k, i, all) => all.indexOf(k) === i);

export interface LogOptions {
  level?: string;
  /** Destination stream; default stdout. Tests pass a memory stream to scan logs for PHI. */
  destination?: DestinationStream;
}

const CHINDINGS = pino.symbols.chindingsSym;

interface Bound {
  chindings: string;
  keys: ReadonlySet<string>;
}

/** The keys a logger has bound (its child bindings and the base), by logger; recomputed when they change. */
const BOUND = new WeakMap<object, Bound>();

function chindingsOf(logger: object): string {
  const c = (logger as Record<symbol, unknown>)[CHINDINGS];
  return typeof c === 'string' ? c : '';
}

function boundKeys(logger: object): ReadonlySet<string> {
  const chindings = chindingsOf(logger);
  const cached = BOUND.get(logger);
  if (cached && cached.chindings === chindings) return cached.keys;
  let keys: ReadonlySet<string>;
  try {
    keys = new Set(Object.keys(JSON.parse(`{${chindings.slice(1)}}`) as object));
  } catch {
    keys = new Set();
  }
  BOUND.set(logger, { chindings, keys });
  return keys;
}

/**
 * Each key once per line. pino writes a child's bindings and then the object
 * of the call as they are, so `log.child({ listener }).info({ listener })`, or
 * a child of a child binding the same key again, would write the key twice
 * in one JSON line (and JSON.parse would quietly keep the last). Two guards:
 *
 * - `onChild`: a child whose bindings repeat a key keeps the key once, with
 *   the value bound last (the child's own);
 * - `logMethod`: keys of a call's object that the logger already binds are
 *   dropped from the object; the bound value stays.
 */
function dedupeChild(child: Logger): void {
  const chindings = chindingsOf(child);
  if (!chindings) return;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>;
  } catch {
    return;
  }
  const keys = Object.keys(parsed);
  let rebuilt = '';
  for (const k of keys) rebuilt += `,${JSON.stringify(k)}:${JSON.stringify(parsed[k])}`;
  // Same text length means no key was repeated (a repeat always adds at least `,"k":v`).
  if (rebuilt.length !== chindings.length) (child as unknown as Record<symbol, unknown>)[CHINDINGS] = rebuilt;
}

function withoutBoundKeys(this: Logger, args: unknown[], method: (...a: unknown[]) => void): void {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !(first instanceof Error)) {
    const bound = boundKeys(this);
    if (bound.size) {
      let copy: Record<string, unknown> | undefined;
      for (const k of Object.keys(first)) {
        if (!bound.has(k)) continue;
        copy ??= { ...(first as Record<string, unknown>) };
        delete copy[k];
      }
      if (copy) args = [copy, ...args.slice(1)];
    }
  }
  method.apply(this, args);
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
      hooks: { streamWrite: scrubText, logMethod: withoutBoundKeys as never },
      onChild: dedupeChild,
    },
    opts.destination,
  );
}

/** A logger that drops everything (unit tests, CLI commands that print their own output). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
