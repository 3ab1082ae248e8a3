/**
 * What each simulated operation does to the simulator state. Payloads arrive
 * validated and with canonical field names. Rules of the simulated contract:
 * uploads are idempotent (the same report twice is fine) and an upload with
 * status C replaces the stored version; revoking an unknown report is an
 * error, revoking twice is not; a PDF needs its report; recognition queries
 * answer from other institutions' results only. As seed 004 describes them,
 * the list and the precise query (精准互认信息) are lookups that change
 * nothing; only the prescription-save check (处方保存互认逻辑校验) opens a
 * check, and a decision (互认 / 不互认) is accepted only for such a check.
 */
import type { Operation, ResponseEnvelope } from './site.js';
import type { ForeignResult, ReportType, SimState } from './sim-state.js';

export class SimFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface OpEnv {
  baseUrl: string;
  codes: ResponseEnvelope;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function view(env: OpEnv, f: ForeignResult): Record<string, unknown> {
  return {
    reportId: f.reportId,
    reportType: f.reportType,
    itemCode: f.itemCode,
    itemName: f.itemName,
    institution: f.institution,
    institutionCode: f.institutionCode,
    reportDate: f.reportDate,
    viewUrl: `${env.baseUrl}/view/report/${encodeURIComponent(f.reportId)}`,
  };
}

function idNumberFor(state: SimState, env: OpEnv, body: Record<string, unknown>): string {
  const id = str(body.idNumber) || state.idNumberOf(str(body.patientId));
  if (!id) throw new SimFailure(env.codes.unknownPatientCodes[0] ?? '2001', 'patient unknown: upload the patient first or send idNumber');
  return id;
}

function unknownReport(env: OpEnv, reportId: string): SimFailure {
  return new SimFailure(env.codes.unknownReportCodes[0] ?? '2004', `report ${reportId} not found`);
}

function reportOp(op: Operation): { type: ReportType; action: 'upload' | 'pdf' | 'revoke' } | undefined {
  const m = /^(lab|exam)(Report|Pdf|Revoke)$/.exec(op);
  if (!m) return undefined;
  return { type: m[1] as ReportType, action: m[2] === 'Report' ? 'upload' : m[2] === 'Pdf' ? 'pdf' : 'revoke' };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function handleOperation(state: SimState, op: Operation, body: Record<string, unknown>, env: OpEnv): Record<string, unknown> {
  const rep = reportOp(op);
  if (rep) {
    const reportId = str(body.reportId);
    const key = `${rep.type}:${reportId}`;
    const cur = state.reports.get(key);
    if (rep.action === 'upload') {
      if (cur && cur.status === 'active' && body.status !== 'C' && !sameJson(cur.data, body)) {
        throw new SimFailure('2002', `report ${reportId} already uploaded; send status C to correct it`);
      }
      if (cur && sameJson(cur.data, body) && cur.status === 'active') return { reportId, version: cur.versions };
      const versions = (cur?.versions ?? 0) + 1;
      // A correction replaces data and drops the old PDF: the new PDF follows in its own call.
      state.reports.set(key, { type: rep.type, reportId, status: 'active', versions, data: body });
      return { reportId, version: versions };
    }
    if (!cur) throw unknownReport(env, reportId);
    if (rep.action === 'pdf') {
      if (cur.status !== 'active') throw new SimFailure('2006', `report ${reportId} is revoked`);
      const content = str(body.content).replace(/\s+/g, '');
      if (!Buffer.from(content, 'base64').subarray(0, 5).equals(Buffer.from('%PDF-'))) throw new SimFailure('1001', 'content is not a PDF');
      cur.pdf = content;
      return { reportId };
    }
    if (cur.status === 'active') {
      cur.status = 'revoked';
      const reason = str(body.reason);
      if (reason) cur.revokeReason = reason;
    }
    return { reportId, status: 'revoked' };
  }

  switch (op) {
    case 'patient': {
      const p = body.patient as Record<string, unknown>;
      state.patients.set(str(p.patientId), p);
      return { patientId: str(p.patientId) };
    }
    case 'department':
    case 'staff': {
      const map = op === 'department' ? state.departments : state.staff;
      const code = str(op === 'department' ? body.deptCode : body.staffNo);
      map.set(code, body.action === 'delete' ? { ...(map.get(code) ?? {}), deleted: true } : { ...body, deleted: false });
      return { code, action: str(body.action) };
    }
    case 'list': {
      const items = state.recognizable(idNumberFor(state, env, body)).map((f) => view(env, f));
      return { count: items.length, url: `${env.baseUrl}/view/list/${items.length ? items[0]!.reportId : 'none'}`, items };
    }
    case 'precise': {
      const items = state
        .recognizable(idNumberFor(state, env, body), { itemCode: str(body.itemCode), institution: str(body.institution), dateFrom: str(body.dateFrom), dateTo: str(body.dateTo) })
        .map((f) => view(env, f));
      return { count: items.length, items };
    }
    case 'prescriptionCheck': {
      const idNumber = idNumberFor(state, env, body);
      const items = (body.items as Record<string, unknown>[]).map((it) => {
        const itemCode = str(it.itemCode);
        const orderNo = str(it.orderNo) || str(body.orderNo);
        const hit = state.recognizable(idNumber, { itemCode })[0];
        if (!hit) return { itemCode, itemName: str(it.itemName), orderNo, recognizable: false };
        const check = state.newCheck(orderNo, itemCode, hit.reportId);
        return { ...view(env, hit), itemName: str(it.itemName) || hit.itemName, orderNo, recognizable: true, priorReportId: hit.reportId, checkId: check.checkId };
      });
      return { orderNo: str(body.orderNo), mustDecide: items.some((i) => i.recognizable), items };
    }
    case 'decision': {
      const check = state.checks.get(`${str(body.orderNo)}\u0000${str(body.itemCode)}`);
      if (!check) throw new SimFailure('2005', 'no prescription check for this order item');
      if (str(body.checkId) && str(body.checkId) !== check.checkId) throw new SimFailure('2005', 'checkId does not match the prescription check of this order item');
      check.decided = str(body.decision);
      state.decisions.push({ ...body, at: Date.now() });
      return { recorded: true, checkId: check.checkId };
    }
    case 'download': {
      const reportId = str(body.reportId);
      const f = state.foreign.find((x) => x.reportId === reportId);
      if (!f) throw unknownReport(env, reportId);
      return { reportId, fileName: `${reportId}.pdf`, contentType: 'application/pdf', content: f.pdf, institution: f.institution, reportDate: f.reportDate };
    }
    default:
      throw new SimFailure('1000', `operation ${op} not handled`);
  }
}
