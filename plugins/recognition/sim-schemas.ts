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
