/**
 * Message → field defaults shared by the gd-ehr plugins (SPEC §4): who the
 * patient is in the hospital, their identity document, and the doctor.
 */
import { compileTemplate, type Template, type StepInput } from '../../core/sdk.js';
import { cardTypeFor } from './site.js';

/** How many PID-3 repetitions are looked at when choosing an identity document. */
const MAX_IDENTIFIERS = 10;

const pidRep = Array.from({ length: MAX_IDENTIFIERS }, (_, i) => ({
  id: compileTemplate(`\${PID-3[${i + 1}].1}`),
  type: compileTemplate(`\${PID-3[${i + 1}].5}`),
}));

/** A template with a fallback used when it renders empty. */
export interface FieldTemplate {
  readonly source: string;
  render(input: StepInput): string;
}

/** Compiles `src`, or the default chain (first non-empty wins) when `src` is undefined. */
export function fieldTemplate(src: string | undefined, defaults: readonly string[]): FieldTemplate {
  const chain: Template[] = src !== undefined ? [compileTemplate(src)] : defaults.map((d) => compileTemplate(d));
  return {
    source: chain.map((t) => t.source).join(' || '),
    render(input) {
      for (const t of chain) {
        const v = t.render(input).trim();
        if (v) return v;
      }
      return '';
    },
  };
}

/** Default in-hospital patient id: the PI repetition of PID-3, else the first. */
export const PATIENT_ID_DEFAULTS = ['${PID-3[5=PI].1}', '${PID-3.1}'] as const;
/** Default name: PID-5.1 + PID-5.2 (Chinese names usually whole in PID-5.1). */
export const PATIENT_NAME_DEFAULTS = ['${PID-5.1}${PID-5.2}'] as const;
/** Default resident ID number: the PID-3 repetition typed NI, ID or SFZ. */
export const ID_NUMBER_DEFAULTS = ['${PID-3[5=NI|ID|SFZ].1}'] as const;
/** Default doctor: attending doctor PV1-7 (XCN id^family^given). */
export const STAFF_NO_DEFAULTS = ['${PV1-7.1}'] as const;
export const STAFF_NAME_DEFAULTS = ['${PV1-7.2}${PV1-7.3}'] as const;

/**
 * The identity document for the viewer: the first PID-3 repetition whose
 * type maps to card type 01 (resident ID), else the first whose type is in
 * the card-type table at all; PI/MR and other in-hospital ids never qualify.
 */
export function identityDocument(input: StepInput, table: Readonly<Record<string, string>>): { idcard: string; cardType: string } | undefined {
  let fallback: { idcard: string; cardType: string } | undefined;
  for (const rep of pidRep) {
    const id = rep.id.render(input).trim();
    const type = rep.type.render(input).trim();
    if (!id && !type) break;
    if (!id) continue;
    const code = cardTypeFor(type, table);
    if (code === '01') return { idcard: id, cardType: code };
    if (!fallback && type && code !== '99') fallback = { idcard: id, cardType: code };
  }
  return fallback;
}
