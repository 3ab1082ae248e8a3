/**
 * Error codes of the exam/lab mutual-recognition platform family
 * (recognition-check, recognition-upload and the `recognition` site
 * extension). Registered with the engine's registry in plugins/index.ts; a
 * code that core or another family already owns refuses the start.
 */
import { errorFactory } from '../../core/sdk.js';

export const recognitionErrors = errorFactory('recognition', {
  RECOG_E_AUTH: { message: 'token request failed: {detail}', retryable: true },
  RECOG_E_BUSINESS: { message: 'recognition platform refused: {detail}', retryable: false },
  RECOG_E_BAD_REQUEST: { message: '{detail}', retryable: false, status: 400 },
  RECOG_E_NOT_FOUND: { message: '{what} not found', retryable: false, status: 404 },
  RECOG_E_NO_PENDING_CHECK: { message: 'no pending check for order {orderNo} item {itemCode}', retryable: false, status: 409 },
  RECOG_E_NO_LONGER_DUPLICATE: { message: 'order {orderNo} item {itemCode} no longer duplicates a recognizable result: nothing to decide', retryable: false, status: 409 },
  RECOG_E_UNKNOWN_PATIENT: { message: 'patient {patientId} is not known to the recognition platform', retryable: false, status: 404 },
  RECOG_E_NO_ITEMS: { message: 'the order has no items to check', retryable: false, status: 400 },
  RECOG_E_UNKNOWN_REPORT: { message: 'the platform does not know report {reportId}', retryable: false, status: 404 },
  RECOG_E_REVOKE_BEFORE_UPLOAD: { message: 'revoke of report {reportId} arrived before its upload; held back', retryable: true },
  RECOG_E_BAD_PDF: { message: 'report PDF in {path} is not a base64 PDF', retryable: false },
  RECOG_E_NO_INSTITUTION: { message: 'no recognition institution lists the sending facility "{sender}" (MSH-4) in its senders', retryable: false, status: 400 },
  RECOG_E_UNKNOWN_INSTITUTION: { message: 'no recognition institution has orgCode "{orgCode}"', retryable: false, status: 400 },
  RECOG_E_INSTITUTION_REQUIRED: { message: 'orgCode is required: several recognition institutions are configured', retryable: false, status: 400 },
  RECOG_E_INSTITUTION_FORBIDDEN: { message: 'this API client may not act for institution "{orgCode}"', retryable: false, status: 403 },
  RECOG_E_TOO_MANY_RESULTS: { message: 'lab report has more than {limit} results (maxResults of recognition-upload): not uploaded', retryable: false },
});

/** Raises a `RECOG_*` error: message, retryable and HTTP status come from the catalogue above. */
export const recognitionError = recognitionErrors.error;
