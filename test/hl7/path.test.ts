import { describe, expect, it } from 'vitest';
import { compilePath } from '../../core/hl7/index.js';
import { isHisbridgeError } from '../../core/errors.js';

describe('compilePath', () => {
  it('compiles every part of SEG[n]-F[r].C.S', () => {
    expect(compilePath('PID-5')).toMatchObject({ segment: 'PID', field: 5 });
    expect(compilePath('PID-5.1')).toMatchObject({ segment: 'PID', field: 5, component: 1 });
    expect(compilePath('PID-3[2].1')).toMatchObject({ field: 3, repetition: 2, component: 1 });
    expect(compilePath('OBX[3]-5')).toMatchObject({ segment: 'OBX', occurrence: 3, field: 5 });
    expect(compilePath('OBX[12]-5[2].4.2')).toMatchObject({ occurrence: 12, field: 5, repetition: 2, component: 4, subcomponent: 2 });
    expect(compilePath('ZCN-1')).toMatchObject({ segment: 'ZCN', field: 1 });
    expect(compilePath('PV1-7.2')).toMatchObject({ segment: 'PV1', field: 7, component: 2 });
    expect(compilePath('MSH-1')).toMatchObject({ segment: 'MSH', field: 1 });
  });

  it('compiles repetition selectors', () => {
    expect(compilePath('PID-3[5=NI].1')).toMatchObject({ field: 3, selector: { component: 5, values: ['NI'] }, component: 1 });
    expect(compilePath('PID-3[5=NI|ID|SFZ].1').selector).toEqual({ component: 5, values: ['NI', 'ID', 'SFZ'] });
    expect(compilePath('PID-3[4=1.2.156]').selector).toEqual({ component: 4, values: ['1.2.156'] });
    expect(compilePath('PID[2]-3[5=PI]').occurrence).toBe(2);
  });

  it('caches compiled paths', () => {
    expect(compilePath('PID-5.1')).toBe(compilePath('PID-5.1'));
    expect(Object.isFrozen(compilePath('PID-5.1'))).toBe(true);
  });

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['pid-5', /segment name must be 3 upper-case.*character 1 is "p"/],
    ['PI-5', /character 3 is "-"/],
    ['PID', /expected "-" between segment and field number but found end of path/],
    ['PID5', /expected "-" .* found "5" at character 4/],
    ['PID-', /expected field number \(a number\) but found end of path/],
    ['PID-0', /field number at character 5 must be 1 or more/],
    ['PID-x', /expected field number .* "x" at character 5/],
    ['PID[0]-3', /segment occurrence at character 5 must be 1 or more/],
    ['PID[2-3', /expected "]" to close the segment occurrence but found "-" at character 6/],
    ['PID-3[', /expected repetition \(a number\) but found end of path/],
    ['PID-3[2', /expected "]" to close the repetition but found end of path/],
    ['PID-3[5=]', /empty selector value at character 9/],
    ['PID-3[5=NI|]', /empty selector value at character 12/],
    ['PID-3[=NI]', /expected selector component .* "=" at character 7/],
    ['PID-3[5=NI', /expected "]" to close the repetition selector but found end of path/],
    ['PID-3[5=N[I]', /unexpected "\[" in selector value at character 10/],
    ['PID-5.', /expected component .* end of path/],
    ['PID-5.1.', /expected subcomponent .* end of path/],
    ['PID-5.1.2.3', /unexpected "\." at character 10/],
    ['PID-5 ', /unexpected " " at character 6/],
    ['MSH-2.1', /MSH-2 holds the delimiters/],
  ];
  it.each(bad)('rejects %j with a specific reason', (path, reason) => {
    try {
      compilePath(path);
      expect.unreachable(path);
    } catch (e) {
      expect(isHisbridgeError(e) && e.code).toBe('ROUTE_E_BAD_PATH');
      expect((e as Error).message).toMatch(reason);
      expect((e as Error).message).toContain(`"${path}"`);
    }
  });
});
