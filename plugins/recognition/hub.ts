/**
 * What the recognition plugins and the workstation endpoints of one engine
 * share: the site section read once, one token client (so single-flight and
 * the cache span every plugin), and the checks waiting for a doctor's
 * decision. It is the `recognition` extension's service (SiteExtension.service
 * in index.ts): the engine creates it once, on the first `ctx.service`
 * call, and two engines in one process never share a token or a pending check.
 */
import { hbError, type PluginContext } from '../../core/sdk.js';
import { createRecognitionClient, type RecognitionClient } from './client.js';
import { readRecognitionInstitutions, type RecognitionInstitution, type RecognitionInstitutions, type RecognitionSite } from './site.js';
import { createTokenClient, type TokenClient } from './token.js';
import { recognitionError } from './errors.js';

/** A recognizable duplicate found for one order item; the doctor must decide before going on. */
export interface PendingCheck {
  orderNo: string;
  itemCode: string;
  patientId: string;
  priorReportId: string;
  /** The platform's check, from a prescription-save check; absent after a precise query (see decide()). */
  checkId?: string;
  checkedAt: number;
  /** Which call found the duplicate (absent in checks stored before this field existed: prescription). */
  mode?: 'prescription' | 'precise';
  itemName?: string;
  staffNo?: string;
  /** Resident ID number sent with the check: kept in memory only, never written to the store. */
  idNumber?: string;
  /** The institution (orgCode) the check was made for; the decision goes out under the same one. */
  orgCode?: string;
}

export interface RecognitionHub {
  /** The first institution (the single account when `recognition.institutions` is not used). */
  readonly site: RecognitionSite;
  /** The token client of `site`. */
  readonly token: TokenClient;
  /** Every institution (issue 16): one account, one token client each. */
  readonly institutions: RecognitionInstitutions;
  /** The token client of one institution (its own account, cache and single-flight). */
  tokenFor(orgCode: string): TokenClient;
  readonly pending: Map<string, PendingCheck>;
  /** Called by the engine at stop: forgets the pending checks kept in memory (ID numbers among them). */
  close(): void;
}

/** The extension's service: made with the extension's own context (CONFIG_E_SITE_MISSING when the section is incomplete). */
export function createHub(ctx: PluginContext): RecognitionHub {
  const institutions = readRecognitionInstitutions(ctx.site);
  const tokens = new Map(institutions.list.map((inst) => [inst.orgCode, createTokenClient(ctx.http, inst, (e) => ctx.audit(e))]));
  const pending = new Map<string, PendingCheck>();
  const site = institutions.list[0]!;
  const tokenFor = (orgCode: string): TokenClient => {
    const t = tokens.get(orgCode);
    if (!t) throw recognitionError('RECOG_E_UNKNOWN_INSTITUTION', { orgCode: orgCode.slice(0, 32).replace(/[^\w.-]/g, '?') });
    return t;
  };
  return { site, token: tokenFor(site.orgCode), institutions, tokenFor, pending, close: () => pending.clear() };
}

/**
 * The key of a pending check. With several institutions the orgCode is part
 * of it (two hospitals of a group may use the same order numbers); the single
 * account keeps the key it always had, so checks stored before still match.
 */
export function pendingKey(orderNo: string, itemCode: string, orgCode?: string): string {
  return orgCode ? `pending:${orgCode}\u0000${orderNo}\u0000${itemCode}` : `pending:${orderNo}\u0000${itemCode}`;
}

/** The orgCode that scopes pending keys: none for the implicit single account. */
function scope(ctx: PluginContext, orgCode: string | undefined): string | undefined {
  return hubFor(ctx).institutions.implicit ? undefined : orgCode;
}

/** The hub of the engine `ctx` belongs to (created on first use; CONFIG_E_SITE_MISSING when the section is incomplete). */
export function hubFor(ctx: PluginContext): RecognitionHub {
  if (!ctx.service) throw hbError('PLUGIN_E_NO_SERVICE', { key: 'recognition', known: 'none (this context has no service())' });
  return ctx.service<RecognitionHub>('recognition');
}

/**
 * A client for one plugin and one institution (default: the first, the
 * single account's): shares that institution's token client, audits through
 * the plugin's own context under the institution's orgCode.
 */
export function clientFor(ctx: PluginContext, plugin: string, orgCode?: string): RecognitionClient {
  const hub = hubFor(ctx);
  const site: RecognitionInstitution | undefined = orgCode === undefined ? hub.institutions.list[0] : hub.institutions.byOrgCode(orgCode);
  if (!site) throw recognitionError('RECOG_E_UNKNOWN_INSTITUTION', { orgCode: String(orgCode).slice(0, 32).replace(/[^\w.-]/g, '?') });
  return createRecognitionClient({ http: ctx.http, site, token: hub.tokenFor(site.orgCode), audit: (e) => ctx.audit(e), plugin });
}

/** One client per institution for one plugin, by orgCode (made once, at the step's create()). */
export function clientsFor(ctx: PluginContext, plugin: string): Map<string, RecognitionClient> {
  return new Map(hubFor(ctx).institutions.list.map((inst) => [inst.orgCode, clientFor(ctx, plugin, inst.orgCode)]));
}

/** Records a pending check in memory (shared) and in the caller's durable state. */
export async function rememberPending(ctx: PluginContext, p: PendingCheck): Promise<void> {
  const key = pendingKey(p.orderNo, p.itemCode, scope(ctx, p.orgCode));
  hubFor(ctx).pending.set(key, p);
  const { idNumber: _idNumber, ...durable } = p;
  await ctx.state.set(key, durable);
}

/** Finds a pending check (memory first, then the caller's state). */
export async function findPending(ctx: PluginContext, orderNo: string, itemCode: string, orgCode?: string): Promise<PendingCheck | undefined> {
  const key = pendingKey(orderNo, itemCode, scope(ctx, orgCode));
  return hubFor(ctx).pending.get(key) ?? (await ctx.state.get<PendingCheck>(key));
}

/** Forgets a decided check everywhere. */
export async function clearPending(ctx: PluginContext, orderNo: string, itemCode: string, orgCode?: string): Promise<void> {
  const key = pendingKey(orderNo, itemCode, scope(ctx, orgCode));
  hubFor(ctx).pending.delete(key);
  await ctx.state.delete(key);
}
