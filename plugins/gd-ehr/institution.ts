/**
 * Which institution a message goes out under (issue 16): a step's fixed
 * `institution: <orgCode>`, else the sending facility (MSH-4, whole or its
 * first component) matched against each institution's `senders`. A message
 * no institution claims is refused (GDEHR_E_NO_INSTITUTION): it is never
 * sent under another institution's credentials.
 */
import { hbError, type StepInput } from '../../core/sdk.js';
import { gdEhrError } from './errors.js';
import type { GdEhrInstitution, GdEhrInstitutions } from './site.js';

export interface InstitutionPicker {
  /** The institution for this message; throws GDEHR_E_NO_INSTITUTION. */
  pick(input: StepInput): GdEhrInstitution;
}

/** A sender value fit for an error text: short, printable (MSH-4 is a facility code, not patient data). */
export function safeSender(v: string): string {
  const s = v.slice(0, 40).replace(/[^\x20-\x7e\u4e00-\u9fff]/g, '?');
  return s || '(empty MSH-4)';
}

/**
 * The picker of one step. `fixed` (the step's `institution:`) must name a
 * configured orgCode: ROUTE_E_PLUGIN_CONFIG otherwise, so the route does not load.
 */
export function institutionPicker(all: GdEhrInstitutions, fixed: string | undefined, pluginName: string): InstitutionPicker {
  if (fixed !== undefined) {
    const inst = all.byOrgCode(fixed);
    if (!inst) throw hbError('ROUTE_E_PLUGIN_CONFIG', { name: pluginName, detail: `institution "${safeSender(fixed)}" is not a gdEhr institution orgCode (known: ${all.list.map((x) => x.orgCode).join(', ')})` });
    return { pick: () => inst };
  }
  if (all.implicit) return { pick: () => all.list[0]! };
  return {
    pick(input) {
      const facility = input.hl7 ? input.hl7.get('MSH-4') : '';
      const first = input.hl7 ? input.hl7.sendingFacility : '';
      const inst = (facility ? all.bySender(facility) : undefined) ?? (first ? all.bySender(first) : undefined);
      if (!inst) throw gdEhrError('GDEHR_E_NO_INSTITUTION', { sender: input.hl7 ? safeSender(facility) : '(not an HL7 message: set institution: on the step)' });
      return inst;
    },
  };
}
