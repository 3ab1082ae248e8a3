/**
 * The core sections of hisbridge.yaml that belong to a core module rather
 * than to the loader itself (issue 14): `api` (core/http/api-auth.ts),
 * `kafka` (core/kafka/config.ts), `console` (core/ops/console) and `alerts`
 * (core/alerts/config.ts). Each entry
 * gives its JSON Schema, how to read the written value (defaults applied),
 * and the checks the schema cannot express. config/site.ts is generic over
 * this table: it adds each schema to the site schema, and parses and checks
 * each section in table order. A new core section is one entry here and one
 * field in `CoreSectionValues`.
 */
import type { JsonSchema } from '../sdk.js';
import { kafkaConfigProblems, kafkaSchema, parseKafkaConfig, type KafkaConfig } from '../kafka/config.js';
import { consoleSchema, parseConsoleConfig } from '../ops/console/config.js';
import type { ConsoleConfig } from '../ops/console/auth.js';
import { apiConfigProblems, apiSchema, parseApiConfig, type ApiConfig } from '../http/api-auth.js';
import { alertsSchema, parseAlertsConfig, type AlertsConfig } from '../alerts/config.js';
import type { SourcePos } from './yaml-source.js';

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What a section's parse and checks may know about the rest of the file. */
export interface SectionContext {
  /** The listener names (after defaults). */
  listenerNames: readonly string[];
  /** True when `http.tls` is set (HTTPS). */
  httpTls: boolean;
  /** The file:line:col of a path in the file (the value, or its key with `atKey`), for a section that reports its own errors as LoadError. */
  at(path: (string | number)[], atKey?: boolean): SourcePos;
}

/** The parsed core sections, as SiteConfig carries them. */
export interface CoreSectionValues {
  /** The `api:` section (core/http/api-auth.ts): who may call /api/*. */
  api: ApiConfig;
  /** The `kafka:` section (connection, group, topics read as sources); absent when not configured. */
  kafka?: KafkaConfig;
  /** The `console:` section (core/ops/console/config.ts); defaults applied. */
  console?: ConsoleConfig;
  /** The `alerts:` section (core/alerts/config.ts); absent when not configured. */
  alerts?: AlertsConfig;
}

export interface CoreSection<K extends keyof CoreSectionValues = keyof CoreSectionValues> {
  readonly key: K;
  readonly schema: JsonSchema;
  /** The written value (undefined when the key is absent) with defaults applied; undefined leaves the key out of SiteConfig. */
  parse(raw: Raw | undefined, ctx: SectionContext): CoreSectionValues[K] | undefined;
  /** Problems the schema cannot catch, as messages; reported at the top of the file (line 1, column 1). */
  problems?(value: NonNullable<CoreSectionValues[K]>, ctx: SectionContext): string[];
}

function section<K extends keyof CoreSectionValues>(s: CoreSection<K>): CoreSection<K> {
  return s;
}

/** The core sections, in the order they appear in the schema and are checked. */
export const CORE_SECTIONS: readonly CoreSection[] = [
  section({
    key: 'api',
    schema: apiSchema as unknown as JsonSchema,
    parse: (raw) => parseApiConfig(raw),
    problems: (api) => apiConfigProblems(api),
  }),
  section({
    key: 'kafka',
    schema: kafkaSchema as unknown as JsonSchema,
    parse: (raw) => parseKafkaConfig(raw),
    problems: (kafka, ctx) => kafkaConfigProblems(kafka, ctx.listenerNames),
  }),
  section({
    key: 'console',
    schema: consoleSchema as unknown as JsonSchema,
    parse: (raw, ctx) => ({ ...parseConsoleConfig(raw), ...(ctx.httpTls ? { secureCookie: true } : {}) }),
  }),
  section({
    key: 'alerts',
    schema: alertsSchema as unknown as JsonSchema,
    // Reports its own problems at their file:line:col (LoadError).
    parse: (raw, ctx) => parseAlertsConfig(raw, (p, atKey) => ctx.at(['alerts', ...p], atKey)),
  }),
] as readonly CoreSection[];

/** The core sections' schemas by key, for the site schema. */
export function coreSectionSchemas(): Record<string, JsonSchema> {
  return Object.fromEntries(CORE_SECTIONS.map((s) => [s.key, s.schema]));
}
