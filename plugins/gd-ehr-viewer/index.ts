/**
 * `gd-ehr-viewer` (调阅接口): builds the URL a doctor opens to read the
 * patient's provincial record. Local (no remote call): its output `{url}` is
 * usually returned to the HIS in a reply segment of an on-complete route.
 */
import { auditedCall, hbError, compileTemplate, type Template, type PluginDefinition } from '../../core/sdk.js';
import { gdEhrError } from '../gd-ehr/errors.js';
import {
  fieldTemplate,
  identityDocument,
  PATIENT_ID_DEFAULTS,
  PATIENT_NAME_DEFAULTS,
  STAFF_NAME_DEFAULTS,
  STAFF_NO_DEFAULTS,
} from '../gd-ehr/fields.js';
import { resolveCardType } from '../gd-ehr/endpoint.js';
import { readInstitutions } from '../gd-ehr/site.js';
import { institutionPicker } from '../gd-ehr/institution.js';
import { buildViewerUrl } from '../gd-ehr/viewer-url.js';

export interface ViewerConfig {
  staffNo?: string;
  staffName?: string;
  idcard?: string;
  cardType?: string;
  patientName?: string;
  patientId?: string;
  institution?: string;
}

const template = (description: string) => ({ type: 'string', description: `Template. ${description}` });

const plugin: PluginDefinition<ViewerConfig> = {
  name: 'gd-ehr-viewer',
  summary: 'Provincial viewer URL (调阅接口): SM4-encrypted link to the patient’s health record, output as vars.<as>.url',
  kind: 'local',
  segments: [{ name: 'ZVU', description: 'Health record viewer URL (调阅地址)', fields: [{ name: 'Viewer URL', datatype: 'ST' }] }],
  siteKey: 'gdEhr',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      staffNo: template('Doctor’s login account in the calling system (default ${PV1-7.1})'),
      staffName: template('Doctor’s name (default ${PV1-7.2}${PV1-7.3})'),
      idcard: template('Identity document number (default: the PID-3 repetition whose type maps to 01, else to any card type); set cardType with it'),
      cardType: template('Card type code 01-08/99, or an identifier type looked up in gdEhr.cardTypes (default: from the PID-3 type of idcard)'),
      patientName: template('Patient name (default ${PID-5.1}${PID-5.2})'),
      patientId: template('In-hospital patient id (default ${PID-3[5=PI].1}, else ${PID-3.1})'),
      institution: { type: 'string', minLength: 1, description: 'orgCode of the gdEhr institution (default: the one whose senders list MSH-4)' },
    },
  },
  examples: [{ title: 'URL for the HIS in a ZVU reply segment', yaml: 'plugin: gd-ehr-viewer\nas: viewer\nconfig: { staffNo: "${PV1-7.1}" }' }],
  create(ctx, config) {
    const picker = institutionPicker(readInstitutions(ctx.site, ['viewerUrl', 'orgCode', 'callSysCode', 'appId', 'sm4Key']), config.institution, plugin.name);
    if (config.idcard !== undefined && config.cardType === undefined) {
      throw hbError('ROUTE_E_PLUGIN_CONFIG', { name: plugin.name, detail: 'idcard is set, so cardType must be set too' });
    }
    const staffNo = fieldTemplate(config.staffNo, STAFF_NO_DEFAULTS);
    const staffName = fieldTemplate(config.staffName, STAFF_NAME_DEFAULTS);
    const patientName = fieldTemplate(config.patientName, PATIENT_NAME_DEFAULTS);
    const patientId = fieldTemplate(config.patientId, PATIENT_ID_DEFAULTS);
    const idcard: Template | undefined = config.idcard !== undefined ? compileTemplate(config.idcard) : undefined;
    const cardType: Template | undefined = config.cardType !== undefined ? compileTemplate(config.cardType) : undefined;

    return {
      admit(input) {
        picker.pick(input);
      },
      async process(input, call) {
        const site = picker.pick(input);
        const pid = patientId.render(input);
        const staff = staffNo.render(input);
        const base = { route: call.route, plugin: plugin.name, operation: 'viewer-url', orgCode: site.orgCode, messageId: input.controlId, ...(pid ? { patientId: pid } : {}), ...(staff ? { staffNo: staff } : {}) };
        const url = await auditedCall(ctx.audit, base, async () => {
          let doc = idcard ? { idcard: idcard.render(input).trim(), cardType: '' } : identityDocument(input, site.cardTypes);
          if (!doc || !doc.idcard) throw gdEhrError('GDEHR_E_MISSING_PARAM', { field: 'idcard' });
          if (cardType) doc = { ...doc, cardType: resolveCardType(cardType.render(input).trim(), site.cardTypes) ?? '' };
          return buildViewerUrl({
            viewerUrl: site.viewerUrl,
            appId: site.appId,
            sm4Key: site.sm4Key,
            fields: {
              orgCode: site.orgCode,
              staffNo: staff,
              staffName: staffName.render(input),
              cardType: doc.cardType,
              idcard: doc.idcard,
              patientName: patientName.render(input),
              patientId: pid,
              callSysCode: site.callSysCode,
            },
          });
        });
        return { outcome: 'ok', output: { url } };
      },
    };
  },
};

export default plugin;
