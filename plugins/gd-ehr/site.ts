/**
 * The `gdEhr:` section of hisbridge.yaml: parameters the province issues to
 * each connected system (seed 000 §9.1), the card-type table, and the
 * embedded defaults that point at the simulator.
 */
import { hbError, type JsonSchema } from '../../core/sdk.js';
import { indexInstitutions, institutionProblems as sharedInstitutionProblems, mergedProfiles, profilesOf, sendersOf, type InstitutionProfile, type Institutions } from '../shared/institutions.js';

/** The section after defaults. Secrets (paasToken, sm4Key) come from `${env:}` and are never logged. */
export interface GdEhrSite {
  authUrl: string;
  viewerUrl: string;
  orgCode: string;
  orgName: string;
  callSysCode: string;
  appId: string;
  paasId: string;
  paasToken: string;
  sm4Key: string;
  timeoutMs: number;
  authDays: number;
  /** HL7 identifier type (PID-3.5) → card type code (appendix 4). */
  cardTypes: Record<string, string>;
}

/** Production endpoints from the guide (seed 000 §9.2.1, §9.3.1); used when the simulators are off. */
export const PROVINCE_AUTH_URL = 'https://yyzc.gd.gov.cn/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save';
export const PROVINCE_VIEWER_URL = 'https://qmjk.gd.gov.cn/gdehr/privilege/getPrivilege';
export const AUTH_PATH = '/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save';
export const VIEWER_PATH = '/gdehr/privilege/getPrivilege';

/** Card type codes of appendix 4. */
export const CARD_TYPE_CODES = ['01', '02', '03', '04', '05', '06', '07', '08', '99'] as const;

/**
 * Default identifier type → card type. HL7 table 0203 codes where one exists
 * (NI national id, PPN passport, DL driving licence), and the local codes
 * Chinese HIS commonly send: ID/SFZ 身份证, HKB 户口本, JZ/MIL 军官证/士兵证,
 * HKM 港澳通行证, TW 台湾通行证, HKMTID 港澳台居民身份证. Anything else → 99.
 */
export const DEFAULT_CARD_TYPES: Readonly<Record<string, string>> = Object.freeze({
  NI: '01',
  ID: '01',
  SFZ: '01',
  HKB: '02',
  PPN: '03',
  JZ: '04',
  MIL: '04',
  DL: '05',
  HKM: '06',
  TW: '07',
  HKMTID: '08',
});

/** Demo values for the simulator only: they open nothing at the province. */
export const DEMO_SITE = Object.freeze({
  orgCode: 'DEMO00001',
  orgName: '演示医院(demo)',
  callSysCode: 'demosys',
  appId: 'demo-app-0001',
  paasId: 'demo-paasid',
  paasToken: 'demo-paastoken-not-a-secret',
  /** DEMO SM4 key: public, for the simulator only. Never use it against the province. */
  sm4Key: '0123456789abcdeffedcba9876543210',
});

const str = (description: string) => ({ type: 'string', minLength: 1, description });

export const gdEhrSiteSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    authUrl: { ...str('Authorization endpoint (授权接口, codeAuthRec/save)'), pattern: '^https?://' },
    viewerUrl: { ...str('Viewer endpoint (调阅接口, getPrivilege)'), pattern: '^https?://' },
    orgCode: str('Institution code issued by the province'),
    orgName: str('Institution name issued by the province'),
    callSysCode: str('Integrator code (集成方代码) issued by the province'),
    appId: str('Application id issued by the province'),
    paasId: str('Gateway paasid issued by the province'),
    paasToken: str('Gateway paastoken: a secret, use ${env:NAME}'),
    sm4Key: { type: 'string', pattern: '^[0-9a-fA-F]{32}$', description: 'SM4 key, 32 hex characters: a secret, use ${env:NAME}' },
    timeoutMs: { type: 'integer', minimum: 100, maximum: 120000, description: 'Per-call timeout (default 10000)' },
    authDays: { type: 'integer', minimum: 1, maximum: 3650, description: 'Authorization validity in days (default 30, the guide’s fixed value)' },
    cardTypes: {
      type: 'object',
      additionalProperties: { enum: [...CARD_TYPE_CODES] },
      description: 'Identifier type (PID-3.5) → card type code; merged over the defaults (NI/ID/SFZ→01, HKB→02, PPN→03, JZ/MIL→04, DL→05, HKM→06, TW→07, HKMTID→08, else 99)',
    },
    institutions: {
      type: 'array',
      minItems: 1,
      description: 'Several institutions (hospital groups): one profile each, picked by MSH-4 in `senders` or by a step’s `institution:`. With this list the single set above (orgCode, appId...) is not used',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['orgCode', 'orgName', 'appId', 'paasId', 'paasToken', 'sm4Key', 'callSysCode', 'senders'],
        properties: {
          orgCode: str('Institution code issued by the province'),
          orgName: str('Institution name issued by the province'),
          appId: str('Application id issued by the province'),
          paasId: str('Gateway paasid issued by the province'),
          paasToken: str('Gateway paastoken: a secret, use ${env:NAME}'),
          sm4Key: { type: 'string', pattern: '^[0-9a-fA-F]{32}$', description: 'SM4 key, 32 hex characters: a secret, use ${env:NAME}' },
          callSysCode: str('Integrator code (集成方代码) issued by the province'),
          senders: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Sending facilities (MSH-4, or its first component) whose messages go out under this institution' },
          authUrl: { ...str('Overrides gdEhr.authUrl for this institution'), pattern: '^https?://' },
          viewerUrl: { ...str('Overrides gdEhr.viewerUrl for this institution'), pattern: '^https?://' },
        },
      },
    },
  },
};

/** Embedded defaults: with a simulator URL, a complete demo site; without, the production URLs and no credentials. */
export function gdEhrDefaults(opts: { simulatorUrl?: string }): Record<string, unknown> {
  const common = { timeoutMs: 10_000, authDays: 30 };
  if (opts.simulatorUrl) {
    const base = opts.simulatorUrl.replace(/\/+$/, '');
    return { ...common, authUrl: base + AUTH_PATH, viewerUrl: base + VIEWER_PATH, ...DEMO_SITE };
  }
  return { ...common, authUrl: PROVINCE_AUTH_URL, viewerUrl: PROVINCE_VIEWER_URL };
}

const REQUIRED = ['authUrl', 'viewerUrl', 'orgCode', 'orgName', 'callSysCode', 'appId', 'paasId', 'paasToken', 'sm4Key'] as const;

/**
 * Reads the (validated) section and checks that the keys `needed` are set;
 * CONFIG_E_SITE_MISSING names the first missing one (never its value).
 */
export function readSite(section: Record<string, unknown>, needed: readonly (typeof REQUIRED)[number][] = REQUIRED): GdEhrSite {
  const s = (k: string): string => (typeof section[k] === 'string' ? (section[k] as string) : '');
  for (const k of needed) if (!s(k)) throw hbError('CONFIG_E_SITE_MISSING', { section: 'gdEhr', key: k });
  const key = s('sm4Key');
  if (key && !/^[0-9a-fA-F]{32}$/.test(key)) throw hbError('CRYPTO_E_BAD_KEY');
  return {
    authUrl: s('authUrl'),
    viewerUrl: s('viewerUrl'),
    orgCode: s('orgCode'),
    orgName: s('orgName'),
    callSysCode: s('callSysCode'),
    appId: s('appId'),
    paasId: s('paasId'),
    paasToken: s('paasToken'),
    sm4Key: key,
    timeoutMs: typeof section.timeoutMs === 'number' ? section.timeoutMs : 10_000,
    authDays: typeof section.authDays === 'number' ? section.authDays : 30,
    cardTypes: { ...DEFAULT_CARD_TYPES, ...((section.cardTypes as Record<string, string> | undefined) ?? {}) },
  };
}

/** The keys of one institution's credential set. */
const CREDENTIAL_KEYS = ['orgCode', 'orgName', 'callSysCode', 'appId', 'paasId', 'paasToken', 'sm4Key'] as const;
/** The keys the profiles share (each may override them). */
const SHARED_KEYS = ['authUrl', 'viewerUrl', 'timeoutMs', 'authDays', 'cardTypes'] as const;

/** One institution: a complete site (shared keys merged under the profile) and the MSH-4 values it sends under. */
export interface GdEhrInstitution extends GdEhrSite, InstitutionProfile {}

/** The institutions of a `gdEhr` section, looked up by orgCode or by sending facility. */
export type GdEhrInstitutions = Institutions<GdEhrInstitution>;

/**
 * Reads the institutions of a (validated) section. Without `institutions`
 * the single set is one implicit institution matching every sender. With it,
 * only the profiles count: the shared keys (authUrl, viewerUrl, timeoutMs,
 * authDays, cardTypes) are merged under each profile, and a profile's own
 * authUrl/viewerUrl win. CONFIG_E_SITE_MISSING names the first missing key.
 */
export function readInstitutions(section: Record<string, unknown>, needed: readonly (typeof REQUIRED)[number][] = REQUIRED): GdEhrInstitutions {
  if (!profilesOf(section)) return indexInstitutions([{ ...readSite(section, needed), senders: [] }], true);
  const list = mergedProfiles(section, SHARED_KEYS).map(({ merged, profile, index }) => {
    for (const k of needed) if (typeof merged[k] !== 'string' || !merged[k]) throw hbError('CONFIG_E_SITE_MISSING', { section: `gdEhr.institutions[${index}]`, key: k });
    return { ...readSite(merged, needed), senders: sendersOf(profile) };
  });
  return indexInstitutions(list, false);
}

/**
 * Problems the schema cannot express, each with the path (inside the
 * section) it is reported at: a duplicate orgCode, a sender listed by two
 * institutions, and the single set's credentials written beside a list.
 */
export function institutionProblems(section: Readonly<Record<string, unknown>>): { path: (string | number)[]; message: string }[] {
  return sharedInstitutionProblems('gdEhr', CREDENTIAL_KEYS, section);
}

/** Card type for an identifier type via the site table; unknown or empty → 99. */
export function cardTypeFor(identifierType: string, table: Readonly<Record<string, string>>): string {
  return table[identifierType.trim().toUpperCase()] ?? table[identifierType.trim()] ?? '99';
}
