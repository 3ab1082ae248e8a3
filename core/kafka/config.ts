/**
 * The `kafka:` section of hisbridge.yaml: the connection (brokers, TLS, SASL)
 * shared by the Kafka source and the kafka-publish plugin, the consumer group
 * and the topics read as sources. Kept apart from core/config/site.ts so the
 * site loader only gains one schema entry and one parse call, and so nothing
 * here loads kafkajs.
 */
import { durationSchema, parseDuration } from '../config/duration.js';

export type KafkaFormat = 'hl7' | 'json';

/** One topic read as a source. */
export interface KafkaTopicConfig {
  name: string;
  /** Source name routes use in `sources:` (several topics may share one). */
  source: string;
  /** hl7: the record value is one HL7 v2 message; json: a kafka-event envelope (schemas/kafka-event.schema.json). */
  format: KafkaFormat;
  /** Charset of HL7 values that leave MSH-18 empty (hl7 format only). */
  charset: string;
  /** Where records that cannot be handled go (default `<name>.dlq`). */
  dlqTopic: string;
  /** Answer for a record no route accepts: AA commits it, AR sends it to the dead-letter topic. */
  noRoute: 'AA' | 'AR';
  /** Bytes invalid in the value's charset: dead-letter the record (reject, default) or keep them as U+FFFD and mark the message (replace). */
  invalidBytes: 'reject' | 'replace';
  /** A record holding several messages or a batch: each message processed on its own (split, default), or dead-lettered whole (reject). */
  multiMessageBlocks: 'split' | 'reject';
  /** json format: largest record value taken; a bigger one is dead-lettered with ENGINE_E_EVENT_TOO_LARGE before it is parsed (default 1 MiB). */
  maxEventBytes: number;
}

/** Default `maxEventBytes` of a json topic: 1 MiB, Kafka's own default record size. */
export const DEFAULT_KAFKA_MAX_EVENT_BYTES = 1024 * 1024;

/** How to reach the cluster: used by the source and by kafka-publish. */
export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  /** true: TLS with the system CAs; an object: a CA file and/or relaxed verification (test clusters). */
  ssl?: boolean | { ca?: string; rejectUnauthorized?: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  connectionTimeoutMs: number;
}

export interface KafkaConfig extends KafkaConnection {
  groupId: string;
  topics: KafkaTopicConfig[];
  /** Records of one partition handled at once (records sharing a key always in offset order). */
  maxInFlight: number;
  /** Partitions of the group handled at once by this instance. */
  partitionsConcurrently: number;
  /** A new group starts at the earliest offset (default) or only reads new records. */
  fromBeginning: boolean;
  sessionTimeoutMs: number;
  /** Attempts for a record refused for a passing reason (store busy, remote 5xx in an on-complete route) before the dead-letter topic. */
  retry: { max: number; initialMs: number; maxDelayMs: number };
}

const NAME = '^[a-z][a-z0-9-]*$';

/** JSON Schema of the `kafka:` section (added to the core site schema). */
export const kafkaSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Kafka connection, consumer group and topics read as sources (docs/kafka.md)',
  properties: {
    brokers: {
      description: 'Bootstrap brokers: a list, or one comma-separated string (e.g. ${env:KAFKA_BROKERS})',
      anyOf: [{ type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }, { type: 'string', minLength: 1 }],
    },
    clientId: { type: 'string', description: 'Client id (default hisbridge)' },
    groupId: { type: 'string', description: 'Consumer group shared by every instance of this deployment (default hisbridge)' },
    ssl: {
      anyOf: [
        { type: 'boolean' },
        { type: 'object', additionalProperties: false, properties: { ca: { type: 'string', description: 'CA certificate file (PEM)' }, rejectUnauthorized: { type: 'boolean' } } },
      ],
    },
    sasl: {
      type: 'object',
      additionalProperties: false,
      required: ['mechanism', 'username', 'password'],
      properties: {
        mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'] },
        username: { type: 'string' },
        password: { type: 'string', description: 'Use ${env:NAME}; never inline' },
      },
    },
    connectionTimeout: durationSchema,
    sessionTimeout: durationSchema,
    maxInFlight: { type: 'integer', minimum: 1, maximum: 10000, description: 'Records of one partition handled at once (default 64); same key always in order' },
    partitionsConcurrently: { type: 'integer', minimum: 1, maximum: 64, description: 'Partitions handled at once (default 4)' },
    fromBeginning: { type: 'boolean', description: 'A new consumer group starts at the earliest offset (default true)' },
    retry: {
      type: 'object',
      additionalProperties: false,
      properties: { max: { type: 'integer', minimum: 1, maximum: 100 }, initial: durationSchema, maxDelay: durationSchema },
    },
    topics: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, description: 'Topic to read' },
          source: { type: 'string', pattern: NAME, description: 'Source name for routes’ `sources:` (default kafka)' },
          format: { enum: ['hl7', 'json'], description: 'hl7: raw HL7 v2; json: kafka-event envelope (default hl7)' },
          charset: { type: 'string', description: 'Charset of HL7 values without MSH-18 (default gb18030)' },
          dlqTopic: { type: 'string', minLength: 1, description: 'Dead-letter topic (default <name>.dlq)' },
          noRoute: { enum: ['AA', 'AR'], description: 'A record no route accepts: AA commits it (default), AR dead-letters it' },
          invalidBytes: { enum: ['reject', 'replace'], description: 'Bytes invalid in the charset: reject dead-letters the record (default); replace keeps them as U+FFFD and marks the message' },
          multiMessageBlocks: { enum: ['split', 'reject'], description: 'A record holding several HL7 messages or a batch: split processes each (default); reject dead-letters it' },
          maxEventBytes: { type: 'integer', minimum: 1024, maximum: 268435456, description: 'json format: largest record value taken; a bigger one is dead-lettered with ENGINE_E_EVENT_TOO_LARGE before it is parsed (default 1 MiB)' },
        },
      },
    },
  },
} as const;

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Builds the parsed section from validated YAML data; undefined when the file has no `kafka:` key. */
export function parseKafkaConfig(raw: Raw | undefined): KafkaConfig | undefined {
  if (!raw) return undefined;
  const brokers = (Array.isArray(raw.brokers) ? raw.brokers : String(raw.brokers ?? '').split(','))
    .map((b: string) => b.trim())
    .filter(Boolean);
  return {
    brokers,
    clientId: raw.clientId ?? 'hisbridge',
    groupId: raw.groupId ?? 'hisbridge',
    ...(raw.ssl !== undefined ? { ssl: raw.ssl } : {}),
    ...(raw.sasl ? { sasl: { mechanism: raw.sasl.mechanism, username: raw.sasl.username, password: raw.sasl.password } } : {}),
    connectionTimeoutMs: parseDuration(raw.connectionTimeout, 10_000),
    sessionTimeoutMs: parseDuration(raw.sessionTimeout, 30_000),
    maxInFlight: raw.maxInFlight ?? 64,
    partitionsConcurrently: raw.partitionsConcurrently ?? 4,
    fromBeginning: raw.fromBeginning ?? true,
    retry: {
      max: raw.retry?.max ?? 5,
      initialMs: parseDuration(raw.retry?.initial, 500),
      maxDelayMs: parseDuration(raw.retry?.maxDelay, 10_000),
    },
    topics: ((raw.topics as Raw[] | undefined) ?? []).map((t) => ({
      name: t.name,
      source: t.source ?? 'kafka',
      format: t.format ?? 'hl7',
      charset: t.charset ?? 'gb18030',
      dlqTopic: t.dlqTopic ?? `${t.name}.dlq`,
      noRoute: t.noRoute ?? 'AA',
      invalidBytes: t.invalidBytes ?? 'reject',
      multiMessageBlocks: t.multiMessageBlocks ?? 'split',
      maxEventBytes: t.maxEventBytes ?? DEFAULT_KAFKA_MAX_EVENT_BYTES,
    })),
  };
}

/** Problems that the schema cannot express; each is a sentence for a LoadIssue. */
export function kafkaConfigProblems(k: KafkaConfig, listenerNames: readonly string[]): string[] {
  const out: string[] = [];
  if (k.brokers.length === 0) out.push('kafka.brokers is empty');
  for (const t of k.topics) {
    if (listenerNames.includes(t.source)) out.push(`kafka topic ${t.name}: source "${t.source}" is also an MLLP listener name`);
    if (t.dlqTopic === t.name) out.push(`kafka topic ${t.name}: dlqTopic must differ from the topic`);
  }
  const names = k.topics.map((t) => t.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) out.push(`kafka topic ${dup} is listed twice`);
  return out;
}
