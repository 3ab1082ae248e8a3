/**
 * `reply`: adds segments (and optionally MSA-3 text) to the ACK of an
 * on-complete route. Each segment is a list of templates: the segment name,
 * then its fields in order. Values are HL7-escaped when the ACK is encoded.
 */
import { compileTemplate, type Template, type PluginDefinition } from '../../core/sdk.js';

export interface ReplyConfig {
  segments?: string[][];
  text?: string;
}

const plugin: PluginDefinition<ReplyConfig> = {
  name: 'reply',
  summary: 'Add segments or text to the ACK sent to the sender (on-complete routes)',
  kind: 'local',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      segments: {
        type: 'array',
        items: { type: 'array', minItems: 1, items: { type: 'string' } },
        description: 'Each item: [segment name, field 1, field 2, ...] as templates',
      },
      text: { type: 'string', description: 'MSA-3 text (template)' },
    },
  },
  examples: [{ title: 'Viewer URL back to the HIS', yaml: 'reply: { segments: [[ZVU, "${vars.viewer.url}"]] }' }],
  create(_ctx, config) {
    const segs: Template[][] = (config.segments ?? []).map((seg, i) => {
      const name = seg[0] ?? '';
      if (!/^[A-Z][A-Z0-9]{2}$/.test(name)) throw new Error(`segments[${i}][0] must be a segment name like ZVU (got "${name}")`);
      return seg.map((f) => compileTemplate(f));
    });
    const text = config.text !== undefined ? compileTemplate(config.text) : undefined;
    return {
      async process(input) {
        const segments = segs.map((seg) => seg.map((t) => t.render(input)));
        return { outcome: 'ok', reply: { segments, ...(text ? { text: text.render(input) } : {}) } };
      },
    };
  },
};
export default plugin;
