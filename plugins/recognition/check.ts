/**
 * The duplicate-order check shared by the `recognition-check` plugin (ORM /
 * OML) and the workstation endpoint: one platform call for all items of an
 * order (prescription-save check, 处方保存互认逻辑校验) or one precise query
 * per item (精准互认信息); every recognizable item becomes a pending check
 * that the doctor must decide on.
 */
import type { PluginContext } from '../../core/sdk.js';
import { recognitionError } from './errors.js';
import type { CallMeta, RecognitionClient } from './client.js';
import { rememberPending, type PendingCheck } from './hub.js';

export interface CheckItem {
  itemCode: string;
  itemName?: string;
  /** Order number of this item when the order has one per item (ORC-2 per OBR). */
  orderNo?: string;
}

export interface CheckRequest {
  orderNo: string;
  patientId: string;
  idNumber?: string;
  staffNo?: string;
  items: CheckItem[];
  mode: 'prescription' | 'precise';
}

/** One answer per item, in the order the items were given. */
export interface ItemResult {
  itemCode: string;
  itemName: string;
  orderNo: string;
  recognizable: boolean;
  priorReportId: string;
  institution: string;
  reportDate: string;
  viewUrl: string;
  checkId?: string;
}

export interface CheckResult {
  orderNo: string;
  /** True when at least one item duplicates a recognizable result: the doctor must choose 互认 / 不互认. */
  mustDecide: boolean;
  items: ItemResult[];
}

const s = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function toItem(given: CheckItem, orderNo: string, r: Record<string, unknown> | undefined): ItemResult {
  const recognizable = r?.recognizable === true || (r !== undefined && r.recognizable === undefined && s(r.reportId) !== '');
  return {
    itemCode: given.itemCode,
    itemName: given.itemName || s(r?.itemName),
    orderNo: given.orderNo || orderNo,
    recognizable,
    priorReportId: recognizable ? s(r?.priorReportId) || s(r?.reportId) : '',
    institution: recognizable ? s(r?.institution) : '',
    reportDate: recognizable ? s(r?.reportDate) : '',
    viewUrl: recognizable ? s(r?.viewUrl) : '',
    ...(recognizable && r?.checkId ? { checkId: s(r.checkId) } : {}),
  };
}

/** Runs the check and records pending checks in `ctx` (shared memory + the caller's state). */
export async function runCheck(ctx: PluginContext, client: RecognitionClient, req: CheckRequest, meta: CallMeta): Promise<CheckResult> {
  if (req.items.length === 0) throw recognitionError('RECOG_E_NO_ITEMS');
  const site = client.site;
  const who = { orgCode: site.orgCode, orgName: site.orgName, patientId: req.patientId, ...(req.idNumber ? { idNumber: req.idNumber } : {}) };
  const m = { ...meta, patientId: req.patientId, ...(req.staffNo ? { staffNo: req.staffNo } : {}) };
  let items: ItemResult[];
  if (req.mode === 'prescription') {
    const { data } = await client.call('prescriptionCheck', {
      ...who,
      orderNo: req.orderNo,
      ...(req.staffNo ? { staffNo: req.staffNo } : {}),
      items: req.items.map((i) => ({ itemCode: i.itemCode, ...(i.itemName ? { itemName: i.itemName } : {}), ...(i.orderNo ? { orderNo: i.orderNo } : {}) })),
    }, m);
    const answers = Array.isArray(data.items) ? (data.items as Record<string, unknown>[]) : [];
    items = req.items.map((i) => toItem(i, req.orderNo, answers.find((a) => s(a.itemCode) === i.itemCode)));
  } else {
    items = [];
    for (const i of req.items) {
      const { data } = await client.call('precise', { ...who, itemCode: i.itemCode, ...(i.itemName ? { itemName: i.itemName } : {}) }, m);
      const hits = Array.isArray(data.items) ? (data.items as Record<string, unknown>[]) : [];
      items.push(toItem(i, req.orderNo, hits[0]));
    }
  }
  for (const it of items) {
    if (!it.recognizable) continue;
    await rememberPending(ctx, {
      orderNo: it.orderNo,
      itemCode: it.itemCode,
      patientId: req.patientId,
      priorReportId: it.priorReportId,
      ...(it.checkId ? { checkId: it.checkId } : {}),
      checkedAt: Date.now(),
      mode: req.mode,
      ...(it.itemName ? { itemName: it.itemName } : {}),
      ...(req.staffNo ? { staffNo: req.staffNo } : {}),
      ...(req.idNumber ? { idNumber: req.idNumber } : {}),
      orgCode: site.orgCode,
    });
  }
  return { orderNo: req.orderNo, mustDecide: items.some((i) => i.recognizable), items };
}

/**
 * The platform's check a decision completes. A prescription-save check
 * (处方保存互认逻辑校验, seed 004 item 16) already made one (`checkId`). A
 * precise query (精准互认信息, item 15) is a lookup by conditions and leaves
 * nothing at the platform to decide on, so the decision after it first runs
 * the prescription-save check for that one order item, which the seed asks
 * for at save anyway (§2.18-19 point 3), and decides on the check it returns.
 * Throws RECOG_E_NO_LONGER_DUPLICATE when the platform no longer finds a
 * recognizable result for the item (revoked meanwhile).
 */
export async function checkForDecision(client: RecognitionClient, p: PendingCheck, meta: CallMeta & { idNumber?: string }): Promise<{ checkId?: string; priorReportId: string }> {
  if (p.checkId || p.mode !== 'precise') return { ...(p.checkId ? { checkId: p.checkId } : {}), priorReportId: p.priorReportId };
  const site = client.site;
  const idNumber = meta.idNumber || p.idNumber;
  const staffNo = meta.staffNo || p.staffNo;
  const { data } = await client.call('prescriptionCheck', {
    orgCode: site.orgCode,
    orgName: site.orgName,
    patientId: p.patientId,
    ...(idNumber ? { idNumber } : {}),
    orderNo: p.orderNo,
    ...(staffNo ? { staffNo } : {}),
    items: [{ itemCode: p.itemCode, ...(p.itemName ? { itemName: p.itemName } : {}), orderNo: p.orderNo }],
  }, { ...meta, patientId: p.patientId });
  const answers = Array.isArray(data.items) ? (data.items as Record<string, unknown>[]) : [];
  const r = toItem({ itemCode: p.itemCode, orderNo: p.orderNo }, p.orderNo, answers.find((a) => s(a.itemCode) === p.itemCode));
  if (!r.recognizable) throw recognitionError('RECOG_E_NO_LONGER_DUPLICATE', { orderNo: p.orderNo, itemCode: p.itemCode });
  return { ...(r.checkId ? { checkId: r.checkId } : {}), priorReportId: r.priorReportId || p.priorReportId };
}
