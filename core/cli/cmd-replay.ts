/**
 * `hisbridge replay FILES|DIR [--routes DIR] [--config F] [--timeout 30s]`:
 * runs HL7 files through the routes in-process against the simulators and
 * prints one JSON line per message. Exit 0 when every message was accepted
 * and every route ended ok (or filtered/skipped), 1 otherwise, 2 on usage
 * errors. (Replaying messages kept in a data directory is `dlq replay`.)
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../config/duration.js';
import { err, loadConfig, out, parse, readMessages, registry, reportLoadError } from './common.js';
import { startInProcess } from './route-test/inproc.js';
import { ackAccepted, settle, type FinalRoute } from './route-test/settle.js';

const HELP = `usage: hisbridge replay FILES|DIR [--routes DIR] [--config F] [--timeout 30s]

Runs every message of the HL7 files (a directory means its *.hl7 files,
sorted) through the routes in-process: temporary data directory, simulators
on random ports, no listeners. After each message waits until its deliveries
are done or dead (at most --timeout), then prints one JSON line:
  {"file","index","controlId","type","ack","routes":[{"route","outcome","deliveries":[{"plugin","step","state","attempts","error"}]}]}
index counts messages within the file from 1. Exit 1 when an ACK is not
AA/CA, a route failed, or a delivery is dead or unfinished; 2 on usage errors.`;

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

/** A route result that makes replay exit 1. */
function isBad(r: FinalRoute): boolean {
  return r.outcome === 'failed' || r.outcome === 'unfinished' || r.deliveries.some((d) => d.state !== 'done');
}

export async function run(argv: string[]): Promise<number> {
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

  const reg = registry();
  let run;
  try {
    const config = loadConfig(values.config, reg, values.routes ? { routesDir: values.routes } : {});
    run = await startInProcess({ registry: reg, routes: [config.routesDir], ...(config.file ? { configFile: config.file } : {}) });
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge replay: ${(e as Error).message}`);
    return 1;
  }

  let bad = 0;
  try {
    for (const file of files) {
      const frames = readMessages(file);
      if (frames.length === 0) {
        err(`hisbridge replay: ${file}: no HL7 message (no line starting with MSH)`);
        bad++;
        continue;
      }
      for (let i = 0; i < frames.length; i++) {
        const result = await run.engine.ingest(frames[i]!, run.listener);
        const routes = await settle(run.engine.store, result, timeoutMs);
        if (!ackAccepted(result.code) || routes.some(isBad)) bad++;
        out(JSON.stringify({
          file,
          index: i + 1,
          controlId: result.controlId ?? '',
          type: result.type ?? '',
          ack: result.code,
          ...(result.duplicate ? { duplicate: true } : {}),
          routes,
        }));
      }
    }
  } finally {
    await run.close();
  }
  return bad ? 1 : 0;
}
