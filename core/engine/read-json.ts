/**
 * PLACEHOLDER (issue 13): the JSON reader of the ingress port. The JSON-events
 * work replaces this file at merge with a reader that returns `{ ok: true, ... }`
 * (core/engine/read.ts ReadOk with format 'json', input.body set) for a valid
 * event. Until then every JSON event is refused, never turned into HL7.
 */
import { hbError } from '../errors.js';
import type { InboundMessage } from '../sdk.js';
import { readRefusal, type ReadResult } from './read.js';

export async function readJson(inbound: InboundMessage): Promise<ReadResult> {
  void inbound;
  return { ok: false, outcome: readRefusal(hbError('ENGINE_E_FORMAT', { format: 'json', detail: 'JSON events are not wired yet' }), { charset: 'utf-8' }) };
}
