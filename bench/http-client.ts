/**
 * `node dist/bench/http-client.js [N] [--rounds R] [--concurrency C]`: the
 * cost of one delivery request through the engine's HTTP client
 * (core/http/client.ts) next to bare node:http with the same keep-alive
 * agent settings, against a no-op sink in another process. Each round runs
 * both, alternately (the order flips every round), N POSTs of a small JSON
 * body with C in flight; figures are this process's CPU µs per request
 * (process.cpuUsage) and requests/s, and per round the ratio client / bare.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createHttpClient } from '../core/http/client.js';
import { startSink } from './lib/servers.js';
import { median, summarizePairs } from './lib/pairs.js';
import { round } from './lib/stats.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string' }, concurrency: { type: 'string' } } });
const n = Number(positionals[0] ?? 10_000);
const rounds = Number(values.rounds ?? 3);
const concurrency = Number(values.concurrency ?? 16);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: node dist/bench/http-client.js [N] [--rounds R] [--concurrency C]\n');
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

try {
  // Warm-up: JIT and the keep-alive sockets of both.
  await measure(viaBare);
  await measure(viaClient);
  const out: { client: Figure; bare: Figure }[] = [];
  for (let r = 0; r < rounds; r++) {
    const first = r % 2 === 0 ? 'bare' : 'client';
    const a = await measure(first === 'bare' ? viaBare : viaClient);
    const b = await measure(first === 'bare' ? viaClient : viaBare);
    const pair = first === 'bare' ? { bare: a, client: b } : { client: a, bare: b };
    out.push(pair);
    process.stdout.write(`round ${r + 1}: client ${pair.client.cpuUsPerReq} µs CPU/req, ${pair.client.reqPerSec} req/s; bare node:http ${pair.bare.cpuUsPerReq} µs CPU/req, ${pair.bare.reqPerSec} req/s\n`);
  }
  const cpu = summarizePairs('CPU µs/req', 'bare node:http', out.map((p) => ({ engine: p.client.cpuUsPerReq, baseline: p.bare.cpuUsPerReq })));
  const rate = summarizePairs('req/s', 'bare node:http', out.map((p) => ({ engine: p.client.reqPerSec, baseline: p.bare.reqPerSec })));
  process.stdout.write(`median: client ${median(out.map((p) => p.client.cpuUsPerReq))} µs CPU/req vs bare ${median(out.map((p) => p.bare.cpuUsPerReq))}; ` +
    `CPU ratio ${cpu.median}x (${cpu.min}-${cpu.max}), req/s ratio ${rate.median}x (${rate.min}-${rate.max}); ${n} requests x ${rounds} rounds, ${concurrency} in flight\n`);
} finally {
  client.close();
  agent.destroy();
  await sink.child.stop();
}
