/**
 * A Kafka broker for tests and the bench: the cluster named by KAFKA_BROKERS,
 * or else librdkafka's mock cluster hosted by a `kcat` process (real Kafka
 * protocol, no Java; topics auto-create on first use, 4 partitions each).
 * Never skips: without either, `startTestBroker` throws a message saying how
 * to get one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { hbError } from '../errors.js';

export interface TestBroker {
  /** Bootstrap servers, e.g. ['127.0.0.1:39123']. */
  brokers: string[];
  /** 'mock' (kcat) or 'external' (KAFKA_BROKERS). */
  kind: 'mock' | 'external';
  /** Kills the kcat process and its cluster; a no-op for an external cluster. */
  stop(): Promise<void>;
}

export const NO_BROKER_HELP =
  'no Kafka broker for the tests: install kcat (apt-get install kcat; .ci/run does this) so the suite can start ' +
  "librdkafka's mock cluster, or set KAFKA_BROKERS=host:port to a real cluster";

function hasKcat(): boolean {
  return spawnSync('kcat', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Starts (or points at) a broker; rejects with KAFKA_E_NO_BROKER when neither is available. */
export async function startTestBroker(opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<TestBroker> {
  const env = opts.env ?? process.env;
  if (env.KAFKA_BROKERS) {
    return { brokers: env.KAFKA_BROKERS.split(',').map((s) => s.trim()).filter(Boolean), kind: 'external', stop: async () => undefined };
  }
  if (!hasKcat()) throw hbError('KAFKA_E_NO_BROKER', { detail: NO_BROKER_HELP });
  // `-C -t <topic>` keeps kcat running as a consumer so the mock cluster lives as long as the process.
  const child: ChildProcess = spawn('kcat', ['-b', 'localhost:0', '-X', 'test.mock.num.brokers=1', '-C', '-t', '__hisbridge_mock_keepalive', '-q', '-d', 'mock'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const brokers = await new Promise<string[]>((resolve, reject) => {
    let seen = '';
    const t = setTimeout(() => fail(new Error(`kcat printed no bootstrap.servers within ${timeoutMs} ms`)), timeoutMs);
    function fail(e: Error) {
      clearTimeout(t);
      child.kill('SIGKILL');
      reject(hbError('KAFKA_E_NO_BROKER', { detail: `${e.message}; ${NO_BROKER_HELP}` }, { cause: e }));
    }
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`kcat exited (${code}) before the mock cluster was up`)));
    child.stderr!.on('data', (c: Buffer) => {
      if (seen.length < 65536) seen += c.toString('latin1');
      const m = /bootstrap\.servers=([\d.:,]+)/.exec(seen);
      if (m) {
        clearTimeout(t);
        child.removeAllListeners('exit');
        resolve(m[1]!.split(','));
      }
    });
  });
  // The mock's debug output must keep flowing or kcat blocks on a full pipe.
  child.stderr!.resume();
  child.stderr!.removeAllListeners('data');
  child.stderr!.on('data', () => undefined);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    brokers,
    kind: 'mock',
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
