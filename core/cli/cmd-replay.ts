/**
 * `hisbridge replay` in two modes.
 *
 * Files: `replay FILES|DIR [--routes DIR] [--config F] [--timeout 30s]` runs
 * HL7 files through the routes in-process against the simulators and prints
 * one JSON line per message. Exit 0 when every message was accepted and every
 * route ended ok (or filtered/skipped), 1 otherwise, 2 on usage errors.
 *
 * Stored: `replay --stored ID[,ID...] | --stored-since T [--route R]` re-queues
 * the finished deliveries of messages kept in a data directory (see
 * `Store.replayStored`); a running engine picks them up at its next poll.
 * (Dead deliveries alone: `dlq replay`.)
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../config/duration.js';
import { err, loadConfig, out, parse, reportLoadError, siteRegistry } from './common.js';
import { submitBlock } from '../engine/block.js';
import { legacyResult } from '../engine/ingest.js';
import { STORE_FLAGS, openDataStore, operator, parseTime } from './cmd-messages.js';
import type { ReplayFilter } from '../store/types.js';
import { startInProcess, toolLogger } from './route-test/inproc.js';
import { ackAccepted, settle, type FinalRoute } from './route-test/settle.js';

const HELP = `usage: hisbridge replay FILES|DIR [--routes DIR] [--config F] [--timeout 30s]
       hisbridge replay --stored ID[,ID...] | --stored-since T [--route R] [--data-dir D] [--config F] [--json]

Runs every message of the HL7 files (a directory means its *.hl7 files,
sorted) through the routes in-process: temporary data directory, simulators
on random ports, no listeners. A file is split exactly as the MLLP listener
splits one block: several messages (CR, LF or CRLF terminators) and HL7
batches (FHS/BHS ... BTS/FTS) give one line per enclosed message. After each message waits until its deliveries
are done or dead (at most --timeout), then prints one JSON line:
  {"file","index","controlId","type","ack","reason"?,"errorCode"?,"routes":[{"route","outcome","deliveries":[{"plugin","step","state","attempts","error"}]}]}
index counts messages within the file from 1; reason (MSA-3) and errorCode
come with an ACK that is not AA/CA. A batch trailer that disagrees with the
messages is processed anyway with a warn line on stderr. Exit 1 when an ACK is not
AA/CA, a route failed, or a delivery is dead or unfinished; 2 on usage errors.

--stored / --stored-since: messages kept in the data directory (--data-dir,
else dataDir of --config, else ./data; ids from \`messages search\`; T an ISO
date/time or an age such as 24h). Their done and dead deliveries (of route R
only, with --route) go back to pending with attempts reset, keeping their
ordering key, their place in it and their idempotency key; deliveries still
running are left alone, and so are messages whose body retention removed.
A running engine picks them up at its next poll. Prints what was re-queued
per message; audited with your login name. Exit 1 when an id does not exist
(then nothing is re-queued) or a named message's body was purged.`;

/** True when the arguments ask for the stored mode. */
function isStored(argv: readonly string[]): boolean {
  return argv.some((a) => /^--stored(-since)?(=|$)/.test(a));
}

/** `--stored 3,4 --stored 9` → [3, 4, 9]; throws on anything but positive integers. */
export function storedIds(values: readonly string[]): number[] {
  const ids = values.flatMap((v) => v.split(',')).map((x) => x.trim()).filter(Boolean).map(Number);
  if (!ids.length || ids.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error('--stored takes message ids (positive integers, comma-separated; see messages search)');
  return ids;
}

async function runStored(argv: string[]): Promise<number> {
  let values: { stored?: string[]; 'stored-since'?: string; route?: string; 'data-dir'?: string; config?: string; json?: boolean; help?: boolean };
  let filter: ReplayFilter;
  try {
    ({ values } = parse(argv, { ...STORE_FLAGS, stored: { type: 'string', multiple: true }, 'stored-since': { type: 'string' }, route: { type: 'string' } }, false));
    if (values.help) return out(HELP), 0;
    if (values.stored && values['stored-since'] !== undefined) throw new Error('give --stored or --stored-since, not both');
    const route = values.route ? { route: values.route } : {};
    const since = values.stored ? undefined : parseTime(values['stored-since'], Date.now(), '--stored-since');
    if (!values.stored && since === undefined) throw new Error('--stored-since needs a time');
    filter = values.stored ? { messageIds: storedIds(values.stored), ...route } : { since: since!, ...route };
  } catch (e) {
    err(`hisbridge replay: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  let store;
  try {
    store = await openDataStore(values);
  } catch (e) {
    if (!reportLoadError(e)) err(`hisbridge replay: ${(e as Error).message}`);
    return 1;
  }
  try {
    const r = store.replayStored(filter, { staffNo: operator() });
    if (r.missing.length) {
      err(`hisbridge replay: no stored message with id ${r.missing.join(', ')}; nothing re-queued`);
      return 1;
    }
    const total = r.messages.reduce((n, m) => n + m.requeued, 0);
    const purged = r.messages.filter((m) => m.purged);
    if (values.json) out(JSON.stringify({ requeued: total, messages: r.messages }));
    else {
      for (const m of r.messages) {
        const notes = [m.stillOpen ? `${m.stillOpen} still running, left alone` : '', m.purged ? 'body purged by retention, not replayed' : ''].filter(Boolean);
        out(`message ${m.messageId} (MSH-10 ${m.controlId}): ${m.requeued} deliver${m.requeued === 1 ? 'y' : 'ies'} re-queued${notes.length ? `; ${notes.join('; ')}` : ''}`);
      }
      out(r.messages.length
        ? `re-queued ${total} deliveries of ${r.messages.length} message(s)${values.route ? ` (route ${values.route})` : ''}; a running engine picks them up at its next poll`
        : 'no stored message with deliveries in that range');
    }
    return filter.messageIds && purged.length ? 1 : 0;
  } catch (e) {
    err(`hisbridge replay: ${(e as { code?: string }).code ? `${(e as { code: string }).code}: ` : ''}${(e as Error).message}`);
    return 1;
  } finally {
    store.close();
  }
}

/** The HL7 files named on the command line, directories expanded to their *.hl7 files in name order. */
export function replayFiles(inputs: readonly string[]): string[] {
  const files: string[] = [];
  for (const p of inputs) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) throw new Error(`no such file or directory: ${p}`);
    if (st.isDirectory()) {
      for (const f of readdirSync(p).sort()) if (f.endsWith('.hl7')) files.push(path.join(p, f));
    } else files.push(p);
  }
  return files;
}

/** MSA-3 of an ACK (the reason of an AE/AR), '' when absent. The ACK uses the message's own field separator. */
export function ackReason(ackText: string): string {
  for (const seg of ackText.split(/\r\n?|\n/)) {
    if (seg.startsWith('MSA') && seg.length > 3) return seg.split(seg[3]!)[3] ?? '';
  }
  return '';
}

/** A route result that makes replay exit 1. */
function isBad(r: FinalRoute): boolean {
  return r.outcome === 'failed' || r.outcome === 'unfinished' || r.deliveries.some((d) => d.state !== 'done');
}

export async function run(argv: string[]): Promise<number> {
  if (isStored(argv)) return runStored(argv);
  let values: { routes?: string; config?: string; timeout?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv, { routes: { type: 'string' }, config: { type: 'string' }, timeout: { type: 'string', default: '30s' } }));
  } catch (e) {
    err(`hisbridge replay: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    out(HELP);
    return 0;
  }
  if (positionals.length === 0) {
    err(HELP);
    return 2;
  }
  let timeoutMs: number;
  let files: string[];
  try {
    timeoutMs = parseDuration(/^\d+$/.test(values.timeout ?? '') ? Number(values.timeout) : values.timeout, 30_000);
    files = replayFiles(positionals);
  } catch (e) {
    err(`hisbridge replay: ${(e as Error).message}`);
    return 2;
  }
  if (files.length === 0) {
    err('hisbridge replay: no .hl7 file in the input');
    return 2;
  }

  let run;
  try {
    const reg = await siteRegistry(values.config);
    const config = loadConfig(values.config, reg, values.routes ? { routesDir: values.routes } : {});
    run = await startInProcess({ registry: reg, routes: [config.routesDir], ...(config.file ? { configFile: config.file } : {}) });
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge replay: ${(e as Error).message}`);
    return 1;
  }

  let bad = 0;
  try {
    // Several messages per file are the norm here, whatever the listener's multiMessageBlocks says.
    const listener = { ...run.listener, multiMessageBlocks: 'split' as const };
    // The splitter's warnings (a batch trailer that disagrees, lines outside any message) show on stderr, like the listener's.
    const blockLog = toolLogger('warn');
    for (const file of files) {
      const bytes = readFileSync(file);
      if (!/(?:^|[\r\n\x0b])(?:\xef\xbb\xbf)?(?:MSH|FHS|BHS)/.test(bytes.toString('latin1'))) {
        err(`hisbridge replay: ${file}: no HL7 message (no line starting with MSH)`);
        bad++;
        continue;
      }
      let index = 0;
      // The listener's own splitter (the engine's submitBlock); each message settles before the next is submitted.
      await submitBlock(bytes, {
        source: listener.name,
        defaultCharset: listener.charset,
        noRoute: listener.noRoute,
        ...(listener.invalidBytes ? { invalidBytes: listener.invalidBytes } : {}),
        multiMessageBlocks: 'split',
        after: async (_i, outcome) => {
          const result = legacyResult(outcome);
          const routes = await settle(run.engine.store, result, timeoutMs);
          if (!ackAccepted(result.code) || routes.some(isBad)) bad++;
          out(JSON.stringify({
            file,
            index: ++index,
            controlId: result.controlId ?? '',
            type: result.type ?? '',
            ack: result.code,
            ...(ackAccepted(result.code) ? {} : { reason: ackReason(result.ackText), ...(result.errorCode ? { errorCode: result.errorCode } : {}) }),
            ...(result.duplicate ? { duplicate: true } : {}),
            routes,
          }));
        },
      }, { submit: run.engine.submit, log: blockLog });
    }
  } finally {
    await run.close();
  }
  return bad ? 1 : 0;
}
