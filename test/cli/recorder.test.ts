/**
 * The registry `hisbridge test` runs with (core/cli/route-test/recorder.ts)
 * wraps each plugin's instances to record their calls, and must keep the
 * rest of each definition: it used to copy a fixed list of fields, so a
 * plugin's stateNamespace (recognition-check shares the `recognition`
 * state) and its error family were lost under `hisbridge test`.
 */
import { describe, expect, it } from 'vitest';
import { CallRecorder } from '../../core/cli/route-test/recorder.js';
import { builtinRegistry } from '../../plugins/index.js';

describe('the recording registry of hisbridge test', () => {
  it('keeps every field of every built-in plugin definition but create', () => {
    const base = builtinRegistry();
    const recorded = new CallRecorder().registry(base);
    expect(recorded.plugins.map((p) => p.name)).toEqual(base.plugins.map((p) => p.name));
    for (const def of base.plugins) {
      const wrapped = recorded.plugins.find((p) => p.name === def.name)!;
      const { create: _c1, ...kept } = wrapped;
      const { create: _c2, ...original } = def;
      expect(kept, def.name).toEqual(original);
      expect(wrapped.create).not.toBe(def.create);
    }
    expect(recorded.plugins.find((p) => p.name === 'recognition-check')?.stateNamespace).toBe('recognition');
  });
});
