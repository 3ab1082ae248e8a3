/**
 * The HL7 v2 codec: charsets, escapes, field paths, the message model and
 * acknowledgments. Plugins may import from here (see core/sdk.ts).
 */
export { DEFAULT_DELIMITERS, type Hl7Delimiters } from './delimiters.js';
export { decodeHl7, decodeHl7Yielding, encodeText, normalizeCharset, readMsh18, type CanonicalCharset, type DecodedHl7, type InvalidBytes } from './charset.js';
export { escapeHl7, unescapeHl7 } from './escape.js';
export { compilePath, type FieldPath, type RepetitionSelector } from './path.js';
export { Hl7Message, Hl7Segment, parseHl7, parseHl7Yielding } from './message.js';
export { messagesOf, splitBlock, type BatchInfo, type BlockUnit, type SplitBlock } from './batch.js';
export {
  ackMode,
  buildAck,
  buildBatchAckEnvelope,
  type BatchAckOptions,
  hl7Timestamp,
  readAckHeader,
  type AckCode,
  type AckCondition,
  type AckError,
  type AckHeader,
  type AckModeInfo,
  type AckOptions,
} from './ack.js';
