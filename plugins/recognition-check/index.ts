/**
 * `recognition-check`: the duplicate-order check for ORM^O01 / OML^O21 with
 * ORC-1 = NW (seed 004 §2.18-19 items 2-3). Every new OBR item is checked
 * against results of other institutions (prescription-save check by default,
 * or one precise query per item); the step replies with one ZRC segment per
 * item so the HIS can force the doctor's 互认 / 不互认 decision, and records
 * the recognizable items as pending checks for POST /api/recognition/decision.
 *
 * ZRC (defined here; see README.md): 1 item code, 2 item name, 3 recognizable
 * Y/N, 4 prior report id, 5 institution, 6 report date (YYYYMMDD), 7 view URL,
 * 8 order number of the item.
 */
import { hbError, type Hl7Message, type PluginDefinition } from '../../core/sdk.js';
import { runCheck, type CheckItem } from '../recognition/check.js';
import { DEFAULT_CARD_TYPES, patientRef } from '../recognition/hl7-patient.js';
import { clientsFor } from '../recognition/hub.js';
import { INSTITUTION_KEY_SCHEMA, recognitionPicker } from '../recognition/institution.js';

export interface RecognitionCheckConfig {
  /** prescription: one prescription-save check for the order (default); precise: one precise query per item. */
  mode?: 'prescription' | 'precise';
  /** ORC-1 values whose items are checked (default [NW]). */
  orderControls?: string[];
  /** Add ZRC segments to the ACK (default true). */
  reply?: boolean;
  /** orgCode of the recognition institution to check under (default: the one whose senders list MSH-4). */
  institution?: string;
}

/** Items of the order: each OBR with the ORC before it. */
function orderItems(msg: Hl7Message, controls: readonly string[]): CheckItem[] {
  const items: CheckItem[] = [];
  let orc: { control: string; orderNo: string } | undefined;
  for (const seg of msg.segments()) {
    if (seg.name === 'ORC') orc = { control: seg.get(1), orderNo: seg.get(2, 1, 1) };
    else if (seg.name === 'OBR') {
      if (!orc || !controls.includes(orc.control)) continue;
      const itemCode = seg.get(4, 1, 1);
      if (!itemCode) continue;
      const orderNo = orc.orderNo || seg.get(2, 1, 1);
      items.push({ itemCode, ...(seg.get(4, 1, 2) ? { itemName: seg.get(4, 1, 2) } : {}), ...(orderNo ? { orderNo } : {}) });
    }
  }
  return items;
}

const plugin: PluginDefinition<RecognitionCheckConfig> = {
  name: 'recognition-check',
  summary: 'Duplicate-order check of new ORM/OML items against recognizable results; replies one ZRC segment per item',
  kind: 'outbound',
  segments: [{
    name: 'ZRC',
    description: 'Mutual recognition check result (检查检验互认)',
    fields: [
      { name: 'Item code', datatype: 'ST' },
      { name: 'Item name', datatype: 'ST' },
      { name: 'Recognizable (Y/N)', datatype: 'ID' },
      { name: 'Prior report id', datatype: 'ST' },
      { name: 'Institution of the prior report', datatype: 'ST' },
      { name: 'Report date', datatype: 'DT' },
      { name: 'View URL of the prior report', datatype: 'ST' },
      { name: 'Order number', datatype: 'ST' },
    ],
  }],
  siteKey: 'recognition',
  // Pending checks must outlive a restart where POST /api/recognition/decision (the extension's state) finds them.
  stateNamespace: 'recognition',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mode: { enum: ['prescription', 'precise'], description: 'prescription-save check for the whole order (default) or a precise query per item' },
      orderControls: { type: 'array', items: { type: 'string', pattern: '^[A-Z]{2}$' }, minItems: 1, description: 'ORC-1 values checked (default [NW])' },
      reply: { type: 'boolean', description: 'Reply ZRC segments in the ACK (default true; on-complete routes)' },
      institution: INSTITUTION_KEY_SCHEMA,
    },
  },
  examples: [{ title: 'Check new orders and answer in the ACK', yaml: 'plugin: recognition-check\nas: check' }],
  create(ctx, config) {
    const clients = clientsFor(ctx, 'recognition-check');
    const picker = recognitionPicker(ctx, config.institution, 'recognition-check');
    const controls = config.orderControls ?? ['NW'];
    const mode = config.mode ?? 'prescription';
    return {
      admit(input) {
        picker.pick(input);
      },
      async process(input, call) {
        const client = clients.get(picker.pick(input).orgCode)!;
        const msg = input.hl7;
        if (!msg) throw hbError('HL7_E_PARSE', { detail: 'recognition-check needs an HL7 message' });
        const items = orderItems(msg, controls);
        if (items.length === 0) return { outcome: 'skipped', detail: 'no new order items', output: { mustDecide: false, items: [] } };
        const patient = patientRef(msg, DEFAULT_CARD_TYPES);
        const patientId = String(patient.patientId ?? '');
        if (!patientId) throw hbError('HL7_E_MISSING_FIELD', { path: 'PID-3' });
        const orderNo = msg.get('ORC-4.1') || items[0]!.orderNo || msg.get('OBR-2.1');
        const staffNo = msg.get('ORC-12.1');
        const result = await runCheck(ctx, client, {
          orderNo,
          patientId,
          ...(patient.idType === '01' && patient.idNumber ? { idNumber: String(patient.idNumber) } : {}),
          ...(staffNo ? { staffNo } : {}),
          items,
          mode,
        }, { route: call.route, messageId: input.controlId, idempotencyKey: call.idempotencyKey, signal: call.signal });
        const segments = result.items.map((i) => ['ZRC', i.itemCode, i.itemName, i.recognizable ? 'Y' : 'N', i.priorReportId, i.institution, i.reportDate, i.viewUrl, i.orderNo]);
        const duplicates = result.items.filter((i) => i.recognizable).length;
        return {
          outcome: 'ok',
          detail: `${result.items.length} item(s), ${duplicates} recognizable`,
          output: { orderNo: result.orderNo, mustDecide: result.mustDecide, duplicates, items: result.items },
          ...(config.reply === false ? {} : { reply: { segments } }),
        };
      },
    };
  },
};

export default plugin;
