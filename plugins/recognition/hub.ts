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
import { readRecognitionSite, type RecognitionSite } from './site.js';
import { createTokenClient, type TokenClient } from './token.js';

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
}

export interface RecognitionHub {
  readonly site: RecognitionSite;
  readonly token: TokenClient;
  readonly pending: Map<string, PendingCheck>;
  /** Called by the engine at stop: forgets the pending checks kept in memory (ID numbers among them). */
  close(): void;
}

/** The extension's service: made with the extension's own context (CONFIG_E_SITE_MISSING when the section is incomplete). */
export function createHub(ctx: PluginContext): RecognitionHub {
  const site = readRecognitionSite(ctx.site);
  const pending = new Map<string, PendingCheck>();
  return { site, token: createTokenClient(ctx.http, site, (e) => ctx.audit(e)), pending, close: () => pending.clear() };
}

export function pendingKey(orderNo: string, itemCode: string): string {
  return `pending:${orderNo}\u0000${itemCode}`;
}

/** The hub of the engine `ctx` belongs to (created on first use; CONFIG_E_SITE_MISSING when the section is incomplete). */
export function hubFor(ctx: PluginContext): RecognitionHub {
  if (!ctx.service) throw hbError('PLUGIN_E_NO_SERVICE', { key: 'recognition', known: 'none (this context has no service())' });
  return ctx.service<RecognitionHub>('recognition');
}

/** A client for one plugin: shares the hub's token, audits through the plugin's own context. */
export function clientFor(ctx: PluginContext, plugin: string): RecognitionClient {
  const hub = hubFor(ctx);
  return createRecognitionClient({ http: ctx.http, site: hub.site, token: hub.token, audit: (e) => ctx.audit(e), plugin });
}

/** Records a pending check in memory (shared) and in the caller's durable state. */
export async function rememberPending(ctx: PluginContext, p: PendingCheck): Promise<void> {
  const key = pendingKey(p.orderNo, p.itemCode);
  hubFor(ctx).pending.set(key, p);
  const { idNumber: _idNumber, ...durable } = p;
  await ctx.state.set(key, durable);
}

/** Finds a pending check (memory first, then the caller's state). */
export async function findPending(ctx: PluginContext, orderNo: string, itemCode: string): Promise<PendingCheck | undefined> {
  const key = pendingKey(orderNo, itemCode);
  return hubFor(ctx).pending.get(key) ?? (await ctx.state.get<PendingCheck>(key));
}

/** Forgets a decided check everywhere. */
export async function clearPending(ctx: PluginContext, orderNo: string, itemCode: string): Promise<void> {
  const key = pendingKey(orderNo, itemCode);
  hubFor(ctx).pending.delete(key);
  await ctx.state.delete(key);
}
