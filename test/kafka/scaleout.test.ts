/**
 * Scale-out with real `hisbridge start` processes (dist/) in one consumer
 * group against a real-protocol broker, delivering to one provincial
 * simulator: a kill -9 mid-batch loses nothing and stores nothing twice;
 * two instances split the partitions and one takes over when the other dies.
 *
 * Delivery is at-least-once: records in flight at a kill are read again (by
 * the restarted instance or by the other one) and their calls repeat. Both
 * tests assert exactly-once effects at the simulator: the idempotency key is
 * a function of (message, route, step), the same on every instance, and the
 * simulator acts once per key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gdEhrDefaults, startGdEhrSimulator, type GdEhrSimulator } from '../../plugins/gd-ehr/index.js';
import { silentLogger } from '../../core/log.js';
import { idNumberOf } from '../../bench/lib/messages.js';
import { spawnEngine, type EngineProcess } from '../helpers/proc.js';
import { KafkaTool, startTestBroker, uniq, until, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';

const ENV = { HB_T_PAAS: '', HB_T_SM4: '', HB_T_RECOG: 'unused' };

function record(tag: string, i: number): { key: string; value: Buffer } {
  const pid = `P${i % 16}`;
  return {
    key: pid,
    value: Buffer.from(
      [
        `MSH|^~\\&|HIS|H1|HISBRIDGE|GDEHR|20250312093015||ADT^A04^ADT_A01|${tag}-${String(i).padStart(5, '0')}|P|2.5|||||CHN|UNICODE UTF-8`,
        'EVN|A04|20250312093015',
        `PID|1||${pid}^^^HOSP^PI~${idNumberOf(i)}^^^CHN^NI||测试^${i}||19900101|M`,
      ].join('\r') + '\r',
      'utf8',
    ),
  };
}

interface Health { kafka?: { connected: boolean; assigned: Record<string, number[]>; handled: number } }
const health = async (e: EngineProcess): Promise<Health> => (await (await fetch(`${e.httpUrl}/healthz`, { signal: AbortSignal.timeout(3000) })).json()) as Health;
const partitionsOf = (h: Health) => Object.values(h.kafka?.assigned ?? {}).reduce((a, p) => a + p.length, 0);

/** Every stored message per control id, read from an instance's store after it stopped. */
function storedControlIds(dataDir: string): Map<string, number> {
  const file = readdirSync(dataDir).find((f) => /\.(db|sqlite3?)$/.test(f));
  if (!file) return new Map();
  const db = new Database(path.join(dataDir, file), { readonly: true });
  try {
    const rows = db.prepare("SELECT control_id AS id, count(*) AS n FROM messages WHERE ack_code IN ('AA','CA') GROUP BY control_id").all() as { id: string; n: number }[];
    return new Map(rows.map((r) => [r.id, r.n]));
  } finally {
    db.close();
  }
}

describe('kafka scale-out with hisbridge processes', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let sim: GdEhrSimulator;
  const running: EngineProcess[] = [];

  /** Writes a site config and routes for one instance; returns the start arguments. */
  function instance(topic: string, group: string, dir: string, maxInFlight: number): string[] {
    const site = gdEhrDefaults({ simulatorUrl: sim.url }) as Record<string, string | number>;
    ENV.HB_T_PAAS = String(site.paasToken);
    ENV.HB_T_SM4 = String(site.sm4Key);
    const routes = tempFiles({
      'authorize.yaml': 'name: kafka-authorize\nsources: [kafka]\nmatch: { events: ["ADT^A04"] }\nack: on-complete\nsteps:\n  - plugin: gd-ehr-authorize\n    config: { consent: false }\n',
    });
    mkdirSync(dir, { recursive: true });
    const config = path.join(dir, 'hisbridge.yaml');
    writeFileSync(config, [
      'listeners: [{ name: mllp, port: 0 }]',
      'http: { port: 0 }',
      'simulators: false',
      'log: { level: warn }',
      'kafka:',
      `  brokers: [${broker.brokers.join(', ')}]`,
      `  groupId: ${group}`,
      '  sessionTimeout: 6s',
      `  maxInFlight: ${maxInFlight}`,
      '  retry: { max: 20, initial: 100ms, maxDelay: 500ms }',
      `  topics: [{ name: ${topic}, format: hl7 }]`,
      'gdEhr:',
      ...['authUrl', 'viewerUrl', 'orgCode', 'orgName', 'callSysCode', 'appId', 'paasId'].map((k) => `  ${k}: "${site[k]}"`),
      '  paasToken: ${env:HB_T_PAAS}',
      '  sm4Key: ${env:HB_T_SM4}',
      'recognition: { baseUrl: "http://127.0.0.1:9", username: t, password: "${env:HB_T_RECOG}", orgCode: T0001 }',
    ].join('\n') + '\n');
    return ['--config', config, '--routes', routes, '--data-dir', path.join(dir, 'data'), '--mllp-port', '0', '--http-port', '0', '--no-simulators'];
  }

  async function start(args: string[]): Promise<EngineProcess> {
    const e = await spawnEngine(args, ENV, 40_000);
    running.push(e);
    return e;
  }

  async function kill9(e: EngineProcess): Promise<void> {
    e.child.kill('SIGKILL');
    await e.exited;
  }

  async function stop(e: EngineProcess): Promise<void> {
    e.child.kill('SIGTERM');
    await e.exited;
  }

  /** Ids with at least one successful, verified authorization at the simulator. */
  const succeeded = () => new Set(sim.calls.filter((c) => c.op === 'authorize' && c.verified && c.returnCode === '1').map((c) => String(c.fields?.patientIdcard)));
  /** Authorizations the simulator acted on more than once for one ID number (a repeat answered from its key's first result is not an effect). */
  const duplicateEffects = (): number => {
    const acted = new Map<string, number>();
    for (const c of sim.calls) {
      if (c.op !== 'authorize' || !c.verified || c.returnCode !== '1' || c.replayed) continue;
      const id = String(c.fields?.patientIdcard);
      acted.set(id, (acted.get(id) ?? 0) + 1);
    }
    return [...acted.values()].reduce((s, n) => s + n - 1, 0);
  };
  const repeatedCalls = () => sim.calls.filter((c) => c.op === 'authorize' && c.replayed).length;

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: gdEhrDefaults({ simulatorUrl: 'http://127.0.0.1:1' }), log: silentLogger() });
  }, 30_000);

  afterAll(async () => {
    for (const e of running) if (e.child.exitCode === null && e.child.signalCode === null) e.child.kill('SIGKILL');
    await Promise.allSettled(running.map((e) => e.exited));
    await sim?.close();
    await tool?.close();
    await broker?.stop();
  });

  it('kill -9 mid-batch, restart: every record handled, each stored once, offsets all committed', async () => {
    sim.reset();
    sim.addFault({ delayMs: 100 });
    const topic = uniq('crash');
    const group = uniq('g-crash');
    const dir = tempFiles({});
    const n = 200;
    await tool.produce(topic, Array.from({ length: n }, (_, i) => record('CR', i)));
    const args = instance(topic, group, dir, 2);
    const a = await start(args);
    await until(() => sim.calls.length, (c) => c >= n / 4, 30_000);
    await kill9(a);
    const handledBefore = succeeded().size;
    expect(handledBefore).toBeLessThan(n);
    const b = await start(args);
    const done = await until(() => succeeded(), (s) => s.size >= n, 40_000);
    expect(done.size).toBe(n);
    const ends = await tool.ends(topic);
    await until(() => tool.committed(group, topic), (c) => Object.entries(ends).every(([p, e]) => c[Number(p)] === e), 10_000);
    await stop(b);
    const committed = await tool.committed(group, topic);
    for (const [p, e] of Object.entries(ends)) expect(committed[Number(p)]).toBe(e);
    const stored = storedControlIds(path.join(dir, 'data'));
    expect(stored.size).toBe(n);
    expect([...stored.values()].every((c) => c === 1)).toBe(true);
    // Remote calls repeated only for records in flight at the kill (at most maxInFlight per partition), and none acted on twice.
    const calls = sim.calls.filter((c) => c.op === 'authorize' && c.returnCode === '1').length;
    expect(calls - n).toBeLessThanOrEqual(2 * 4);
    console.log(`kafka kill -9: ${n} records, ${calls - n} calls repeated after the restart, ${duplicateEffects()} duplicate effects`);
    expect(calls - n).toBe(repeatedCalls());
    expect(duplicateEffects()).toBe(0);
  }, 60_000);

  it('two instances in one group split the partitions; after one is killed the other finishes everything', async () => {
    sim.reset();
    sim.addFault({ delayMs: 150 });
    const topic = uniq('scale');
    const group = uniq('g-scale');
    const n = 240;
    // Create the topic (auto-created with 4 partitions) before the instances join.
    await tool.produce(topic, [record('SC', 0)]);
    const a = await start(instance(topic, group, tempFiles({}), 1));
    const b = await start(instance(topic, group, tempFiles({}), 1));
    const split = await until(async () => [partitionsOf(await health(a)), partitionsOf(await health(b))], ([x, y]) => x! > 0 && y! > 0 && x! + y! === 4, 30_000);
    expect(split[0]! + split[1]!).toBe(4);
    expect(split[0]! > 0 && split[1]! > 0).toBe(true);
    await tool.produce(topic, Array.from({ length: n - 1 }, (_, i) => record('SC', i + 1)));
    await until(async () => [(await health(a)).kafka!.handled, (await health(b)).kafka!.handled], ([x, y]) => x! > 5 && y! > 5, 30_000);
    const [ha, hb] = [(await health(a)).kafka!.handled, (await health(b)).kafka!.handled];
    expect(ha).toBeGreaterThan(0);
    expect(hb).toBeGreaterThan(0);
    await kill9(a);
    const done = await until(() => succeeded(), (s) => s.size >= n, 45_000);
    expect(done.size).toBe(n);
    expect(partitionsOf(await health(b))).toBe(4);
    await stop(b);
    // b re-read a's uncommitted records: the same idempotency keys reached the simulator, which acted once per record.
    console.log(`kafka scale-out: ${n} records, ${repeatedCalls()} calls repeated by the surviving instance, ${duplicateEffects()} duplicate effects`);
    expect(duplicateEffects()).toBe(0);
  }, 90_000);
});
