/**
 * The message an `hl7` step rewrote (issue 17). The step replaces `input.hl7`
 * for the steps after it and keeps the rewritten text in the variables under
 * REWRITTEN_HL7_VAR, a name no route can write (`set:` and `as:` names are
 * letters, digits and _). Variables travel with each stored delivery, so a
 * delivery runs on the rewritten message while the stored original never
 * changes; the console shows it next to the original.
 */
export const REWRITTEN_HL7_VAR = 'hl7:rewritten';

/** The rewritten message text in a set of variables, if an `hl7` step left one. */
export function rewrittenText(vars: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const v = vars?.[REWRITTEN_HL7_VAR];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The rewritten text of an hl7 step that ran inside a delivery (after a map
 * step, a transform step, in an on-receive route), keyed by the delivery's
 * result: the store writes it into that delivery's variables when it records
 * the delivery done, so the console shows it as it does a rewrite made
 * before the ACK.
 */
export const rewrittenInDelivery = new WeakMap<object, string>();
