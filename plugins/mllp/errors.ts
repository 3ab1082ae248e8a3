/**
 * Error codes of the `mllp` destination plugin (plugins/mllp). Transport
 * failures use core's MLLP_E_CONNECT, MLLP_E_TIMEOUT and MLLP_E_CLOSED (all
 * retryable); these are the receiver's answers and what the plugin refuses.
 */
import { errorFactory } from '../../core/sdk.js';

export const mllpForwardErrors = errorFactory('mllp', {
  MLLPOUT_E_AE: { message: 'the receiver at {target} answered {code}: {text}', retryable: true },
  MLLPOUT_E_AR: { message: 'the receiver at {target} refused the message ({code}): {text}', retryable: false },
  MLLPOUT_E_BAD_ACK: { message: 'the receiver at {target} answered something that is not an ACK of this message: {detail}', retryable: true },
  MLLPOUT_E_NOT_HL7: { message: 'mllp forwards HL7 messages only; this is a {format} event', retryable: false },
  MLLPOUT_E_CONFIG: { message: 'mllp step: {detail}', retryable: false },
});
