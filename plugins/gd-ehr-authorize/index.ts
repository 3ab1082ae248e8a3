/**
 * `gd-ehr-authorize` (授权接口): grants ("1") or withdraws ("0") the
 * hospital's access to the patient's provincial health record. Without the
 * consent marker nothing is sent and the outcome is "skipped: no consent".
 */
import { auditedCall, compileTemplate, type Template, type PluginDefinition } from '../../core/sdk.js';
import { gdEhrError } from '../gd-ehr/errors.js';
import { authorize } from '../gd-ehr/client.js';
import { fieldTemplate, ID_NUMBER_DEFAULTS, PATIENT_ID_DEFAULTS, PATIENT_NAME_DEFAULTS } from '../gd-ehr/fields.js';
import { readInstitutions } from '../gd-ehr/site.js';
import { institutionPicker } from '../gd-ehr/institution.js';

export interface AuthorizeConfig {
  status?: string;
  idNumber?: string;
  patientName?: string;
  patientId?: string;
  consent?: false | { value?: string; accept?: string[] };
  authDays?: number;
  institution?: string;
}

const template = (description: string) => ({ type: 'string', description: `Template. ${description}` });

const plugin: PluginDefinition<AuthorizeConfig> = {
  name: 'gd-ehr-authorize',
  summary: 'Provincial authorization (授权接口): grant or withdraw the hospital’s access to the patient’s health record',
  kind: 'outbound',
  segments: [{
    name: 'ZCN',
    description: 'Consent to share the health record (授权同意)',
    fields: [
      { name: 'Consent given (Y/N)', datatype: 'ID' },
      { name: 'Authorization days', datatype: 'NM' },
      { name: 'Consent time', datatype: 'TS' },
      { name: 'Consent channel', datatype: 'ST' },
    ],
  }],
  siteKey: 'gdEhr',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      status: template('"1" grant, "0" withdraw (default "1")'),
      idNumber: template('Resident ID number, sent SM4-encrypted (default ${PID-3[5=NI|ID|SFZ].1})'),
      patientName: template('Patient name (default ${PID-5.1}${PID-5.2})'),
      patientId: template('In-hospital patient id, for the audit only (default ${PID-3[5=PI].1}, else ${PID-3.1})'),
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
      authDays: { type: 'integer', minimum: 1, maximum: 3650, description: 'Validity in days (default gdEhr.authDays, 30)' },
      institution: { type: 'string', minLength: 1, description: 'orgCode of the gdEhr institution to send under (default: the one whose senders list MSH-4)' },
    },
  },
  examples: [
    { title: 'Grant on registration with consent', yaml: 'plugin: gd-ehr-authorize\nas: auth\nconfig: { status: "1", consent: { value: "${ZCN-1}", accept: [Y] } }' },
    { title: 'Withdraw (no consent check)', yaml: 'plugin: gd-ehr-authorize\nconfig: { status: "0", consent: false }' },
  ],
  create(ctx, config) {
    const institutions = readInstitutions(ctx.site, ['authUrl', 'orgCode', 'orgName', 'appId', 'paasId', 'paasToken', 'sm4Key']);
    const picker = institutionPicker(institutions, config.institution, plugin.name);
    const status: Template = compileTemplate(config.status ?? '1');
    if (status.isConstant && !['0', '1'].includes(status.source)) throw gdEhrError('GDEHR_E_BAD_STATUS', { value: status.source.slice(0, 8) });
    const idNumber = fieldTemplate(config.idNumber, ID_NUMBER_DEFAULTS);
    const patientName = fieldTemplate(config.patientName, PATIENT_NAME_DEFAULTS);
    const patientId = fieldTemplate(config.patientId, PATIENT_ID_DEFAULTS);
    const consent = config.consent === false ? undefined : { value: compileTemplate(config.consent?.value ?? '${ZCN-1}'), accept: new Set(config.consent?.accept ?? ['Y']) };
    const authDays = config.authDays;

    return {
      admit(input) {
        picker.pick(input);
      },
      async process(input, call) {
        const site = picker.pick(input);
        const pid = patientId.render(input);
        const base = { route: call.route, plugin: plugin.name, operation: 'authorize', orgCode: site.orgCode, messageId: input.controlId, ...(pid ? { patientId: pid } : {}) };
        if (consent && !consent.accept.has(consent.value.render(input).trim())) {
          ctx.audit({ ...base, result: 'skipped', detail: 'no consent' });
          return { outcome: 'skipped', detail: 'no consent' };
        }
        const { st, r } = await auditedCall(ctx.audit, base, async () => {
          const st = status.render(input).trim();
          if (st !== '0' && st !== '1') throw gdEhrError('GDEHR_E_BAD_STATUS', { value: st.slice(0, 8) });
          const id = idNumber.render(input);
          if (!id) throw gdEhrError('GDEHR_E_NO_ID_NUMBER', { path: idNumber.source });
          const name = patientName.render(input);
          if (!name) throw gdEhrError('GDEHR_E_MISSING_PARAM', { field: 'patientName' });
          return { st, r: await authorize(ctx.http, site, { idNumber: id, patientName: name, status: st, authDays: authDays ?? site.authDays }, { idempotencyKey: call.idempotencyKey, signal: call.signal }) };
        }, { ok: ({ st, r }) => `status ${st} returnCode ${r.returnCode}` });
        call.log.info({ plugin: plugin.name, status: st, returnCode: r.returnCode, attempt: call.attempt }, 'authorization sent');
        return { outcome: 'ok', detail: st === '1' ? 'granted' : 'withdrawn', output: { returnCode: r.returnCode, returnDesc: r.returnDesc } };
      },
    };
  },
};

export default plugin;
