/**
 * JSON Schema of route files. `routeSchema(registry)` adds each plugin's config
 * schema so editors complete plugin configs too; `npm run schemas` writes it to
 * schemas/route.schema.json (a test fails when the committed file drifts).
 */
import type { JsonSchema, PluginDefinition } from '../sdk.js';
import { conditionSchema } from './condition.js';
import { durationSchema } from '../config/duration.js';

const templateString = { type: 'string', description: 'Template: text with ${PID-5.1}, ${body.patient.id}, ${vars.x}, ${msg.controlId} expressions' } as const;

/**
 * `match.events` entries: `*`, an HL7 type `ADT^A04` or `ADT^*`, or the name of
 * a JSON event type a source gives (a listener's `event:`, e.g.
 * `patient.registered`): letters first, no `^` (so a misspelt HL7 type such as
 * `ADT^A4` is still refused).
 */
export const EVENT_PATTERN = '^(\\*|[A-Z0-9]{3}\\^(\\*|[A-Z0-9]{2,3})|[A-Za-z][A-Za-z0-9_.:/-]{0,127})$';

const STEP_KINDS = ['filter', 'set', 'log', 'reply', 'plugin'] as const;

/**
 * A step is told apart by its kind key; if/then (rather than oneOf) keeps
 * validation errors specific to the kind the author meant.
 */
function stepSchema(plugins: readonly PluginDefinition[]): JsonSchema {
  const kinds = stepSchemas(plugins);
  return {
    type: 'object',
    description: 'a step with one of: filter, set, log, reply, plugin',
    anyOf: STEP_KINDS.map((k) => ({ required: [k] })),
    allOf: STEP_KINDS.map((k, i) => ({ if: { required: [k] }, then: kinds[i] })),
  };
}

function stepSchemas(plugins: readonly PluginDefinition[]): unknown[] {
  const pluginStep = {
    type: 'object',
    additionalProperties: false,
    required: ['plugin'],
    properties: {
      plugin: { enum: plugins.map((p) => p.name), description: 'Plugin name (folder under plugins/)' },
      name: { type: 'string', description: 'Optional step label for outcomes and logs' },
      as: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Store the plugin output as vars.<as>' },
      config: { type: 'object', description: 'Plugin config, validated against the plugin schema' },
    },
    allOf: plugins.map((p) => ({
      if: { properties: { plugin: { const: p.name } } },
      then: { properties: { config: { ...p.configSchema, description: p.summary } } },
    })),
  };
  return [
    { type: 'object', additionalProperties: false, required: ['filter'], properties: { filter: { $ref: '#/$defs/condition' } } },
    {
      type: 'object',
      additionalProperties: false,
      required: ['set'],
      properties: { set: { type: 'object', minProperties: 1, additionalProperties: templateString, propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } } },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['log'],
      properties: {
        log: {
          type: 'object',
          additionalProperties: false,
          required: ['message'],
          properties: { message: templateString, level: { enum: ['debug', 'info', 'warn', 'error'] } },
        },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['reply'],
      properties: {
        reply: {
          type: 'object',
          additionalProperties: false,
          properties: {
            segments: { type: 'array', items: { type: 'array', items: templateString, minItems: 1 } },
            text: templateString,
          },
        },
      },
    },
    pluginStep,
  ];
}

export function routeSchema(plugins: readonly PluginDefinition[]): JsonSchema {
  const route = {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'match', 'steps'],
    properties: {
      name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'Unique route name (lower case, digits, . _ -)' },
      description: { type: 'string' },
      enabled: { type: 'boolean', description: 'false keeps the file but does not load the route' },
      required: { type: 'boolean', description: 'true: a plugin site section that is not configured (e.g. a platform base URL) refuses the start instead of loading the route inactive (default false)' },
      sources: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Listener/source names; omitted = all' },
      match: {
        type: 'object',
        additionalProperties: false,
        required: ['events'],
        properties: {
          events: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', pattern: EVENT_PATTERN },
            description: 'MSH-9.1^MSH-9.2, e.g. ADT^A04; ADT^* for any trigger; * for every message; for a JSON event, its type as the source gives it (Kafka eventType, a listener event:)',
          },
          sender: {
            type: 'object',
            additionalProperties: false,
            properties: { application: { type: 'string', description: 'MSH-3.1' }, facility: { type: 'string', description: 'MSH-4.1' } },
          },
          when: { type: 'array', items: { $ref: '#/$defs/condition' }, description: 'Every condition must hold' },
        },
      },
      ack: { enum: ['on-receive', 'on-complete'], description: 'on-receive: ACK once durably stored; on-complete: ACK after all steps (reply carries results)' },
      tables: {
        type: 'object',
        additionalProperties: { type: 'object', additionalProperties: { type: 'string' } },
        description: 'Lookup tables for the |table:NAME filter ("*" is the fallback)',
      },
      steps: { type: 'array', minItems: 1, items: { $ref: '#/$defs/step' } },
      delivery: {
        type: 'object',
        additionalProperties: false,
        properties: {
          orderingKey: { ...templateString, description: 'Deliveries sharing this key run one after another in arrival order' },
          retry: {
            type: 'object',
            additionalProperties: false,
            properties: {
              max: { type: 'integer', minimum: 1, maximum: 1000, description: 'Attempts in total before dead letter (default 10)' },
              initial: durationSchema,
              maxDelay: durationSchema,
            },
          },
        },
      },
    },
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://hisbridge.local/schemas/route.schema.json',
    title: 'hisbridge route file',
    $defs: {
      condition: conditionSchema,
      step: stepSchema(plugins),
      route,
    },
    type: 'object',
    if: { required: ['routes'] },
    then: { additionalProperties: false, properties: { routes: { type: 'array', minItems: 1, items: { $ref: '#/$defs/route' } } } },
    else: { $ref: '#/$defs/route' },
  };
}
