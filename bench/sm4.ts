/**
 * SM4-ECB/PKCS#7 encryption speed, the engine's path (node:crypto `sm4-ecb`
 * via sm4EncryptHex) next to sm-crypto's own string API, in the same run:
 * ops/s on 100-byte payloads and MB/s on 1 MiB. Both turn UTF-8 text into
 * lower-case hex, the job the gd-ehr plugins do. Trials alternate between
 * the two so machine noise hits both alike; medians are reported.
 *
 * Self-contained: `benchSm4()` is called by bench/scenarios/sm4.ts, and
 * `node dist/bench/sm4.js` runs it alone.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import smCrypto from 'sm-crypto';
import { sm4Backend, sm4EncryptHex } from '../core/crypto/sm4.js';

export interface Sm4BenchOptions {
  quick: boolean;
  /** Trials per measurement (default 3 quick, 7 full). */
  trials?: number;
  /** Size of the large payload (default 1 MiB; smaller only for smoke tests). */
  largeBytes?: number;
}

export interface Sm4BenchRow {
  name: string;
  unit: 'ops/s' | 'MB/s';
  openssl: number;
  smCrypto: number;
  /** openssl / smCrypto (medians). */
  ratio: number;
}

export interface Sm4BenchResult {
  name: 'sm4';
  /** Which implementation the engine uses on this machine. */
  backend: string;
  results: Sm4BenchRow[];
  /** Per-trial figures: ops/s (100 B) and MB/s (1 MiB). */
  small: { openssl: number[]; smCrypto: number[] };
  large: { openssl: number[]; smCrypto: number[] };
}

type Encrypt = (keyHex: string, text: string) => string;

const IMPLS: Record<'openssl' | 'smCrypto', Encrypt> = {
  openssl: (k, t) => sm4EncryptHex(k, t),
  smCrypto: (k, t) => smCrypto.sm4.encrypt(t, k),
};

/** Runs `fn` repeatedly for at least `ms` (and at least `minOps` times); returns ops per second. */
function opsPerSecond(fn: () => void, ms: number, minOps: number): number {
  // Warm-up so the JIT and OpenSSL's cipher lookup are not measured (skipped for the slow 1 MiB case).
  if (minOps > 1) for (let i = 0; i < 50; i++) fn();
  let ops = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget || ops < minOps) {
    for (let i = 0; i < 16 && (ops < minOps || elapsed < budget); i++, ops++) fn();
    elapsed = process.hrtime.bigint() - start;
  }
  return ops / (Number(elapsed) / 1e9);
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1] ?? 0;

/** Measures both implementations; results are comparable within one run only. */
export async function benchSm4(opts: Sm4BenchOptions): Promise<Sm4BenchResult> {
  const trials = opts.trials ?? (opts.quick ? 3 : 7);
  const key = randomBytes(16).toString('hex');
  // Mixed ASCII and Chinese, exactly 100 UTF-8 bytes, like a viewer param.
  const small = 'orgCode=TEST001&staffNo=D0012&staffName=李建国&idcard=440106199003152314&patientName=张三丰&pid=P1';
  const smallText = small + 'x'.repeat(Math.max(0, 100 - Buffer.byteLength(small)));
  const largeBytes = opts.largeBytes ?? 1 << 20;
  const largeText = 'a'.repeat(largeBytes);
  const smallMs = opts.quick ? 150 : 600;
  const largeMs = opts.quick ? 300 : 1500;

  const figures = { small: { openssl: [] as number[], smCrypto: [] as number[] }, large: { openssl: [] as number[], smCrypto: [] as number[] } };
  for (let t = 0; t < trials; t++) {
    const order = t % 2 === 0 ? (['openssl', 'smCrypto'] as const) : (['smCrypto', 'openssl'] as const);
    for (const impl of order) {
      const enc = IMPLS[impl];
      figures.small[impl].push(opsPerSecond(() => enc(key, smallText), smallMs, 100));
      figures.large[impl].push(opsPerSecond(() => enc(key, largeText), largeMs, 1));
      // Yield between measurements so a caller's timers and I/O are not starved.
      await new Promise((r) => setImmediate(r));
    }
  }
  const row = (name: string, unit: Sm4BenchRow['unit'], f: { openssl: number[]; smCrypto: number[] }): Sm4BenchRow => {
    const o = median(f.openssl);
    const s = median(f.smCrypto);
    return { name, unit, openssl: Math.round(o * 10) / 10, smCrypto: Math.round(s * 10) / 10, ratio: s ? Math.round((o / s) * 10) / 10 : 0 };
  };
  // MB/s in 10^6 bytes, as is customary.
  const mb = (v: number[]) => v.map((x) => (x * largeBytes) / 1e6);
  figures.large = { openssl: mb(figures.large.openssl), smCrypto: mb(figures.large.smCrypto) };
  return {
    name: 'sm4',
    backend: sm4Backend().name,
    results: [row('sm4-encrypt-100B', 'ops/s', figures.small), row('sm4-encrypt-1MiB', 'MB/s', figures.large)],
    small: figures.small,
    large: figures.large,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  benchSm4({ quick }).then((r) => {
    process.stdout.write(`SM4-ECB encrypt (engine backend: ${r.backend}), medians of ${r.small.openssl.length} trials\n`);
    for (const x of r.results) process.stdout.write(`${x.name.padEnd(18)} openssl ${String(x.openssl).padStart(10)} ${x.unit}   sm-crypto ${String(x.smCrypto).padStart(10)} ${x.unit}   x${x.ratio}\n`);
  });
}
