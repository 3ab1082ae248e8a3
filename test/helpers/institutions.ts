/**
 * Shared pieces of the institution tests (issue 16) of both platform
 * families: two API clients, one limited to ORGA001, and the orgCode checks
 * every workstation endpoint that acts for an institution makes.
 */
import { expect } from 'vitest';
import { hashApiToken } from '../../core/http/api-auth.js';
import type { HttpResponse } from '../../core/sdk.js';

/** Bearer token of `ws-a`, limited to institution ORGA001. */
export const TOKEN_A = 'a'.repeat(40);
/** Bearer token of `ws-all`, not limited. */
export const TOKEN_ALL = 'b'.repeat(40);

/** The `api:` section with those two clients, as hisbridge.yaml lines. */
export const API_CLIENTS_YAML: readonly string[] = [
  'api:',
  '  clients:',
  `    - { name: ws-a, tokenHash: "${hashApiToken(TOKEN_A)}", institutions: [ORGA001] }`,
  `    - { name: ws-all, tokenHash: "${hashApiToken(TOKEN_ALL)}" }`,
];

/**
 * With several institutions: no orgCode is 400 <PREFIX>_E_INSTITUTION_REQUIRED,
 * an orgCode no institution has is 400 <PREFIX>_E_UNKNOWN_INSTITUTION.
 */
export async function expectOrgCodeRequiredAndKnown(get: (token: string, query: Record<string, string>) => Promise<HttpResponse>, prefix: 'GDEHR' | 'RECOG'): Promise<void> {
  const none = await get(TOKEN_ALL, {});
  expect(none.status).toBe(400);
  expect(none.json).toMatchObject({ code: `${prefix}_E_INSTITUTION_REQUIRED` });
  const unknown = await get(TOKEN_ALL, { orgCode: 'NOPE' });
  expect(unknown.status).toBe(400);
  expect(unknown.json).toMatchObject({ code: `${prefix}_E_UNKNOWN_INSTITUTION` });
}
