/**
 * Scenario 4, SM4: OpenSSL (node:crypto sm4-ecb, the engine's path) vs
 * sm-crypto, 100-byte payloads (ops/s) and 1 MiB (MB/s). The measurement
 * lives in bench/sm4.ts (owned with the crypto code); this adapter turns its
 * per-trial figures into result entries with the targets of issue 8.
 */
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { spread } from '../lib/stats.js';

const SMALL = { name: 'sm4-100B', scenario: 7, title: 'SM4-ECB encrypt, 100-byte payload: OpenSSL (hisbridge) vs sm-crypto', unit: 'ops/s', target: 'OpenSSL >= 2 x sm-crypto' };
const LARGE = { name: 'sm4-1MiB', scenario: 7, title: 'SM4-ECB encrypt, 1 MiB payload: OpenSSL (hisbridge) vs sm-crypto', unit: 'MB/s', target: 'OpenSSL >= 20 x sm-crypto' };

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  let mod: typeof import('../sm4.js');
  try {
    mod = await import('../sm4.js');
  } catch (e) {
    const note = `bench/sm4.ts not available: ${reason(e)}`;
    return [unavailable(SMALL, 'not-available', note), unavailable(LARGE, 'not-available', note)];
  }
  ctx.say('sm4: running bench/sm4.ts');
  const r = await mod.benchSm4({ quick: ctx.quick, trials: ctx.trials });
  const med = (v: number[]) => spread(v).median;
  const details = { backend: r.backend };
  const out: ScenarioResult[] = [];
  for (const [base, f, factor] of [[SMALL, r.small, 2], [LARGE, r.large, 20]] as const) {
    out.push(f.openssl.length && f.smCrypto.length
      ? entry({ ...base, better: 'higher', met: med(f.openssl) >= factor * med(f.smCrypto), details }, { hisbridge: f.openssl, baselines: { 'sm-crypto': f.smCrypto } })
      : unavailable(base, 'failed', 'benchSm4 returned no figures'));
  }
  return out;
}
