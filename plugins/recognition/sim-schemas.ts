/**
 * The simulator's request validators: one JSON Schema per operation, from
 * schemas/recognition-*.schema.json (the same files editors and docs use).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import token from '../../schemas/recognition-token.schema.json' with { type: 'json' };
import patient from '../../schemas/recognition-patient.schema.json' with { type: 'json' };
import department from '../../schemas/recognition-department.schema.json' with { type: 'json' };
import staff from '../../schemas/recognition-staff.schema.json' with { type: 'json' };
import labReport from '../../schemas/recognition-lab-report.schema.json' with { type: 'json' };
import examReport from '../../schemas/recognition-exam-report.schema.json' with { type: 'json' };
import reportPdf from '../../schemas/recognition-report-pdf.schema.json' with { type: 'json' };
import reportRevoke from '../../schemas/recognition-report-revoke.schema.json' with { type: 'json' };
import list from '../../schemas/recognition-list.schema.json' with { type: 'json' };
import precise from '../../schemas/recognition-precise.schema.json' with { type: 'json' };
import prescriptionCheck from '../../schemas/recognition-prescription-check.schema.json' with { type: 'json' };
import decision from '../../schemas/recognition-decision.schema.json' with { type: 'json' };
import download from '../../schemas/recognition-download.schema.json' with { type: 'json' };
import { TimeSlice, yieldToLoop } from '../../core/sdk.js';
import type { Operation } from './site.js';

/** Schema per operation; the PDF and revoke schemas serve both report families. */
export const OPERATION_SCHEMAS: Readonly<Record<Operation, object>> = {
  token, patient, department, staff,
  labReport, labPdf: reportPdf, labRevoke: reportRevoke,
  examReport, examPdf: reportPdf, examRevoke: reportRevoke,
  list, precise, prescriptionCheck, decision, download,
};

const ajv = new Ajv({ allErrors: true, strict: false });
// Keyed by schema object: two operations share the PDF and revoke schemas, and ajv refuses a second $id.
const compiled = new WeakMap<object, ValidateFunction>();

export function validatorFor(op: Operation): ValidateFunction {
  const schema = OPERATION_SCHEMAS[op];
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/** An array longer than this is validated item by item, in time slices. */
const BIG_ARRAY = 256;
const itemValidators = new WeakMap<object, ValidateFunction>();

function itemValidatorFor(items: object): ValidateFunction {
  let fn = itemValidators.get(items);
  if (!fn) {
    fn = ajv.compile(items);
    itemValidators.set(items, fn);
  }
  return fn;
}

let warming: Promise<void> | undefined;

/**
 * Compiles every operation's validator (and the item validators of its
 * arrays) ahead of the first request, one schema per turn of the event loop,
 * once per process. Compiling the lab report's schemas on its first upload
 * took ~80 ms of that upload's time.
 */
export function warmValidators(): Promise<void> {
  warming ??= (async () => {
    for (const op of Object.keys(OPERATION_SCHEMAS) as Operation[]) {
      await yieldToLoop();
      validatorFor(op);
      const props = (OPERATION_SCHEMAS[op] as { properties?: Record<string, { items?: object }> }).properties ?? {};
      for (const p of Object.values(props)) {
        if (!p.items) continue;
        await yieldToLoop();
        itemValidatorFor(p.items);
      }
    }
  })();
  return warming;
}

export interface SimValidationError {
  instancePath: string;
  message?: string;
}

/**
 * Validates a payload as validatorFor(op) does, in time slices when it
 * carries a long top-level array (a lab report with 100,000 results): the
 * rest of the payload is validated with that array cut to its first item,
 * then every item against the array's `items` schema. The simulator runs in
 * the engine's process when built in, so it must not hold the event loop
 * for long either (issue 11). Returns the errors, or undefined when valid.
 */
export async function validateYielding(op: Operation, body: Record<string, unknown>): Promise<SimValidationError[] | undefined> {
  const schema = OPERATION_SCHEMAS[op] as { properties?: Record<string, { items?: object }> };
  const long = Object.keys(body).filter((k) => Array.isArray(body[k]) && (body[k] as unknown[]).length > BIG_ARRAY && schema.properties?.[k]?.items);
  const validate = validatorFor(op);
  if (long.length === 0) return validate(body) ? undefined : [...(validate.errors ?? [])];
  const head: Record<string, unknown> = { ...body };
  for (const k of long) head[k] = (body[k] as unknown[]).slice(0, 1);
  if (!validate(head)) return [...(validate.errors ?? [])];
  const slice = new TimeSlice();
  for (const k of long) {
    const fn = itemValidatorFor(schema.properties![k]!.items!);
    const list = body[k] as unknown[];
    for (let i = 0; i < list.length; i++) {
      if (!fn(list[i])) return (fn.errors ?? []).map((e) => ({ instancePath: `/${k}/${i}${e.instancePath}`, ...(e.message ? { message: e.message } : {}) }));
      if (slice.due()) await slice.pause();
    }
  }
  return undefined;
}
