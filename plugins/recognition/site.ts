/**
 * The `recognition:` section of hisbridge.yaml. The platform's interface
 * document is not in hand (SPEC §3), so every endpoint path, every field name
 * and the response envelope are configuration; the defaults equal the
 * contract of our simulator (simulator.ts), so a site remaps without code.
 */
import { hbError, type JsonSchema } from '../../core/sdk.js';
import { indexInstitutions, institutionProblems, mergedProfiles, profilesOf, sendersOf, type InstitutionProfile, type Institutions } from '../shared/institutions.js';

/** Operations of the platform, each with its own path. */
export const OPERATIONS = [
  'token', 'patient', 'department', 'staff',
  'labReport', 'labPdf', 'labRevoke', 'examReport', 'examPdf', 'examRevoke',
  'list', 'precise', 'prescriptionCheck', 'decision', 'download',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Default paths: the simulator's contract. */
export const DEFAULT_PATHS: Readonly<Record<Operation, string>> = Object.freeze({
  token: '/api/auth/token',
  patient: '/api/his/patient',
  department: '/api/his/department',
  staff: '/api/his/staff',
  labReport: '/api/lab/report',
  labPdf: '/api/lab/report/pdf',
  labRevoke: '/api/lab/report/revoke',
  examReport: '/api/exam/report',
  examPdf: '/api/exam/report/pdf',
  examRevoke: '/api/exam/report/revoke',
  list: '/api/recognition/list',
  precise: '/api/recognition/precise',
  prescriptionCheck: '/api/recognition/prescription-check',
  decision: '/api/recognition/decision',
  download: '/api/recognition/report/download',
});

/** How answers are wrapped: `{code, message, data}` with code "0" = success by default. */
export interface ResponseEnvelope {
  codeField: string;
  messageField: string;
  dataField: string;
  successCodes: string[];
  /** Business codes meaning "no such report" (a revoke of an unknown report). */
  unknownReportCodes: string[];
  /** Business codes meaning "no such patient". */
  unknownPatientCodes: string[];
}

export interface RecognitionSite {
  baseUrl: string;
  username: string;
  password: string;
  orgCode: string;
  orgName: string;
  timeoutMs: number;
  /** Token reused until this many ms before its expiry. */
  tokenSkewMs: number;
  /** Request header carrying the token, and its scheme prefix ('' = bare token). */
  tokenHeader: string;
  tokenScheme: string;
  paths: Record<Operation, string>;
  /** Our canonical field name → the platform's name; applied to requests and (inverted) to answers. */
  fields: Record<string, string>;
  response: ResponseEnvelope;
  /** How a corrected report (OBR-25 = C) reaches the platform. */
  correction: 'revoke-then-upload' | 'replace';
  /** Link shown to doctors for the patient's recognizable results (`{patientId}` is replaced); empty = the platform's answer. */
  listUrl: string;
  /** Hospital-side sensitive codes added to the default list (sensitive.ts). */
  sensitiveCodes: string[];
}

export const DEFAULT_RESPONSE: Readonly<ResponseEnvelope> = Object.freeze({
  codeField: 'code',
  messageField: 'message',
  dataField: 'data',
  successCodes: ['0'],
  unknownReportCodes: ['2004'],
  unknownPatientCodes: ['2001'],
});

/** Demo values for the simulator only: they open nothing at the real platform. */
export const DEMO_SITE = Object.freeze({
  username: 'demo-hospital',
  password: 'demo-password-not-a-secret',
  orgCode: 'H4413020001',
  orgName: '示例市第一人民医院(demo)',
});

const str = (description: string) => ({ type: 'string', minLength: 1, description });
const codes = (description: string) => ({ type: 'array', items: { type: 'string' }, description });

export const recognitionSiteSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    baseUrl: { ...str('Base URL of the platform (检查检验互认共享平台)'), pattern: '^https?://' },
    username: str('Account issued by the platform'),
    password: str('Password: a secret, use ${env:NAME}'),
    orgCode: str('Institution code registered at the platform'),
    orgName: str('Institution name registered at the platform'),
    timeoutMs: { type: 'integer', minimum: 100, maximum: 120000, description: 'Per-call timeout (default 10000)' },
    tokenSkewMs: { type: 'integer', minimum: 0, description: 'Refresh the token this long before it expires (default 30000)' },
    tokenHeader: str('Header carrying the token (default Authorization)'),
    tokenScheme: { type: 'string', description: 'Prefix before the token (default "Bearer"; "" sends the bare token)' },
    paths: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(OPERATIONS.map((op) => [op, { type: 'string', pattern: '^/', description: `Path of ${op} (default ${DEFAULT_PATHS[op]})` }])),
      description: 'Endpoint path per operation, relative to baseUrl',
    },
    fields: {
      type: 'object',
      additionalProperties: { type: 'string', minLength: 1 },
      description: 'Canonical field name → platform field name (e.g. patientId: brid); applied at every depth',
    },
    response: {
      type: 'object',
      additionalProperties: false,
      properties: {
        codeField: { type: 'string', minLength: 1 },
        messageField: { type: 'string', minLength: 1 },
        dataField: { type: 'string' },
        successCodes: codes('Business codes meaning success (default ["0"])'),
        unknownReportCodes: codes('Business codes meaning "report not found" (default ["2004"])'),
        unknownPatientCodes: codes('Business codes meaning "patient not found" (default ["2001"])'),
      },
    },
    correction: { enum: ['revoke-then-upload', 'replace'], description: 'Corrected reports: revoke then upload (default) or upload over the old one' },
    listUrl: { type: 'string', description: 'Link for the workstation icon; {patientId} is replaced. Empty: the URL the platform returns' },
    sensitiveCodes: codes('Extra item or diagnosis codes never sent to the platform (sensitive-guard)'),
    institutions: {
      type: 'array',
      minItems: 1,
      description: 'Several institutions (hospital groups): one platform account each, picked by MSH-4 in `senders` or by a step’s `institution:`. With this list the single account above (username, password, orgCode, orgName) is not used',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['orgCode', 'username', 'password', 'senders'],
        properties: {
          orgCode: str('Institution code registered at the platform'),
          orgName: str('Institution name registered at the platform (default: orgCode)'),
          username: str('Account issued by the platform to this institution'),
          password: str('Password of this account: a secret, use ${env:NAME}'),
          senders: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Sending facilities (MSH-4, or its first component) whose messages go out under this institution' },
          baseUrl: { ...str('Overrides recognition.baseUrl for this institution'), pattern: '^https?://' },
          listUrl: { type: 'string', description: 'Overrides recognition.listUrl for this institution' },
        },
      },
    },
  },
};

/** Embedded defaults: with a simulator, a complete demo site; without, nothing that could reach a real platform. */
export function recognitionDefaults(opts: { simulatorUrl?: string }): Record<string, unknown> {
  const common = { timeoutMs: 10_000, tokenSkewMs: 30_000, tokenHeader: 'Authorization', tokenScheme: 'Bearer', correction: 'revoke-then-upload' };
  if (opts.simulatorUrl) return { ...common, baseUrl: opts.simulatorUrl.replace(/\/+$/, ''), ...DEMO_SITE };
  return common;
}

const REQUIRED = ['baseUrl', 'username', 'password', 'orgCode'] as const;

/** Reads the (validated) section; CONFIG_E_SITE_MISSING names the first missing key, never a value. */
export function readRecognitionSite(section: Record<string, unknown>): RecognitionSite {
  const s = (k: string, d = ''): string => (typeof section[k] === 'string' ? (section[k] as string) : d);
  for (const k of REQUIRED) if (!s(k)) throw hbError('CONFIG_E_SITE_MISSING', { section: 'recognition', key: k });
  const num = (k: string, d: number): number => (typeof section[k] === 'number' ? (section[k] as number) : d);
  const resp = (section.response ?? {}) as Partial<ResponseEnvelope>;
  return {
    baseUrl: s('baseUrl').replace(/\/+$/, ''),
    username: s('username'),
    password: s('password'),
    orgCode: s('orgCode'),
    orgName: s('orgName', s('orgCode')),
    timeoutMs: num('timeoutMs', 10_000),
    tokenSkewMs: num('tokenSkewMs', 30_000),
    tokenHeader: s('tokenHeader', 'Authorization'),
    tokenScheme: typeof section.tokenScheme === 'string' ? section.tokenScheme : 'Bearer',
    paths: { ...DEFAULT_PATHS, ...((section.paths as Partial<Record<Operation, string>> | undefined) ?? {}) },
    fields: { ...((section.fields as Record<string, string> | undefined) ?? {}) },
    response: { ...DEFAULT_RESPONSE, ...resp },
    correction: section.correction === 'replace' ? 'replace' : 'revoke-then-upload',
    listUrl: s('listUrl'),
    sensitiveCodes: Array.isArray(section.sensitiveCodes) ? (section.sensitiveCodes as string[]) : [],
  };
}

/** The keys of one institution's account. */
const CREDENTIAL_KEYS = ['username', 'password', 'orgCode', 'orgName'] as const;

/** One institution: a complete site (the shared keys merged under its profile) and the MSH-4 values it sends under. */
export interface RecognitionInstitution extends RecognitionSite, InstitutionProfile {}

export type RecognitionInstitutions = Institutions<RecognitionInstitution>;

/**
 * Reads the institutions of a (validated) section. Without `institutions`
 * the single account is one implicit institution matching every sender. With
 * it, only the profiles count: every other key of the section (baseUrl,
 * paths, fields, response...) is shared and merged under each profile, and a
 * profile's own baseUrl/listUrl win. CONFIG_E_SITE_MISSING names the first
 * missing key.
 */
export function readRecognitionInstitutions(section: Record<string, unknown>): RecognitionInstitutions {
  if (!profilesOf(section)) return indexInstitutions([{ ...readRecognitionSite(section), senders: [] }], true);
  const shared = Object.keys(section).filter((k) => k !== 'institutions' && !(CREDENTIAL_KEYS as readonly string[]).includes(k));
  const list = mergedProfiles(section, shared).map(({ merged, profile, index }) => {
    for (const k of REQUIRED) if (typeof merged[k] !== 'string' || !merged[k]) throw hbError('CONFIG_E_SITE_MISSING', { section: `recognition.institutions[${index}]`, key: k });
    return { ...readRecognitionSite(merged), senders: sendersOf(profile) };
  });
  return indexInstitutions(list, false);
}

/** A duplicate orgCode, a sender listed by two institutions, the single account written beside a list. */
export function recognitionInstitutionProblems(section: Readonly<Record<string, unknown>>): { path: (string | number)[]; message: string }[] {
  return institutionProblems('recognition', CREDENTIAL_KEYS, section);
}

/**
 * Renames object keys at every depth (arrays included). Used with the site's
 * `fields` map on the way out and with its inverse on the way in.
 */
export function renameKeys(value: unknown, map: Readonly<Record<string, string>>): unknown {
  if (Array.isArray(value)) return value.map((v) => renameKeys(v, map));
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[map[k] ?? k] = renameKeys(v, map);
    return out;
  }
  return value;
}

/** The inverse of a field map (platform name → canonical name). */
export function invertFields(map: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [v, k]));
}
