/**
 * bench/profile.ts groups a V8 CPU profile into components (engine file, npm
 * package, Node internal module, V8 pseudo-node) and counts self time only
 * inside the measured window.
 */
import { describe, expect, it } from 'vitest';
import { componentOf, components, type CpuProfile } from '../../bench/profile.js';

const DIST = '/srv/hb/dist';

describe('profile components', () => {
  it('names a component by engine file, npm package, Node module or pseudo-node', () => {
    expect(componentOf(`file://${DIST}/core/store/ledger.js`, 'accept', DIST)).toBe('core/store/ledger.js');
    expect(componentOf('file:///srv/hb/node_modules/better-sqlite3/lib/methods/transaction.js', 'x', DIST)).toBe('npm better-sqlite3');
    expect(componentOf('file:///srv/hb/node_modules/@scope/pkg/index.js', 'x', DIST)).toBe('npm @scope/pkg');
    expect(componentOf('node:internal/crypto/hash', 'digest', DIST)).toBe('node crypto/hash');
    expect(componentOf('', '(garbage collector)', DIST)).toBe('(garbage collector)');
    expect(componentOf('', 'writev', DIST)).toBe('(native) writev');
  });

  it('sums self time per component inside the window, leaving idle out', () => {
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
        { id: 2, callFrame: { functionName: 'accept', url: `file://${DIST}/core/store/ledger.js`, lineNumber: 110 } },
        { id: 3, callFrame: { functionName: 'claim', url: `file://${DIST}/core/store/ledger.js`, lineNumber: 141 } },
        { id: 4, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        { id: 5, callFrame: { functionName: 'parse', url: `file://${DIST}/core/hl7/parse.js`, lineNumber: 9 } },
      ],
      startTime: 1000,
      // Sample times 1010, 1020, 1030, 1040, 1050; each sample's time runs to the next one.
      samples: [5, 2, 3, 4, 2],
      timeDeltas: [10, 10, 10, 10, 10],
    };
    const all = components(p, DIST);
    expect(all.list.map((c) => [c.name, c.selfUs])).toEqual([['core/store/ledger.js', 20], ['core/hl7/parse.js', 10]]);
    expect(all.list[0]!.functions).toEqual([{ name: 'accept:111', selfUs: 10 }, { name: 'claim:142', selfUs: 10 }]);
    const w = components(p, DIST, { fromUs: 1015, toUs: 1035 });
    expect(w.samplesInWindow).toBe(2);
    expect(w.list.map((c) => [c.name, c.selfUs])).toEqual([['core/store/ledger.js', 20]]);
  });
});
