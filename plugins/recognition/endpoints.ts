/**
 * Workstation endpoints (seed 004 §2.18-19, SPEC §3): the icon when a doctor
 * opens a patient, the duplicate check when an order is entered or saved,
 * the doctor's 互认 / 不互认 decision, and the download of a recognized
 * report. Every request is audited; bad input answers 4xx `{code, message}`.
 */
import { hbError, isHisbridgeError, toHisbridgeError, type EndpointRequest, type EndpointResponse, type HttpEndpoint, type PluginContext, requestOrigin } from '../../core/sdk.js';
import { recognitionError } from './errors.js';
import { checkForDecision, runCheck, type CheckItem } from './check.js';
import { clearPending, clientsFor, findPending, hubFor } from './hub.js';
import { requestInstitution } from '../shared/institutions.js';
import type { RecognitionClient } from './client.js';
import type { RecognitionInstitution } from './site.js';

const PLUGIN = 'recognition';

function bad(detail: string): never {
  throw recognitionError('RECOG_E_BAD_REQUEST', { detail });
}

function text(v: unknown, name: string, required = true): string {
  if (v === undefined || v === null || v === '') {
    if (required) bad(`${name} is required`);
    return '';
  }
  if (typeof v !== 'string' && typeof v !== 'number') bad(`${name} must be a string`);
  const s = String(v).trim();
  if (s.length > 128 || /[\u0000-\u001f]/.test(s)) bad(`${name} is not a valid value`);
  return s;
}

function body(req: EndpointRequest): Record<string, unknown> {
  if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) bad('body must be a JSON object');
  return req.body as Record<string, unknown>;
}

/** Catalogued errors keep their status; a remote refusal is a bad gateway, a remote outage unavailable. */
function errorResponse(e: unknown): EndpointResponse {
  const err = toHisbridgeError(e);
  const status = err.status ?? (err.retryable ? 503 : 502);
  return { status, body: { code: err.code, message: err.message } };
}

/** Who a request is for: filled in by the handler as it learns it, for the audit row. */
interface Who {
  patientId?: string;
  staffNo?: string;
}

/** The `orgCode` a request names: in the JSON body (POST), else in the query. */
function askedOrgCode(req: EndpointRequest): string | undefined {
  const fromBody = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>).orgCode : undefined;
  return typeof fromBody === 'string' ? fromBody : req.query.orgCode;
}

/** The institution a request acts for, with its client and site. */
interface Acting {
  client: RecognitionClient;
  site: RecognitionInstitution;
}

export function recognitionEndpoints(ctx: PluginContext): HttpEndpoint[] {
  const hub = hubFor(ctx);
  const clients = clientsFor(ctx, PLUGIN);

  /**
   * The institution of a request: `orgCode` in the query (GET) or the body
   * (POST), required with several institutions; an API client limited by
   * `institutions:` is refused another (403 RECOG_E_INSTITUTION_FORBIDDEN).
   */
  const institutionOf = (req: EndpointRequest): Acting => {
    const site = requestInstitution(hub.institutions, askedOrgCode(req), req.institutions, {
      required: () => recognitionError('RECOG_E_INSTITUTION_REQUIRED'),
      unknown: (o) => recognitionError('RECOG_E_UNKNOWN_INSTITUTION', { orgCode: o }),
      forbidden: (o) => recognitionError('RECOG_E_INSTITUTION_FORBIDDEN', { orgCode: o }),
    });
    return { site, client: clients.get(site.orgCode)! };
  };

  /** Wraps a handler: one audit row per request (under the institution asked for, when configured), errors as JSON. */
  const wrap = (operation: string, fn: (req: EndpointRequest, who: Who, acting: Acting) => Promise<EndpointResponse>) =>
    async (req: EndpointRequest): Promise<EndpointResponse> => {
      const started = performance.now();
      const who: Who = {};
      let res: EndpointResponse;
      let orgCode: string | undefined;
      try {
        const acting = institutionOf(req);
        orgCode = acting.site.orgCode;
        res = await fn(req, who, acting);
      } catch (e) {
        res = errorResponse(e);
        // A refused request is audited against the institution asked for, when that is a configured one.
        const asked = askedOrgCode(req);
        if (!orgCode && asked && hub.institutions.byOrgCode(asked)) orgCode = asked;
      }
      const forbidden = res.status === 403 && (res.body as { code?: string } | undefined)?.code === 'RECOG_E_INSTITUTION_FORBIDDEN';
      ctx.audit({
        plugin: PLUGIN,
        operation: `workstation-${operation}`,
        ...(orgCode ? { orgCode } : {}),
        result: res.status < 400 ? 'ok' : forbidden ? 'forbidden' : `HTTP ${res.status}`,
        latencyMs: Math.round(performance.now() - started),
        ...(who.patientId ? { patientId: who.patientId } : {}),
        ...(who.staffNo ? { staffNo: who.staffNo } : {}),
        ...requestOrigin(req),
        ...(res.status >= 400 && res.body && typeof res.body === 'object' ? { detail: String((res.body as { code?: string }).code) } : {}),
      });
      return res;
    };

  return [
    {
      method: 'GET',
      path: '/api/recognition/summary',
      handler: wrap('summary', async (req, who, { client, site }) => {
        const patientId = text(req.query.patientId, 'patientId');
        who.patientId = patientId;
        const idNumber = text(req.query.idNumber, 'idNumber', false);
        let data: Record<string, unknown>;
        try {
          ({ data } = await client.call('list', { orgCode: site.orgCode, orgName: site.orgName, patientId, ...(idNumber ? { idNumber } : {}) }, { patientId }));
        } catch (e) {
          // A patient the platform does not know has no results from other institutions: grey icon, not an error.
          if (isHisbridgeError(e) && e.code === 'RECOG_E_UNKNOWN_PATIENT') return { status: 200, body: { count: 0, icon: 'grey', listUrl: '', items: [], patientKnown: false } };
          throw e;
        }
        const items = Array.isArray(data.items) ? data.items : [];
        const count = typeof data.count === 'number' ? data.count : items.length;
        const listUrl = site.listUrl ? site.listUrl.replace('{patientId}', encodeURIComponent(patientId)) : String(data.url ?? '');
        return { status: 200, body: { count, icon: count > 0 ? 'green' : 'grey', listUrl: count > 0 ? listUrl : '', items } };
      }),
    },
    {
      method: 'POST',
      path: '/api/recognition/check',
      handler: wrap('check', async (req, who, { client }) => {
        const b = body(req);
        const orderNo = text(b.orderNo, 'orderNo');
        const patientId = text(b.patientId, 'patientId');
        who.patientId = patientId;
        const staffNo = text(b.staffNo, 'staffNo', false);
        if (staffNo) who.staffNo = staffNo;
        const idNumber = text(b.idNumber, 'idNumber', false);
        if (b.items !== undefined && !Array.isArray(b.items)) bad('items must be a list');
        const items: CheckItem[] = ((b.items as unknown[] | undefined) ?? []).map((raw, i) => {
          const it = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
          const itemName = text(it.itemName, `items[${i}].itemName`, false);
          const itemOrderNo = text(it.orderNo, `items[${i}].orderNo`, false);
          return { itemCode: text(it.itemCode, `items[${i}].itemCode`), ...(itemName ? { itemName } : {}), ...(itemOrderNo ? { orderNo: itemOrderNo } : {}) };
        });
        const mode = b.mode === undefined ? 'prescription' : b.mode;
        if (mode !== 'prescription' && mode !== 'precise') bad('mode must be "prescription" or "precise"');
        const result = await runCheck(ctx, client, { orderNo, patientId, ...(idNumber ? { idNumber } : {}), ...(staffNo ? { staffNo } : {}), items, mode }, {});
        return { status: 200, body: { ...result, duplicates: result.items.filter((i) => i.recognizable) } };
      }),
    },
    {
      method: 'POST',
      path: '/api/recognition/decision',
      handler: wrap('decision', async (req, who, { client, site }) => {
        const b = body(req);
        const orderNo = text(b.orderNo, 'orderNo');
        const itemCode = text(b.itemCode, 'itemCode');
        const staffNo = text(b.staffNo, 'staffNo');
        who.staffNo = staffNo;
        if (b.decision !== 'recognize' && b.decision !== 'not-recognize') bad('decision must be "recognize" or "not-recognize"');
        const reason = typeof b.reason === 'string' ? b.reason.slice(0, 500) : '';
        const idNumber = text(b.idNumber, 'idNumber', false);
        const pending = await findPending(ctx, orderNo, itemCode, site.orgCode);
        if (!pending) throw recognitionError('RECOG_E_NO_PENDING_CHECK', { orderNo, itemCode });
        who.patientId = pending.patientId;
        let check: { checkId?: string; priorReportId: string };
        try {
          check = await checkForDecision(client, pending, { staffNo, ...(idNumber ? { idNumber } : {}) });
        } catch (e) {
          if (isHisbridgeError(e) && e.code === 'RECOG_E_NO_LONGER_DUPLICATE') await clearPending(ctx, orderNo, itemCode, site.orgCode);
          throw e;
        }
        await client.call('decision', {
          orgCode: site.orgCode,
          orgName: site.orgName,
          orderNo,
          itemCode,
          decision: b.decision,
          staffNo,
          ...(reason ? { reason } : {}),
          ...(check.checkId ? { checkId: check.checkId } : {}),
          ...(check.priorReportId ? { priorReportId: check.priorReportId } : {}),
        }, { patientId: pending.patientId, staffNo });
        await clearPending(ctx, orderNo, itemCode, site.orgCode);
        return { status: 200, body: { recorded: true, orderNo, itemCode, decision: b.decision, priorReportId: check.priorReportId } };
      }),
    },
    {
      method: 'GET',
      path: '/api/recognition/report/:id',
      handler: wrap('report', async (req, _who, { client, site }) => {
        const reportId = text(req.params.id, 'id');
        const { data, response } = await client.call('download', { orgCode: site.orgCode, orgName: site.orgName, reportId });
        let pdf: Buffer;
        if (typeof data.content === 'string') pdf = Buffer.from(data.content, 'base64');
        else if (!response.json) pdf = response.body;
        else throw hbError('HTTP_E_BAD_BODY', { target: 'recognition platform (download)', detail: 'no content' });
        if (req.query.format === 'json') {
          return { status: 200, body: { reportId, fileName: String(data.fileName ?? `${reportId}.pdf`), contentType: 'application/pdf', content: pdf.toString('base64'), institution: data.institution ?? '', reportDate: data.reportDate ?? '' } };
        }
        const fileName = String(data.fileName ?? `${reportId}.pdf`).replace(/[^\w.-]/g, '_');
        return { status: 200, headers: { 'content-type': 'application/pdf', 'content-disposition': `attachment; filename="${fileName}"` }, body: pdf };
      }),
    },
  ];
}
