/**
 * sz-ehr: a site plugin for the Shenzhen city health-record platform
 * (深圳市健康档案平台). The platform is invented for this example, but shaped
 * like the real city platforms: a consent authorization API behind an
 * HMAC-signed gateway, and business result codes inside HTTP 200 answers.
 *
 * One module, three things, loaded by `plugins: [./site-plugins/sz-ehr.mjs]`
 * in hisbridge.yaml (docs/plugins.md):
 * - the error family `szEhr` (SZEHR_E_* codes),
 * - the site extension `szEhr` (the `szEhr:` section of hisbridge.yaml, its
 *   defaults, its simulator and its health probe),
 * - the step plugin `sz-ehr-authorize`.
 *
 * The default export is a function of the engine's SDK (the primary form): the
 * module never imports hisbridge itself, so its errors are the engine's own
 * HisbridgeError class whichever way the engine runs. Only Node built-ins are
 * imported directly.
 *
 * Wire contract (what the simulator below checks):
 *   POST {baseUrl}/api/v1/consent/authorize, JSON UTF-8
 *   {"requestId","orgCode","patient":{"idType":"01","idNumber","name"},"purpose":"record-read","validDays"}
 *   headers x-sz-app-key, x-sz-timestamp (unix seconds), x-sz-nonce,
 *   x-sz-signature = lowercase hex HMAC-SHA256(secret,
 *     "POST\n/api/v1/consent/authorize\n" + timestamp + "\n" + nonce + "\n" + hex SHA-256 of the body bytes)
 *   answer {"code":"0000","message":"成功","data":{"authId"}}; any other code is a refusal.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

export const AUTHORIZE_PATH = '/api/v1/consent/authorize';
/** Port of the simulator with the engine's HTTP server off; otherwise the engine derives it (core/engine/sim-ports.ts). */
export const SZ_EHR_SIMULATOR_PORT = 8489;
/** Demo credentials: the simulator accepts them and the defaults use them while the simulators run. Never in production. */
export const DEMO = Object.freeze({ orgCode: 'SZ4403000001', appKey: 'sz-demo-app', secret: 'sz-demo-secret-not-for-production' });

/** The string the gateway signs. */
export function signingString(timestamp, nonce, body) {
  return `POST\n${AUTHORIZE_PATH}\n${timestamp}\n${nonce}\n${createHash('sha256').update(body).digest('hex')}`;
}

/** x-sz-signature for a request body (a Buffer or string). */
export function sign(secret, timestamp, nonce, body) {
  return createHmac('sha256', secret).update(signingString(timestamp, nonce, body)).digest('hex');
}

/** @param {typeof import('../../../core/sdk.js')} sdk */
export default function szEhrPlugin(sdk) {
  /* ---------------- error catalogue ---------------- */
  const szEhrErrors = sdk.errorFactory('szEhr', {
    SZEHR_E_REFUSED: { message: 'Shenzhen platform refused the authorization: code {code}', retryable: false },
    SZEHR_E_SIGNATURE: { message: 'Shenzhen platform gateway rejected the request (HTTP {status}): check szEhr.appKey and szEhr.secret', retryable: false },
    SZEHR_E_BAD_RESPONSE: { message: 'Shenzhen platform answered without a result code (HTTP {status})', retryable: true },
    SZEHR_E_NO_ID_NUMBER: { message: 'no ID number found for the patient ({path})', retryable: false },
  });

  /* ---------------- site extension ---------------- */
  const siteSchema = {
    type: 'object',
    additionalProperties: false,
    properties: {
      baseUrl: { type: 'string', pattern: '^https?://', description: 'Base URL of the Shenzhen platform gateway (default: the simulator)' },
      orgCode: { type: 'string', description: 'Institution code issued by the city' },
      appKey: { type: 'string', description: 'Gateway application key' },
      secret: { type: 'string', description: 'Gateway HMAC secret: ${env:NAME}, never inline' },
      authDays: { type: 'integer', minimum: 1, maximum: 365, description: 'Validity of an authorization in days (default 30)' },
      timeout: { ...sdk.durationSchema, description: 'Timeout of one call (default 10s)' },
    },
  };

  /** The section after defaults, checked: a key a call needs and the site left out makes the route inactive (or a load error with required: true). */
  function readSite(section) {
    const s = (k) => (typeof section[k] === 'string' ? section[k] : '');
    for (const k of ['baseUrl', 'orgCode', 'appKey', 'secret']) if (!s(k)) throw sdk.hbError('CONFIG_E_SITE_MISSING', { section: 'szEhr', key: k });
    return {
      baseUrl: s('baseUrl').replace(/\/+$/, ''),
      orgCode: s('orgCode'),
      appKey: s('appKey'),
      secret: s('secret'),
      authDays: typeof section.authDays === 'number' ? section.authDays : 30,
      timeoutMs: sdk.parseDuration(section.timeout, 10_000),
    };
  }

  const szEhr = {
    key: 'szEhr',
    summary: 'Shenzhen city health-record platform (深圳市健康档案平台, example site plugin): gateway credentials issued by the city; secret via ${env:NAME}',
    configSchema: siteSchema,
    errors: szEhrErrors,
    defaults({ simulatorUrl }) {
      return simulatorUrl ? { baseUrl: simulatorUrl, ...DEMO, authDays: 30 } : { authDays: 30 };
    },
    simulator: { defaultPort: SZ_EHR_SIMULATOR_PORT, start: (opts) => startSimulator(sdk, opts) },
    health: (site) => (typeof site.baseUrl === 'string' && site.baseUrl ? { url: site.baseUrl } : undefined),
  };

  /* ---------------- step plugin ---------------- */
  /**
   * Config of a `sz-ehr-authorize` step (the schema below names exactly these keys):
   * @typedef {{ idNumber?: string, patientName?: string, patientId?: string, consent?: false | { value?: string, accept?: string[] }, authDays?: number }} SzEhrAuthorizeConfig
   */
  const template = (d) => ({ type: 'string', description: `Template. ${d}` });
  const authorizePlugin = {
    name: 'sz-ehr-authorize',
    summary: 'Shenzhen city platform: authorize the hospital to read the patient’s city health record (consent given at the desk)',
    kind: 'outbound',
    siteKey: 'szEhr',
    errors: szEhrErrors,
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        idNumber: template('Resident ID number (default ${PID-3[5=NI|ID|SFZ].1})'),
        patientName: template('Patient name (default ${PID-5.1}${PID-5.2})'),
        patientId: template('In-hospital patient id, for the audit only (default ${PID-3[5=PI].1})'),
        consent: {
          description: 'consent check: {value, accept} or false to send without one',
          anyOf: [
            { const: false },
            {
              type: 'object',
              additionalProperties: false,
              properties: {
                value: template('Where the consent marker is (default ${ZCN-1})'),
                accept: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Values meaning consent (default ["Y"])' },
              },
            },
          ],
        },
        authDays: { type: 'integer', minimum: 1, maximum: 365, description: 'Validity in days (default szEhr.authDays)' },
      },
    },
    examples: [{ title: 'Authorize on registration with consent', yaml: 'plugin: sz-ehr-authorize\nconfig: { consent: { value: "${ZCN-1}", accept: [Y] } }' }],
    /** @param {SzEhrAuthorizeConfig} config */
    create(ctx, config) {
      const site = readSite(ctx.site);
      const idNumber = sdk.compileTemplate(config.idNumber ?? '${PID-3[5=NI|ID|SFZ].1}');
      const patientName = sdk.compileTemplate(config.patientName ?? '${PID-5.1}${PID-5.2}');
      const patientId = sdk.compileTemplate(config.patientId ?? '${PID-3[5=PI].1}');
      const consent = config.consent === false ? undefined : { value: sdk.compileTemplate(config.consent?.value ?? '${ZCN-1}'), accept: new Set(config.consent?.accept ?? ['Y']) };
      const days = config.authDays ?? site.authDays;
      const url = site.baseUrl + AUTHORIZE_PATH;
      return {
        async process(input, call) {
          const started = performance.now();
          const pid = patientId.render(input);
          const base = { route: call.route, plugin: 'sz-ehr-authorize', operation: 'authorize', orgCode: site.orgCode, messageId: input.controlId, ...(pid ? { patientId: pid } : {}) };
          if (consent && !consent.accept.has(consent.value.render(input).trim())) {
            ctx.audit({ ...base, result: 'skipped', detail: 'no consent' });
            return { outcome: 'skipped', detail: 'no consent' };
          }
          try {
            const id = idNumber.render(input).trim();
            if (!id) throw szEhrErrors.error('SZEHR_E_NO_ID_NUMBER', { path: idNumber.source });
            const body = Buffer.from(JSON.stringify({
              requestId: call.idempotencyKey,
              orgCode: site.orgCode,
              patient: { idType: '01', idNumber: id, name: patientName.render(input) },
              purpose: 'record-read',
              validDays: days,
            }));
            const timestamp = String(Math.floor(Date.now() / 1000));
            const nonce = randomBytes(12).toString('hex');
            const res = await ctx.http.request(url, {
              method: 'POST',
              target: 'szEhr authorize',
              timeoutMs: site.timeoutMs,
              signal: call.signal,
              body,
              headers: {
                'content-type': 'application/json; charset=utf-8',
                'idempotency-key': call.idempotencyKey,
                'x-sz-app-key': site.appKey,
                'x-sz-timestamp': timestamp,
                'x-sz-nonce': nonce,
                'x-sz-signature': sign(site.secret, timestamp, nonce, body),
              },
            });
            if (res.status === 401 || res.status === 403) throw szEhrErrors.error('SZEHR_E_SIGNATURE', { status: res.status });
            const bad = sdk.classifyHttpStatus(res.status, res.headers, 'szEhr authorize');
            if (bad) throw bad;
            const answer = res.json;
            const code = answer && typeof answer === 'object' && typeof answer.code === 'string' ? answer.code : undefined;
            if (code === undefined) throw szEhrErrors.error('SZEHR_E_BAD_RESPONSE', { status: res.status });
            // The remote's text may carry anything: only its code goes into errors, logs and the audit.
            if (code !== '0000') throw szEhrErrors.error('SZEHR_E_REFUSED', { code: code.slice(0, 16).replace(/[^\w.-]/g, '?') });
            const authId = typeof answer.data?.authId === 'string' ? answer.data.authId : '';
            ctx.audit({ ...base, idNumber: id, result: 'ok', latencyMs: Math.round(performance.now() - started), detail: 'code 0000' });
            return { outcome: 'ok', output: { authId, days } };
          } catch (e) {
            const err = sdk.toHisbridgeError(e);
            ctx.audit({ ...base, result: 'failed', latencyMs: Math.round(performance.now() - started), detail: err.code });
            throw err;
          }
        },
      };
    },
  };

  return [szEhrErrors, szEhr, authorizePlugin];
}

/* ---------------- simulator ---------------- */

const MAX_BODY = 64 * 1024;
const WINDOW_S = 300;
const MAX_CALLS = 1000;
const MAX_NONCES = 10_000;

/**
 * The Shenzhen platform as the engine sees it: verifies the gateway headers
 * (app key, ±300 s timestamp, nonce reuse, HMAC), the JSON shape, and answers
 * code 0000 with an authId. Same requestId again: the first answer, not a
 * second authorization.
 *
 * Test/demo control, local only: `POST /__sim/faults` with
 * `{"refuse": "2001", "count": 1}` (answer that code) or `{"status": 503}`
 * (answer that HTTP status), or an array of them (route tests' `faults:`);
 * `GET /__sim/calls` answers `{ calls }` (what arrived, with the raw body and
 * signature headers, test data only; route tests' `remote:`); `POST /__sim/reset`.
 */
function startSimulator(sdk, { host, port, site, log }) {
  const appKey = String(site.appKey ?? '');
  const secret = String(site.secret ?? '');
  const calls = [];
  const nonces = new Set();
  const answered = new Map();
  let faults = [];
  const send = (res, status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(obj));
  };
  const record = (c) => {
    calls.push(c);
    if (calls.length > MAX_CALLS) calls.shift();
  };
  const verify = (req, body) => {
    const h = (k) => (typeof req.headers[k] === 'string' ? req.headers[k] : '');
    if (h('x-sz-app-key') !== appKey) return 'unknown app key';
    const ts = Number(h('x-sz-timestamp'));
    if (!Number.isInteger(ts) || Math.abs(Date.now() / 1000 - ts) > WINDOW_S) return 'timestamp outside the window';
    const nonce = h('x-sz-nonce');
    if (!/^[0-9a-f]{16,64}$/.test(nonce)) return 'bad nonce';
    if (nonces.has(nonce)) return 'nonce reused';
    const want = Buffer.from(sign(secret, h('x-sz-timestamp'), nonce, body), 'hex');
    const got = Buffer.from(h('x-sz-signature'), 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return 'bad signature';
    nonces.add(nonce);
    if (nonces.size > MAX_NONCES) nonces.delete(nonces.values().next().value);
    return undefined;
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, 413, { code: '1413', message: 'body too large' });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      const body = Buffer.concat(chunks);
      const path = (req.url ?? '').split('?')[0];
      try {
        if (req.method === 'GET' && path === '/__sim/calls') return send(res, 200, { calls });
        if (req.method === 'POST' && path === '/__sim/reset') {
          calls.length = 0;
          faults = [];
          answered.clear();
          return send(res, 200, { ok: true });
        }
        if (req.method === 'POST' && path === '/__sim/faults') {
          const parsed = JSON.parse(body.toString('utf8'));
          for (const f of (Array.isArray(parsed) ? parsed : [parsed]).slice(0, 100)) {
            faults.push({ refuse: typeof f?.refuse === 'string' ? f.refuse : undefined, status: Number.isInteger(f?.status) ? f.status : undefined, count: Number.isInteger(f?.count) ? f.count : Infinity });
          }
          return send(res, 200, { ok: true });
        }
        if (req.method !== 'POST' || path !== AUTHORIZE_PATH) return send(res, 404, { code: '1404', message: 'not found' });
        const headers = Object.fromEntries(['x-sz-app-key', 'x-sz-timestamp', 'x-sz-nonce', 'x-sz-signature', 'idempotency-key'].map((k) => [k, req.headers[k] ?? '']));
        const call = { at: Date.now(), headers, body: body.toString('utf8'), signatureValid: false, httpStatus: 0 };
        const problem = verify(req, body);
        if (problem) {
          record({ ...call, httpStatus: 401, reason: problem });
          return send(res, 401, { code: '1001', message: problem });
        }
        call.signatureValid = true;
        let json;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          json = undefined;
        }
        const p = json?.patient;
        if (!json || typeof json.requestId !== 'string' || typeof json.orgCode !== 'string' || typeof p?.idNumber !== 'string' || typeof p?.name !== 'string' || !Number.isInteger(json.validDays)) {
          record({ ...call, httpStatus: 200, code: '1002' });
          return send(res, 200, { code: '1002', message: 'bad request body' });
        }
        const again = answered.get(json.requestId);
        if (again) {
          record({ ...call, httpStatus: 200, code: again.code, replayed: true });
          return send(res, 200, again);
        }
        const fault = faults.find((f) => f.count > 0);
        if (fault) {
          fault.count--;
          if (fault.status) {
            record({ ...call, httpStatus: fault.status, fault: true });
            return send(res, fault.status, { code: '1500', message: 'simulated fault' });
          }
          record({ ...call, httpStatus: 200, code: fault.refuse, fault: true });
          return send(res, 200, { code: fault.refuse, message: '患者已拒绝授权' });
        }
        const answer = { code: '0000', message: '成功', data: { authId: `SZA${Date.now().toString(36)}${randomBytes(3).toString('hex')}` } };
        answered.set(json.requestId, answer);
        if (answered.size > MAX_NONCES) answered.delete(answered.keys().next().value);
        record({ ...call, httpStatus: 200, code: '0000' });
        log.info({ org: json.orgCode, patient: sdk.maskIdNumber(p.idNumber) }, 'szEhr simulator: authorization granted');
        return send(res, 200, answer);
      } catch {
        return send(res, 400, { code: '1400', message: 'bad request' });
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve({
        url: `http://${host}:${a.port}`,
        close: () => new Promise((r) => {
          server.closeAllConnections?.();
          server.close(() => r());
        }),
      });
    });
  });
}
