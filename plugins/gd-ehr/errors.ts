/**
 * Error codes of the Guangdong health-record platform family (gd-ehr,
 * gd-ehr-authorize, gd-ehr-viewer and the `gdEhr` site extension).
 * Registered with the engine's registry in plugins/index.ts; a code that core
 * or another family already owns refuses the start.
 */
import { errorFactory } from '../../core/sdk.js';

export const gdEhrErrors = errorFactory('gdEhr', {
  GDEHR_E_NO_ID_NUMBER: { message: 'no ID number found for the patient ({path})', retryable: false },
  GDEHR_E_UNSAFE_VALUE: { message: 'value of {field} contains "&", "=" or a control character', retryable: false, status: 400 },
  GDEHR_E_MISSING_PARAM: { message: 'missing parameter {field}', retryable: false, status: 400 },
  GDEHR_E_BUSINESS: { message: 'provincial platform refused: returnCode {returnCode} {returnDesc}', retryable: false },
  GDEHR_E_BAD_SIGNATURE: { message: 'gateway signature rejected', retryable: false },
  GDEHR_E_BAD_CARD_TYPE: { message: 'card type "{value}" is not one of 01-08, 99 (or an identifier type in gdEhr.cardTypes)', retryable: false, status: 400 },
  GDEHR_E_NO_INSTITUTION: { message: 'no gdEhr institution lists the sending facility "{sender}" (MSH-4) in its senders', retryable: false, status: 400 },
  GDEHR_E_UNKNOWN_INSTITUTION: { message: 'no gdEhr institution has orgCode "{orgCode}"', retryable: false, status: 400 },
  GDEHR_E_INSTITUTION_REQUIRED: { message: 'orgCode is required: several gdEhr institutions are configured', retryable: false, status: 400 },
  GDEHR_E_INSTITUTION_FORBIDDEN: { message: 'this API client may not act for institution "{orgCode}"', retryable: false, status: 403 },
  GDEHR_E_BAD_STATUS: { message: 'authorization status must be "1" (grant) or "0" (withdraw), got "{value}"', retryable: false },
});

/** Raises a `GDEHR_*` error: message, retryable and HTTP status come from the catalogue above. */
export const gdEhrError = gdEhrErrors.error;
