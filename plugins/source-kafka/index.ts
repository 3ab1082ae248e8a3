/**
 * Kafka source (the `kafka:` section's topics): reads the topics in the
 * site's consumer group and submits every record to the ingress port; commits,
 * dead-letters or retries from the outcome (core/kafka/source.ts, docs/kafka.md).
 * It builds no ACK. Back-pressure: pauses and resumes its topics when the
 * engine's controller says so.
 */
import { loadKafkaClient, type KafkaConfig, kafkaSchema, KafkaSource, type JsonSchema, type RunningSource, type SourceDefinition } from '../../core/sdk.js';

const source: SourceDefinition = {
  type: 'kafka',
  summary: 'Kafka topics read in the site consumer group (HL7 or JSON events); commit, dead-letter or retry by outcome',
  configSchema: kafkaSchema as unknown as JsonSchema,
  async start(ctx, submit): Promise<RunningSource> {
    // ctx.config is the parsed `kafka:` section (core/kafka/config.ts parseKafkaConfig).
    const config = ctx.config as unknown as KafkaConfig;
    // Loaded only when Kafka is configured, so sites without it never load kafkajs.
    const createKafkaClient = await loadKafkaClient();
    const kafka = new KafkaSource({
      config,
      client: createKafkaClient(config, ctx.log),
      submit,
      flow: ctx.flow,
      log: ctx.log,
      onLag: (topic, partition, lag) => ctx.gauge?.('kafka_lag', lag, { topic, partition: String(partition) }),
    });
    await kafka.start();
    ctx.log.info({ group: config.groupId, topics: config.topics.map((t) => t.name) }, 'kafka source started');
    return {
      close: () => kafka.stop(),
      health: () => ({
        live: true,
        ready: kafka.ready,
        ...(kafka.ready ? {} : { detail: 'not joined to the consumer group' }),
        info: { ...kafka.status },
      }),
    };
  },
};

export default source;
