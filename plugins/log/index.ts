/**
 * `log`: writes one log line per message. The message is a template; use the
 * `|mask:` filters for anything identifying (`${PID-5.1|mask:name}`).
 */
import { compileTemplate, type PluginDefinition } from '../../core/sdk.js';

export interface LogConfig {
  message: string;
  level?: 'debug' | 'info' | 'warn' | 'error';
}

const plugin: PluginDefinition<LogConfig> = {
  name: 'log',
  summary: 'Write a log line (template; mask identifiers with |mask:id, |mask:name, |mask:idcard)',
  kind: 'local',
  // A resent message logged twice does no harm: no duplicate lookup before the commit for this step (issue 15).
  effectFree: true,
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['message'],
    properties: {
      message: { type: 'string', description: 'Template, e.g. "registration ${msg.controlId} for ${PID-3.1|mask:id}"' },
      level: { enum: ['debug', 'info', 'warn', 'error'] },
    },
  },
  examples: [{ title: 'Log each registration', yaml: 'log: { message: "registration ${msg.controlId}" }' }],
  create(ctx, config) {
    const t = compileTemplate(config.message);
    const level = config.level ?? 'info';
    return {
      async process(input, call) {
        // Below the configured level the line is not rendered at all.
        if (ctx.log.isLevelEnabled?.(level) !== false) ctx.log[level]({ route: call.route, msgId: input.controlId, step: call.step }, t.render(input));
        return { outcome: 'ok' };
      },
    };
  },
};
export default plugin;
