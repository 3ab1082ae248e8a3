/**
 * `hisbridge messages search|show`: browse the durable store. Identifiers are
 * masked unless `show --unmask` is given, and every unmask is audited with the
 * operator's login name. Safe while the engine runs (WAL + busy timeout).
 */
import { decodeHl7, parseHl7 } from '../hl7/index.js';
import { parseTimeBound, parseTimeBounds } from '../ops/queries.js';
import { maskedField, type MaskKind } from '../mask-fields.js';
import { maskId, maskIdNumber, maskName, maskPhone, scrubText } from '../mask.js';
import { jsonViewText } from '../ops/console/json-view.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DB_FILE, Store } from '../store/sqlite.js';
import type { MessageDetail, MessageStatus, MessageSummary } from '../store/types.js';
import { err, loadConfig, out, parse, reportLoadError, siteRegistry } from './common.js';

/** Store options shared by the ops commands. */
export const STORE_FLAGS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Opens the store named by --data-dir, else the `dataDir` of --config (or $HISBRIDGE_CONFIG), else ./data. */
export async function openDataStore(values: { 'data-dir'?: string; config?: string }): Promise<Store> {
  let dir = values['data-dir'];
  if (!dir) dir = loadConfig(values.config, await siteRegistry(values.config)).dataDir;
  // Never create an empty store by mistake (a typo in --data-dir would show "no messages").
  if (!existsSync(path.join(dir, DB_FILE))) throw new Error(`no hisbridge store in ${dir} (use --data-dir or --config)`);
  return Store.open(dir, { synchronous: 'FULL' });
}

/** Who is running the command, for audit rows. */
export function operator(): string {
  return process.env.SUDO_USER || process.env.USER || process.env.LOGNAME || 'unknown';
}

/** `2026-01-31`, `2026-01-31T08:00`, or a age such as `30m`, `24h`, `7d` (that long ago). */
export function parseTime(v: string | undefined, now = Date.now(), flag = '--since/--until'): number | undefined {
  return parseTimeBound(flag, v, now);
}

/** --since and --until of a command, checked together (OPS_E_BAD_QUERY naming the flag). */
export function parseTimeFlags(values: { since?: string | undefined; until?: string | undefined }): { since?: number; until?: number } {
  return parseTimeBounds(values, Date.now(), { since: '--since', until: '--until' });
}

const STATUSES: MessageStatus[] = ['queued', 'done', 'dead', 'rejected'];

const USAGE = `usage:
  hisbridge messages search [--status S] [--control-id ID] [--patient ID] [--since T] [--until T] [--limit N] [--before ID] [--json]
  hisbridge messages show ID [--unmask] [--json]
options: --data-dir D (default: dataDir of --config, else ./data), --config F
  S: ${STATUSES.join(' | ')};  T: ISO date/time or an age (30m, 24h, 7d)
  Identifiers are masked; --unmask shows them and is written to the audit trail with your login name.`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'search') return await search(rest);
    if (sub === 'show') return await show(rest);
    out(USAGE);
    return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge messages: ${(e as { code?: string }).code ? `${(e as { code: string }).code}: ` : ''}${(e as Error).message}`);
    return 1;
  }
}

async function search(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    ...STORE_FLAGS,
    status: { type: 'string' },
    'control-id': { type: 'string' },
    patient: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    before: { type: 'string' },
  }, false);
  if (values.help) return out(USAGE), 0;
  if (values.status && !STATUSES.includes(values.status as MessageStatus)) throw new Error(`--status must be one of ${STATUSES.join(', ')}`);
  const bounds = parseTimeFlags(values);
  const store = await openDataStore(values);
  try {
    const rows = store.searchMessages({
      limit: values.limit ? Number(values.limit) : 50,
      ...(values.status ? { status: values.status as MessageStatus } : {}),
      ...(values['control-id'] ? { controlId: values['control-id'] } : {}),
      ...(values.patient ? { patientId: values.patient } : {}),
      ...bounds,
      ...(values.before ? { before: Number(values.before) } : {}),
    });
    const masked = rows.map((r) => ({ ...r, ...maskedHeader(r), ...(r.patientId ? { patientId: maskId(r.patientId) } : {}) }));
    if (values.json) out(JSON.stringify(masked, null, 2));
    else {
      out(['ID', 'RECEIVED', 'TYPE', 'MSH-10', 'SENDER', 'PATIENT', 'ACK', 'STATUS'].join('\t'));
      for (const r of masked) out(summaryLine(r));
      if (rows.length) out(`(${rows.length} shown; next page: --before ${rows[rows.length - 1]!.id})`);
    }
    return 0;
  } finally {
    store.close();
  }
}

/** MSH-9 and MSH-10 as shown: a HIS may put an ID or mobile number there, and the body below is masked too. */
function maskedHeader(r: Pick<MessageSummary, 'type' | 'controlId'>): Pick<MessageSummary, 'type' | 'controlId'> {
  return { type: scrubText(r.type), controlId: scrubText(r.controlId) };
}

function summaryLine(r: MessageSummary): string {
  return [r.id, new Date(r.receivedAt).toISOString(), r.type, r.controlId, `${r.sendingApp}/${r.sendingFacility}`, r.patientId ?? '', r.ackCode, r.status].join('\t');
}

async function show(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...STORE_FLAGS, unmask: { type: 'boolean' } });
  if (values.help) return out(USAGE), 0;
  const id = Number(positionals[0]);
  if (!Number.isInteger(id) || id <= 0) throw new Error('messages show needs a message id (see messages search)');
  const store = await openDataStore(values);
  try {
    const m = store.getMessage(id);
    if (!m) {
      err(`hisbridge messages: message ${id} not found`);
      return 1;
    }
    const unmask = values.unmask === true;
    if (unmask) {
      store.audit({ plugin: 'cli', operation: 'unmask', staffNo: operator(), messageId: String(id), ...(m.patientId ? { patientId: m.patientId } : {}), result: 'ok' });
    }
    const text = m.raw ? (m.format === 'json' ? jsonViewText(m.raw, unmask) : renderHl7(m, unmask)) : '(body purged by retention)';
    const deliveries = m.deliveries.map((d) => ({
      ...d,
      // Values computed from the message (names, ids) stay hidden unless unmasked.
      vars: unmask ? d.vars : Object.keys(d.vars),
      ...(d.output ? { output: unmask ? d.output : Object.keys(d.output) } : {}),
    }));
    const meta = { ...m, ...(unmask ? {} : maskedHeader(m)), raw: undefined, patientId: unmask ? m.patientId : maskId(m.patientId), deliveries };
    if (values.json) {
      out(JSON.stringify({ ...meta, ...(m.format === 'json' ? { event: text } : { hl7: text }) }, null, 2));
      return 0;
    }
    out(summaryLine({ ...m, type: meta.type, controlId: meta.controlId, patientId: meta.patientId ?? '' }));
    out(`charset ${m.charset}, ${m.rawBytes} bytes${m.purgedAt ? `, body purged ${new Date(m.purgedAt).toISOString()}` : ''}${m.flags?.length ? `, marked ${m.flags.join(', ')}` : ''}`);
    out('');
    out(text.replace(/\r\n?|\n/g, '\n').trimEnd());
    out('');
    for (const d of deliveries) {
      out(`delivery ${d.id}  ${d.route}#${d.step} ${d.plugin}  key=${unmask ? d.orderingKey : scrubText(d.orderingKey)}  ${d.state}  attempts ${d.attempts}/${d.maxAttempts}${d.lastErrorCode ? `  ${d.lastErrorCode}: ${d.lastError ?? ''}` : ''}`);
      for (const a of d.attemptLog) {
        out(`  ${new Date(a.at).toISOString()}  #${a.attempt} ${a.outcome}${a.errorCode ? ` ${a.errorCode}` : ''}${a.reason ? ` ${a.reason}` : ''}${a.latencyMs !== undefined ? ` (${a.latencyMs} ms)` : ''}`);
      }
    }
    if (!unmask) out('\n(identifiers masked; --unmask shows them and is audited)');
    return 0;
  } finally {
    store.close();
  }
}

/** One masked component, shaped by what the field holds (core/mask-fields.ts). */
function maskComponent(kind: MaskKind, v: string): string {
  if (!v) return v;
  switch (kind) {
    case 'idNumber':
    case 'id': return /^\d{14,17}[\dXx]$/.test(v) ? maskIdNumber(v) : maskId(v);
    case 'name': return maskName(v);
    case 'phone': return /\d{5}/.test(v) ? maskPhone(v) : maskId(v);
    case 'address': return '***';
    case 'birthDate': return v.length <= 4 ? '*'.repeat(v.length) : v.slice(0, 4) + '*'.repeat(v.length - 4);
  }
}

/**
 * The stored message as text, parsed with the message's own delimiters. When
 * masked: PHI fields component by component (codes such as an id type `PI`
 * keep their place so the structure stays readable), embedded documents
 * (OBX ED/base64) summarised, and ID/mobile numbers anywhere else scrubbed.
 */
export function renderHl7(m: Pick<MessageDetail, 'raw' | 'charset'>, unmask: boolean): string {
  const { text } = decodeHl7(m.raw!, m.charset, m.charset);
  if (unmask) return text;
  const d = parseHl7(text).delimiters;
  return text.split(/\r\n|\r|\n/).map((line) => {
    const fields = line.split(d.field);
    const seg = fields[0] ?? '';
    return fields.map((f, i) => {
      if (seg === 'MSH' && i <= 1) return f;
      if (seg === 'OBX' && i === 5 && f.length > 200) return `[${f.length} characters of embedded data]`;
      // The shared list says which fields identify a person, and which of their components (the rest are codes such as an id type `PI`).
      const rule = seg.length === 3 ? maskedField(seg, seg === 'MSH' ? i + 1 : i) : undefined;
      if (!rule) return scrubText(f);
      return f.split(d.repetition).map((rep) => {
        const comps = rep.split(d.component);
        const keep = (ci: number) => rule.components !== undefined && !rule.components.includes(ci + 1);
        return comps.map((c, ci) => (keep(ci) ? scrubText(c) : c.split(d.subcomponent).map((s) => maskComponent(rule.kind, s)).join(d.subcomponent))).join(d.component);
      }).join(d.repetition);
    }).join(d.field);
  }).join('\r');
}
