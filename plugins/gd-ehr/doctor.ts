/**
 * `hisbridge doctor`'s probe of the provincial platform (SiteExtension.doctor).
 *
 * What it sends: one POST to `gdEhr.authUrl` with the gateway headers signed
 * with the site's paasId and paasToken (x-tif-*), and the JSON body `{}`: no
 * patient, nothing to authorize. The gateway checks paasid, timestamp window,
 * nonce and signature before it reads the body (seed 001 §5), so a 401/403
 * means the credentials or the clock are refused, and any other answer means
 * the signature passed (the body itself is then refused: HTTP 400 from our
 * simulator, a returnCode "0" perhaps from the province).
 *
 * Not checked (only a real authorization would show them, and doctor sends no
 * patient data): appId, orgCode and the SM4 key.
 */
import { gatewayHeaders, isHisbridgeError, scrubText, type DoctorCheck, type DoctorContext } from '../../core/sdk.js';
import { readSite } from './site.js';
import { probeEachInstitution } from '../shared/institutions.js';

/** `https://host:port` of a URL: paths and queries are not printed. */
function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(not a URL)';
  }
}

/** A short, scrubbed reason from a gateway's JSON answer (its `message`, `returnDesc` or `msg`). */
function reason(json: unknown): string {
  if (!json || typeof json !== 'object') return '';
  const o = json as Record<string, unknown>;
  const v = [o.message, o.returnDesc, o.msg].find((x) => typeof x === 'string' && x);
  return typeof v === 'string' ? `: ${scrubText(v).slice(0, 120)}` : '';
}

/**
 * With `gdEhr.institutions`, every institution is probed with its own
 * paasid and token (shared keys merged under the profile), its checks named
 * `gdEhr[<orgCode>]: ...`; otherwise the single set, named `gdEhr: ...`.
 */
export async function gdEhrDoctor(section: Readonly<Record<string, unknown>>, ctx: DoctorContext): Promise<DoctorCheck[]> {
  return probeEachInstitution(section, 'gdEhr', ['authUrl', 'viewerUrl', 'timeoutMs', 'authDays', 'cardTypes'], (s, label) => probeOne(s, ctx, label));
}

async function probeOne(section: Readonly<Record<string, unknown>>, ctx: DoctorContext, label: string): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  try {
    readSite({ ...section });
    checks.push({ name: `${label}: parameters`, status: 'ok', detail: 'authUrl, viewerUrl, orgCode, orgName, callSysCode, appId, paasId, paasToken and sm4Key are set' });
  } catch (e) {
    checks.push({ name: `${label}: parameters`, status: 'fail', detail: isHisbridgeError(e) ? e.message : 'incomplete', fix: 'set every parameter the province issued for this system in the gdEhr section (secrets as ${env:NAME})' });
    if (typeof section.authUrl !== 'string' || typeof section.paasId !== 'string' || typeof section.paasToken !== 'string') return checks;
  }
  const authUrl = section.authUrl as string;
  const headers = { ...gatewayHeaders({ paasId: section.paasId as string, paasToken: section.paasToken as string }), accept: 'application/json' };
  const timeoutMs = typeof section.timeoutMs === 'number' ? section.timeoutMs : 10_000;
  let res;
  try {
    res = await ctx.http.request(authUrl, { method: 'POST', headers, body: {}, timeoutMs, target: 'gd-ehr authorization (doctor probe)', signal: ctx.signal });
  } catch (e) {
    checks.push({
      name: `${label}: authorization API reachable`,
      status: 'fail',
      detail: `${origin(authUrl)}: ${isHisbridgeError(e) ? `${e.code}: ${e.message}` : 'network error'}`,
      fix: 'check gdEhr.authUrl, DNS and the firewall or proxy between this host and the provincial gateway',
    });
    return checks;
  }
  checks.push({ name: `${label}: authorization API reachable`, status: 'ok', detail: `${origin(authUrl)} answered HTTP ${res.status} in ${Math.round(res.latencyMs)} ms` });
  const sig = `${label}: gateway signature accepted`;
  if (res.status === 401 || res.status === 403) {
    checks.push({
      name: sig,
      status: 'fail',
      detail: `the gateway refused a signed probe with an empty body (HTTP ${res.status}${reason(res.json)})`,
      fix: 'check gdEhr.paasId and gdEhr.paasToken (issued by the province for this system) and this host\'s clock (the gateway allows ±300 s)',
    });
  } else if (res.status === 404 || res.status === 405) {
    checks.push({ name: sig, status: 'fail', detail: `HTTP ${res.status}: no authorization API at this path`, fix: 'check the path of gdEhr.authUrl (…/dhccApi/codeAuthRec/save)' });
  } else if (res.status >= 500 || res.status === 429) {
    checks.push({ name: sig, status: 'warn', detail: `HTTP ${res.status}: the platform is in trouble, the signature was not confirmed`, fix: 'run doctor again later' });
  } else {
    checks.push({ name: sig, status: 'ok', detail: `signed probe with an empty body passed the gateway (HTTP ${res.status}${res.status >= 400 ? ', the empty body refused as expected' : ''}); appId, orgCode and the SM4 key are checked by the first real authorization` });
  }
  return checks;
}
