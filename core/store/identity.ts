/**
 * What makes two received messages "the same message", and the idempotency
 * key sent to remotes. See docs/delivery.md ("Duplicates and idempotency keys").
 *
 * - Content digest: SHA-256 of the decoded text with segment terminators
 *   normalised to CR, trailing empty segments dropped and MSH-7 (the time the
 *   sender built the message, which a HIS sets anew on a resend) blanked.
 *   Nothing else is left out: every clinical field counts.
 * - Message key: a hash of (MSH-3, MSH-4, MSH-10, content digest). It does
 *   not depend on the instance, the store row or the time of receipt, so the
 *   same message re-read by another instance after a Kafka rebalance, or
 *   re-sent after a crash, has the same key.
 * - Idempotency key: a hash of (message key, route, step): 32 hex characters,
 *   free of PHI.
 */
import { createHash } from 'node:crypto';

const SEP = '\u001f';

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The text a content digest is taken of (exported for tests). Linear in the text length. */
export function canonicalContent(text: string): string {
  const segments = text.split(/\r\n|\n|\r/);
  let end = segments.length;
  while (end > 0 && segments[end - 1]!.trim() === '') end--;
  const kept = end === segments.length ? segments : segments.slice(0, end);
  const msh = kept[0];
  if (msh !== undefined && msh.startsWith('MSH') && msh.length > 3) {
    const fs = msh[3]!;
    // MSH-1 is the separator itself: fields[1] is MSH-2, so fields[6] is MSH-7.
    const fields = msh.split(fs);
    if (fields.length > 6) {
      fields[6] = '';
      kept[0] = fields.join(fs);
    }
  }
  return kept.join('\r');
}

/** SHA-256 (hex) of the message's canonical content. */
export function contentDigest(text: string): string {
  return sha256(canonicalContent(text));
}

/** Identifies one message independently of the instance, the store and a restart. */
export function messageKey(sendingApp: string, sendingFacility: string, controlId: string, digest: string): string {
  return sha256(['m1', sendingApp, sendingFacility, controlId, digest].join(SEP)).slice(0, 32);
}

/** The key remotes receive as `idempotency-key` for one step of one route run on one message. */
export function idempotencyKeyOf(msgKey: string, route: string, step: number): string {
  return sha256(['k1', msgKey, route, String(step)].join(SEP)).slice(0, 32);
}
