/**
 * The duplicate-order check shared by the `recognition-check` plugin (ORM /
 * OML) and the workstation endpoint: one platform call for all items of an
 * order (prescription-save check, 处方保存互认逻辑校验) or one precise query
 * per item (精准互认信息); every recognizable item becomes a pending check
 * that the doctor must decide on.
 */
import type { PluginContext } from '../../core/sdk.js';
import { hbError } from '../../core/errors.js';
import type { CallMeta, RecognitionClient } from './client.js';
import { rememberPending } from './hub.js';

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
  if (req.items.length === 0) throw hbError('RECOG_E_NO_ITEMS');
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
    });
  }
  return { orderNo: req.orderNo, mustDecide: items.some((i) => i.recognizable), items };
}
