/**
 * `node dist/bench/http-client.js [N] [--rounds R] [--concurrency C] [--undici]`: the
 * cost of one delivery request through the engine's HTTP client
 * (core/http/client.ts) next to bare node:http with the same keep-alive
 * agent settings, against a no-op sink in another process. Each round runs
 * both, in an order rotated every round, N POSTs of a small JSON
 * body with C in flight; figures are this process's CPU µs per request
 * (process.cpuUsage) and requests/s, and per round the ratio client / bare.
 * `--undici` adds bare undici (a Pool of 64 connections) through request()
 * and through dispatch() with a handler object; the variants run in an order
 * rotated every round.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { createHttpClient } from '../core/http/client.js';
import { startSink } from './lib/servers.js';
import { median, summarizePairs } from './lib/pairs.js';
import { round } from './lib/stats.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string' }, concurrency: { type: 'string' }, undici: { type: 'boolean' } } });
const n = Number(positionals[0] ?? 10_000);
const rounds = Number(values.rounds ?? 3);
const concurrency = Number(values.concurrency ?? 16);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: node dist/bench/http-client.js [N] [--rounds R] [--concurrency C] [--undici]\n');
  process.exit(2);
}

interface Figure {
  cpuUsPerReq: number;
  reqPerSec: number;
}

async function measure(send: () => Promise<number>): Promise<Figure> {
  let next = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      if ((await send()) !== 200) failed++;
    }
  }));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (failed) throw new Error(`${failed}/${n} requests did not answer 200`);
  return { cpuUsPerReq: round((cpu.user + cpu.system) / n, 2), reqPerSec: round(n / (ms / 1000), 0) };
}

const sink = await startSink();
const url = `${sink.url}/deliver`;
const target = new URL(url);
const body = { controlId: 'BENCH0000000000001', type: 'ADT^A04' };
const client = createHttpClient();
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' });

const pool = new Pool(sink.url, { connections: 64, pipelining: 1 });
const payloadFor = () => Buffer.from(JSON.stringify(body));
const viaUndiciRequest = async () => {
  const payload = payloadFor();
  const res = await pool.request({ path: target.pathname, method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': String(payload.length) }, body: payload });
  JSON.parse(Buffer.from(await res.body.arrayBuffer()).toString('utf8'));
  return res.statusCode;
};
const viaUndiciDispatch = () => new Promise<number>((resolve, reject) => {
  const payload = payloadFor();
  let status = 0;
  const chunks: Buffer[] = [];
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {},
    onResponseStart(_c, statusCode) { status = statusCode; },
    onResponseData(_c, chunk) { chunks.push(chunk); },
    onResponseEnd() {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      resolve(status);
    },
    onResponseError(_c, e) { reject(e); },
  };
  pool.dispatch({ path: target.pathname, method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': String(payload.length) }, body: payload }, handler);
});
const viaClient = async () => (await client.request(url, { method: 'POST', body, timeoutMs: 10_000 })).status;
const viaBare = () => new Promise<number>((resolve, reject) => {
  const payload = Buffer.from(JSON.stringify(body));
  const req = http.request({ hostname: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': String(payload.length) } }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      resolve(res.statusCode ?? 0);
    });
    res.on('error', reject);
  });
  req.on('error', reject);
  req.end(payload);
});

const variants: { name: string; send: () => Promise<number> }[] = [
  { name: 'client', send: viaClient },
  { name: 'bare', send: viaBare },
  ...(values.undici ? [{ name: 'undici.request', send: viaUndiciRequest }, { name: 'undici.dispatch', send: viaUndiciDispatch }] : []),
];

try {
  // Warm-up: JIT and the keep-alive sockets of every variant.
  for (const v of variants) await measure(v.send);
  const out: Record<string, Figure>[] = [];
  for (let r = 0; r < rounds; r++) {
    // Rotate the order every round so no variant always runs first or last.
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
    const figures: Record<string, Figure> = {};
    for (const v of order) figures[v.name] = await measure(v.send);
    out.push(figures);
    process.stdout.write(`round ${r + 1}: ${variants.map((v) => `${v.name} ${figures[v.name]!.cpuUsPerReq} µs CPU/req, ${figures[v.name]!.reqPerSec} req/s`).join('; ')}\n`);
  }
  for (const v of variants) {
    if (v.name === 'bare') continue;
    const cpu = summarizePairs('CPU µs/req', 'bare node:http', out.map((p) => ({ engine: p[v.name]!.cpuUsPerReq, baseline: p.bare!.cpuUsPerReq })));
    const rate = summarizePairs('req/s', 'bare node:http', out.map((p) => ({ engine: p[v.name]!.reqPerSec, baseline: p.bare!.reqPerSec })));
    process.stdout.write(`median: ${v.name} ${median(out.map((p) => p[v.name]!.cpuUsPerReq))} µs CPU/req vs bare ${median(out.map((p) => p.bare!.cpuUsPerReq))}; ` +
      `CPU ratio ${cpu.median}x (${cpu.min}-${cpu.max}), req/s ratio ${rate.median}x (${rate.min}-${rate.max}); ${n} requests x ${rounds} rounds, ${concurrency} in flight\n`);
  }
} finally {
  client.close();
  agent.destroy();
  await pool.close();
  await sink.child.stop();
}
