/**
 * Conditions used by `match.when` and `filter:` steps, compiled once to
 * closures. ts-pattern dispatches on the condition's shape.
 */
import { match, P } from 'ts-pattern';
import { compileExpression, type Tables } from '../template.js';
import { hbError } from '../errors.js';
import type { StepInput } from '../sdk.js';

export type ConditionSpec =
  | { path: string; equals: string | number | boolean }
  | { path: string; notEquals: string | number | boolean }
  | { path: string; in: (string | number)[] }
  | { path: string; notIn: (string | number)[] }
  | { path: string; exists: boolean }
  | { path: string; matches: string }
  | { all: ConditionSpec[] }
  | { any: ConditionSpec[] }
  | { not: ConditionSpec };

export type Condition = (input: StepInput) => boolean;

/** JSON Schema of a condition (recursive through `$defs/condition`). */
export const conditionSchema = {
  type: 'object',
  description: 'a condition (path + one test, or all/any/not)',
  anyOf: [{ required: ['path'] }, { required: ['all'] }, { required: ['any'] }, { required: ['not'] }],
  allOf: [
    {
      if: { required: ['path'] },
      then: {
        additionalProperties: false,
        minProperties: 2,
        maxProperties: 2,
        properties: {
          path: { type: 'string', description: 'HL7 field path (PID-3[5=NI].1), body.<path> of a JSON event (body.patient.idNumber, body.items[0].code), vars.name or msg.controlId' },
          equals: { type: ['string', 'number', 'boolean'] },
          notEquals: { type: ['string', 'number', 'boolean'] },
          in: { type: 'array', items: { type: ['string', 'number'] }, minItems: 1 },
          notIn: { type: 'array', items: { type: ['string', 'number'] }, minItems: 1 },
          exists: { type: 'boolean' },
          matches: { type: 'string', description: 'JavaScript regular expression' },
        },
      },
    },
    { if: { required: ['all'] }, then: { additionalProperties: false, properties: { all: { type: 'array', items: { $ref: '#/$defs/condition' }, minItems: 1 } } } },
    { if: { required: ['any'] }, then: { additionalProperties: false, properties: { any: { type: 'array', items: { $ref: '#/$defs/condition' }, minItems: 1 } } } },
    { if: { required: ['not'] }, then: { additionalProperties: false, properties: { not: { $ref: '#/$defs/condition' } } } },
  ],
} as const;

export function compileCondition(spec: ConditionSpec, tables: Tables = {}): Condition {
  return match(spec as ConditionSpec)
    .with({ all: P.array() }, (s) => {
      const parts = s.all.map((c) => compileCondition(c, tables));
      return (i: StepInput) => parts.every((p) => p(i));
    })
    .with({ any: P.array() }, (s) => {
      const parts = s.any.map((c) => compileCondition(c, tables));
      return (i: StepInput) => parts.some((p) => p(i));
    })
    .with({ not: P.nonNullable }, (s) => {
      const inner = compileCondition(s.not, tables);
      return (i: StepInput) => !inner(i);
    })
    .with({ path: P.string, equals: P.nonNullable }, (s) => {
      const ref = compileExpression(s.path, tables);
      const want = String(s.equals);
      return (i: StepInput) => ref.get(i) === want;
    })
    .with({ path: P.string, notEquals: P.nonNullable }, (s) => {
      const ref = compileExpression(s.path, tables);
      const want = String(s.notEquals);
      return (i: StepInput) => ref.get(i) !== want;
    })
    .with({ path: P.string, in: P.array() }, (s) => {
      const ref = compileExpression(s.path, tables);
      const set = new Set(s.in.map(String));
      return (i: StepInput) => set.has(ref.get(i));
    })
    .with({ path: P.string, notIn: P.array() }, (s) => {
      const ref = compileExpression(s.path, tables);
      const set = new Set(s.notIn.map(String));
      return (i: StepInput) => !set.has(ref.get(i));
    })
    .with({ path: P.string, exists: P.boolean }, (s) => {
      const ref = compileExpression(s.path, tables);
      return (i: StepInput) => (ref.get(i) !== '') === s.exists;
    })
    .with({ path: P.string, matches: P.string }, (s) => {
      let re: RegExp;
      try {
        re = new RegExp(s.matches);
      } catch (e) {
        throw hbError('ROUTE_E_BAD_EXPRESSION', { expr: s.matches, detail: (e as Error).message });
      }
      const ref = compileExpression(s.path, tables);
      return (i: StepInput) => re.test(ref.get(i));
    })
    .otherwise(() => {
      throw hbError('ROUTE_E_BAD_EXPRESSION', { expr: JSON.stringify(spec), detail: 'a condition needs path + one of equals, notEquals, in, notIn, exists, matches; or all/any/not' });
    });
}
