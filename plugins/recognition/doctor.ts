/**
 * `hisbridge doctor`'s probe of the recognition platform
 * (SiteExtension.doctor): one login (用户认证获取token) with the site's
 * username and password, through the same token client the plugins use. The
 * token is not kept and nothing else is called: no upload, no query.
 */
import { isHisbridgeError, type DoctorCheck, type DoctorContext } from '../../core/sdk.js';
import { readRecognitionSite } from './site.js';
import { createTokenClient } from './token.js';
import { probeEachInstitution } from '../shared/institutions.js';

/**
 * With `recognition.institutions`, every institution logs in with its own
 * account (the shared keys merged under its profile), its checks named
 * `recognition[<orgCode>]: ...`; otherwise the single account, `recognition: ...`.
 */
export async function recognitionDoctor(section: Readonly<Record<string, unknown>>, ctx: DoctorContext): Promise<DoctorCheck[]> {
  const shared = Object.keys(section).filter((k) => !['institutions', 'username', 'password', 'orgCode', 'orgName'].includes(k));
  return probeEachInstitution(section, 'recognition', shared, (s, label) => probeOne(s, ctx, label));
}

async function probeOne(section: Readonly<Record<string, unknown>>, ctx: DoctorContext, label: string): Promise<DoctorCheck[]> {
  let site;
  try {
    site = readRecognitionSite({ ...section });
  } catch (e) {
    return [{ name: `${label}: parameters`, status: 'fail', detail: isHisbridgeError(e) ? e.message : 'incomplete', fix: 'set baseUrl, username, password (as ${env:NAME}) and orgCode in the recognition section' }];
  }
  let at = '(not a URL)';
  try {
    at = new URL(site.baseUrl).origin;
  } catch {
    // The schema checks the URL; keep the text anyway.
  }
  // The single account is recognition.username; a profile's is named by its orgCode.
  const account = label === 'recognition' ? 'recognition.username' : `the username of ${label}`;
  const checks: DoctorCheck[] = [{ name: `${label}: parameters`, status: 'ok', detail: 'baseUrl, username, password and orgCode are set' }];
  const started = performance.now();
  try {
    await createTokenClient(ctx.http, site).get(ctx.signal);
    const ms = Math.round(performance.now() - started);
    checks.push({ name: `${label}: platform reachable`, status: 'ok', detail: `${at} answered in ${ms} ms` });
    checks.push({ name: `${label}: login accepted`, status: 'ok', detail: `a token was issued for ${account} (path ${site.paths.token})` });
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    if (isHisbridgeError(cause) && cause.code.startsWith('HTTP_E_')) {
      checks.push({ name: `${label}: platform reachable`, status: 'fail', detail: `${at}: ${cause.code}: ${cause.message}`, fix: 'check recognition.baseUrl, DNS and the firewall or proxy towards the platform' });
      return checks;
    }
    checks.push({ name: `${label}: platform reachable`, status: 'ok', detail: `${at} answered` });
    checks.push({
      name: `${label}: login accepted`,
      status: 'fail',
      detail: isHisbridgeError(e) ? `${e.code}: ${e.message}` : 'login failed',
      fix: `check ${account} and its password (and paths.token, fields and response if the platform spells them differently)`,
    });
  }
  return checks;
}
