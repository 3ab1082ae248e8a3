/**
 * `kafka-publish`: writes the message to a Kafka topic, as HL7 text or as a
 * kafka-event JSON envelope (schemas/kafka-event.schema.json), keyed by a
 * template (default the in-hospital patient id) so one patient's events land
 * in one partition, in order. The step resolves only after the broker
 * acknowledged (acks=-1), so an `ack: on-complete` route bridges MLLP to
 * Kafka: the HIS gets AA only once the record is safely in the cluster.
 */
import { auditedCall, hbError, isHisbridgeError, loadKafkaClient, type KafkaConnection, type KafkaEvent, encodeText, normalizeCharset, type Hl7Message, compileTemplate, type PluginDefinition, type StepInput } from '../../core/sdk.js';
import { Publisher } from './publisher.js';

export interface KafkaPublishConfig {
  topic: string;
  format?: 'hl7' | 'json';
  /** A template for the record value instead of the message, e.g. "${vars.report}" (a map step's JSON); UTF-8. */
  value?: string;
  key?: string;
  charset?: string;
  headers?: Record<string, string>;
  brokers?: string[];
  clientId?: string;
}

export const DEFAULT_KEY = '${PID-3[5=PI].1}';

/** MSH-7 (YYYYMMDDHHMMSS[+ZZZZ]) as ISO 8601; now when absent or unreadable. */
function occurredAt(msg: Hl7Message): string {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?/.exec(msg.get('MSH-7'));
  if (!m) return new Date().toISOString();
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}+08:00`);
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString();
}

/** The envelope written for format: json: ids in the envelope, the message itself in `hl7`. */
export function envelopeOf(input: StepInput, msg: Hl7Message): KafkaEvent {
  const pick = <T extends Record<string, string>>(o: T): T | undefined => {
    const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== '')) as T;
    return Object.keys(out).length ? out : undefined;
  };
  const patient = pick({ id: msg.get('PID-3[5=PI].1') || msg.get('PID-3.1') });
  const order = pick({ id: msg.get('ORC-2.1') || msg.get('OBR-2.1'), fillerId: msg.get('ORC-3.1') || msg.get('OBR-3.1'), control: msg.get('ORC-1') });
  const report = msg.has('OBR-25') ? pick({ id: msg.get('OBR-3.1'), status: msg.get('OBR-25') }) : undefined;
  return {
    specVersion: '1',
    eventId: input.controlId,
    eventType: input.type,
    source: { system: msg.sendingApp, ...(msg.sendingFacility ? { facility: msg.sendingFacility } : {}) },
    occurredAt: occurredAt(msg),
    ...(patient ? { patient } : {}),
    ...(order ? { order } : {}),
    ...(report ? { report } : {}),
    hl7: msg.encode(),
  };
}

const plugin: PluginDefinition<KafkaPublishConfig> = {
  name: 'kafka-publish',
  summary: 'Publish the message to a Kafka topic (HL7 or JSON envelope), keyed by patient; resolves after the broker ack (acks=-1)',
  kind: 'outbound',
  siteKey: 'kafka',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['topic'],
    properties: {
      topic: { type: 'string', minLength: 1, description: 'Topic to write to' },
      format: { enum: ['hl7', 'json'], description: 'hl7: the message as text; json: kafka-event envelope with the HL7 inside (default hl7)' },
      value: { type: 'string', description: 'Template for the record value instead of the message, e.g. "${vars.report}" (the JSON a map step built, written as JSON text, UTF-8)' },
      key: { type: 'string', description: `Template for the record key: one key, one partition, one order (default ${DEFAULT_KEY})` },
      charset: { type: 'string', description: 'hl7 format: bytes in this charset (default: MSH-18, else UTF-8)' },
      headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Record headers: name -> template' },
      brokers: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Brokers (default kafka.brokers of hisbridge.yaml)' },
      clientId: { type: 'string' },
    },
  },
  examples: [
    { title: 'Bridge MLLP to Kafka (AA after the broker ack)', yaml: 'plugin: kafka-publish\nconfig: { topic: his.adt, format: json }' },
    { title: 'HL7 text keyed by visit number', yaml: 'plugin: kafka-publish\nconfig: { topic: his.visits, key: "${PV1-19.1}" }' },
  ],
  async create(ctx, config) {
    const site = ctx.site as Partial<KafkaConnection>;
    const brokers = config.brokers ?? site.brokers ?? [];
    if (!brokers.length) throw hbError('KAFKA_E_CONFIG', { detail: 'kafka-publish needs kafka.brokers in hisbridge.yaml or brokers in its config' });
    const conn: KafkaConnection = {
      brokers,
      clientId: config.clientId ?? site.clientId ?? 'hisbridge',
      connectionTimeoutMs: site.connectionTimeoutMs ?? 10_000,
      ...(site.ssl !== undefined ? { ssl: site.ssl } : {}),
      ...(site.sasl ? { sasl: site.sasl } : {}),
    };
    const format = config.format ?? 'hl7';
    const valueTemplate = config.value !== undefined ? compileTemplate(config.value) : undefined;
    const key = compileTemplate(config.key ?? DEFAULT_KEY);
    const headers = Object.entries(config.headers ?? {}).map(([k, v]) => [k, compileTemplate(v)] as const);
    const charset = config.charset ? normalizeCharset(config.charset, 'utf-8') : undefined;
    const createKafkaClient = await loadKafkaClient();
    const publisher = new Publisher(createKafkaClient(conn, ctx.log).producer(), config.topic);

    return {
      async process(input, call) {
        const msg = input.hl7;
        const pid = msg ? msg.get('PID-3[5=PI].1') || msg.get('PID-3.1') : '';
        const base = { route: call.route, plugin: plugin.name, operation: 'publish', messageId: input.controlId, ...(pid ? { patientId: pid } : {}) };
        if (!msg) throw hbError('KAFKA_E_PUBLISH', { topic: config.topic, detail: 'no HL7 message to publish' }, { retryable: false });
        const value = valueTemplate
          ? Buffer.from(valueTemplate.render(input), 'utf8')
          : format === 'json'
          ? JSON.stringify(envelopeOf(input, msg))
          : encodeText(msg.encode(), charset ?? normalizeCharset(msg.charsetField || undefined, 'utf-8'));
        const k = key.render(input);
        const h: Record<string, string> = { 'hisbridge-idempotency-key': call.idempotencyKey, 'hisbridge-event-type': input.type };
        for (const [name, t] of headers) h[name] = t.render(input);
        await auditedCall(ctx.audit, base, async () => {
          try {
            await publisher.publish({ key: k || null, value, headers: h });
          } catch (e) {
            throw isHisbridgeError(e)
              ? e
              : hbError('KAFKA_E_PUBLISH', { topic: config.topic, detail: `${(e as Error).name}: ${String((e as Error).message).slice(0, 200)}` }, { cause: e, retryable: (e as { retriable?: boolean }).retriable !== false });
          }
        }, { ok: () => `topic ${config.topic}` });
        call.log.debug({ plugin: plugin.name, topic: config.topic, attempt: call.attempt }, 'published');
        return { outcome: 'ok', detail: `published to ${config.topic}`, output: { topic: config.topic, idempotent: publisher.idempotent } };
      },
      close: () => publisher.close(),
    };
  },
};

export default plugin;
