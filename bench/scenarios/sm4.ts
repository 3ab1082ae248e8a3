/**
 * Scenario 4, SM4: OpenSSL (node:crypto sm4-ecb) vs sm-crypto, 100-byte
 * payloads (ops/s) and 1 MiB (MB/s). The measurement itself lives in
 * bench/sm4.ts (owned with the crypto code); this adapter turns its figures
 * into result entries with the targets of issue 8.
 */
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';

const SMALL = { name: 'sm4-100B', scenario: 4, title: 'SM4-ECB encrypt, 100-byte payload: OpenSSL vs sm-crypto', unit: 'ops/s', target: 'OpenSSL >= 2 x sm-crypto' };
const LARGE = { name: 'sm4-1MiB', scenario: 4, title: 'SM4-ECB encrypt, 1 MiB payload: OpenSSL vs sm-crypto', unit: 'MB/s', target: 'OpenSSL >= 20 x sm-crypto' };

/** Trial values per size and implementation, whatever shape bench/sm4.ts returns them in. */
interface Sm4Figures {
  small: { openssl: number[]; smCrypto: number[] };
  large: { openssl: number[]; smCrypto: number[] };
}

const nums = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : typeof v === 'number' ? [v] : []);

/** Reads the figures from the object bench/sm4.ts returns; undefined when its shape is not understood. */
export function readFigures(r: unknown): Sm4Figures | undefined {
  if (!r || typeof r !== 'object') return undefined;
  const o = r as Record<string, Record<string, unknown> | undefined>;
  const pick = (size: Record<string, unknown> | undefined, ...keys: string[]) => {
    for (const k of keys) if (size && size[k] !== undefined) return nums(size[k]);
    return [];
  };
  const small = o.small ?? o.ops ?? o['100B'];
  const large = o.large ?? o.mb ?? o['1MiB'];
  const f = {
    small: { openssl: pick(small, 'openssl', 'openSsl', 'node'), smCrypto: pick(small, 'smCrypto', 'sm-crypto', 'js') },
    large: { openssl: pick(large, 'openssl', 'openSsl', 'node'), smCrypto: pick(large, 'smCrypto', 'sm-crypto', 'js') },
  };
  return f.small.openssl.length && f.small.smCrypto.length ? f : undefined;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  let mod: { benchSm4?: (o: { quick: boolean; trials?: number }) => unknown };
  try {
    // A computed specifier: bench/sm4.ts is written in parallel and may not exist yet.
    const spec = '../sm4.js';
    mod = (await import(spec)) as typeof mod;
  } catch (e) {
    const note = `bench/sm4.ts not available: ${reason(e)}`;
    return [unavailable(SMALL, 'not-available', note), unavailable(LARGE, 'not-available', note)];
  }
  if (typeof mod.benchSm4 !== 'function') {
    const note = 'bench/sm4.js does not export benchSm4';
    return [unavailable(SMALL, 'not-available', note), unavailable(LARGE, 'not-available', note)];
  }
  ctx.say('sm4: running bench/sm4.ts');
  const raw = await mod.benchSm4({ quick: ctx.quick, trials: ctx.trials });
  const f = readFigures(raw);
  if (!f) {
    const note = 'benchSm4 returned figures in a shape this adapter does not read';
    return [{ ...unavailable(SMALL, 'failed', note), details: { raw } }, { ...unavailable(LARGE, 'failed', note), details: { raw } }];
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  return [
    entry({ ...SMALL, better: 'higher', met: med(f.small.openssl) >= 2 * med(f.small.smCrypto) }, { hisbridge: f.small.openssl, baselines: { 'sm-crypto': f.small.smCrypto } }),
    f.large.openssl.length && f.large.smCrypto.length
      ? entry({ ...LARGE, better: 'higher', met: med(f.large.openssl) >= 20 * med(f.large.smCrypto) }, { hisbridge: f.large.openssl, baselines: { 'sm-crypto': f.large.smCrypto } })
      : unavailable(LARGE, 'not-available', 'benchSm4 gave no 1 MiB figures'),
  ];
}
