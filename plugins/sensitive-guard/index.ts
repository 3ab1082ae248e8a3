/**
 * `sensitive-guard`: a local step any route can put before an outbound one.
 * Records whose diagnosis or item codes are on the sensitive list (default
 * from seed 002: ICD-10 F20-F29, F30-F31, A15-A19, B20-B24, Z21; plus the
 * step's `codes` and the site's `recognition.sensitiveCodes`), or carry a
 * sensitive combination of codes (default: F06 with G40, F70-F79 with a
 * psychotic code; plus the step's `combinations`) are withheld
 * (the route stops for this message: outcome skipped, "withheld: sensitive")
 * or marked for masking (`mask: true` in the output, read by
 * recognition-upload). Never silent: every hit is audited and counted.
 */
import { hbError, type PluginDefinition, type StepInput } from '../../core/sdk.js';
import { readRecognitionInstitutions, type RecognitionInstitution } from '../recognition/site.js';
import { institutionPicker, type InstitutionPicker } from '../shared/institutions.js';
import { compileSensitiveList, DEFAULT_CODE_FIELDS, DEFAULT_SENSITIVE_CODES, DEFAULT_SENSITIVE_COMBINATIONS, type SensitiveCombination } from '../recognition/sensitive.js';

export interface SensitiveGuardConfig {
  action?: 'withhold' | 'mask';
  /** Extra entries (ICD-10 ranges `F20-F29`, categories `Z21`, prefixes `HIV*`, exact test codes). */
  codes?: string[];
  /** Records sensitive only as a combination of codes (e.g. F06 with G40); added to the default combinations. */
  combinations?: SensitiveCombination[];
  /** Replace the default list and the default combinations instead of extending them (default false). */
  replaceDefaults?: boolean;
  /** Where codes are read, as `SEG-F` (default DG1-3, OBR-31, OBR-4, OBX-3). */
  fields?: string[];
  /** orgCode of the recognition institution its audit rows count under (default: the one whose senders list MSH-4). */
  institution?: string;
}

/**
 * The institution a hit is counted under (audit orgCode), from
 * `recognition.institutions` as recognition-upload picks it. The guard never
 * refuses a message for it (the upload step does) and works without a
 * complete recognition section: then its rows carry no orgCode.
 */
function institutionOf(site: Readonly<Record<string, unknown>>, fixed: string | undefined): InstitutionPicker<RecognitionInstitution> | undefined {
  let all;
  try {
    all = readRecognitionInstitutions({ ...site });
  } catch {
    if (fixed !== undefined) throw hbError('ROUTE_E_PLUGIN_CONFIG', { name: 'sensitive-guard', detail: 'institution: needs a complete recognition section' });
    return undefined;
  }
  return institutionPicker(all, fixed, { pluginName: 'sensitive-guard', sectionName: 'recognition', noInstitution: () => new Error('no institution') });
}

function orgCodeOf(picker: InstitutionPicker<RecognitionInstitution> | undefined, input: StepInput): { orgCode?: string } {
  if (!picker) return {};
  try {
    return { orgCode: picker.pick(input).orgCode };
  } catch {
    return {};
  }
}

const plugin: PluginDefinition<SensitiveGuardConfig> = {
  name: 'sensitive-guard',
  summary: 'Withhold or mask records with sensitive diagnoses or test codes (mental disorders, TB, HIV) before they leave the hospital',
  kind: 'local',
  siteKey: 'recognition',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      action: { enum: ['withhold', 'mask'], description: 'withhold (default): stop the route for this message; mask: let recognition-upload mask it' },
      codes: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Extra sensitive codes: ICD-10 range F20-F29, category Z21, prefix HIV*, or an exact item code' },
      combinations: {
        type: 'array',
        description: 'Records sensitive only as a combination: every condition of all must be matched by a code of the record (a condition is an entry, or a list of entries of which any matches). Added to the defaults (F06 with G40; F70-F79 with a psychotic code)',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['all'],
          properties: {
            name: { type: 'string', minLength: 1, description: 'What the combination is, e.g. "psychotic disorder with epilepsy"' },
            all: {
              type: 'array',
              minItems: 2,
              items: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }] },
              description: 'Conditions, all required: "F06", "G40*", or a list such as ["F20-F29", "F06.0-F06.2"] (any of)',
            },
          },
        },
      },
      replaceDefaults: { type: 'boolean', description: `Use only codes and combinations (default false: ${DEFAULT_SENSITIVE_CODES.join(', ')} and the combinations F06 + G40, F70-F79 + a psychotic code are always included)` },
      fields: { type: 'array', items: { type: 'string', pattern: '^[A-Z][A-Z0-9]{2}-[1-9][0-9]*$' }, minItems: 1, description: 'Fields holding codes, e.g. DG1-3 (default DG1-3, OBR-31, OBR-4, OBX-3)' },
      institution: { type: 'string', minLength: 1, description: 'orgCode of the recognition institution its audit rows count under (default: the one whose senders list MSH-4)' },
    },
  },
  examples: [
    { title: 'Keep TB/HIV/psychiatric reports in the hospital', yaml: 'plugin: sensitive-guard\nas: sensitive\nconfig: { codes: [LAB0402, "HIV*"] }' },
    { title: 'Send them masked', yaml: 'plugin: sensitive-guard\nas: sensitive\nconfig: { action: mask }' },
  ],
  create(ctx, config) {
    const orgOf = institutionOf(ctx.site, config.institution);
    const siteCodes = Array.isArray(ctx.site.sensitiveCodes) ? (ctx.site.sensitiveCodes as string[]) : [];
    const entries = [...(config.replaceDefaults ? [] : DEFAULT_SENSITIVE_CODES), ...(config.codes ?? []), ...siteCodes];
    const combinations = [...(config.replaceDefaults ? [] : DEFAULT_SENSITIVE_COMBINATIONS), ...(config.combinations ?? [])];
    if (entries.length === 0 && combinations.length === 0) throw new Error('the sensitive list is empty (replaceDefaults without codes)');
    const list = compileSensitiveList(entries, combinations);
    const fields = config.fields?.map((f) => ({ segment: f.slice(0, 3), field: Number(f.slice(4)) })) ?? DEFAULT_CODE_FIELDS;
    const action = config.action ?? 'withhold';

    return {
      async process(input, call) {
        const msg = input.hl7;
        if (!msg) return { outcome: 'ok', output: { sensitive: false, mask: false } };
        // A report withheld once stays withheld: its correction or cancellation may carry no sensitive code (no DG1).
        const reportId = msg.get('OBR-3.1') || msg.get('TXA-15.1') || msg.get('TXA-12.1');
        const reportKey = reportId ? `report:${reportId}` : '';
        const hits = await list.scanYielding(msg, fields);
        const known = hits.length === 0 && reportKey ? await ctx.state.get<string>(reportKey) : undefined;
        if (hits.length === 0 && !known) return { outcome: 'ok', output: { sensitive: false, mask: false } };
        if (reportKey && !known) await ctx.state.set(reportKey, action);
        const counter = `count:${action}`;
        const count = ((await ctx.state.get<number>(counter)) ?? 0) + 1;
        await ctx.state.set(counter, count);
        // The audit row says that and why in general terms; the codes themselves stay out of logs and audit text.
        ctx.audit({
          route: call.route,
          plugin: 'sensitive-guard',
          operation: action,
          result: action === 'withhold' ? 'skipped' : 'ok',
          messageId: input.controlId,
          ...orgCodeOf(orgOf, input),
          patientId: msg.get('PID-3[5=PI].1') || msg.get('PID-3.1'),
          detail: `${action === 'withhold' ? 'withheld' : 'masked'}: sensitive (${known ? 'report withheld before' : `${hits.length} code${hits.length > 1 ? 's' : ''}`})`,
        });
        call.log.info({ route: call.route, controlId: input.controlId, action, codes: hits.length }, 'sensitive record');
        if (action === 'mask') return { outcome: 'ok', detail: 'masked: sensitive', output: { sensitive: true, mask: true, codes: hits.length } };
        return { outcome: 'skipped', detail: 'withheld: sensitive', output: { stop: true, sensitive: true, mask: false, codes: hits.length, withheldTotal: count } };
      },
    };
  },
};

export default plugin;
