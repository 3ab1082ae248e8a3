/**
 * Error codes of the `file` source (plugins/source-file). Registered with the
 * engine's registry in plugins/index.ts.
 */
import { errorFactory } from '../../core/sdk.js';

export const fileSourceErrors = errorFactory('fileSource', {
  FILE_E_DIR_UNUSABLE: { message: 'listener "{listener}" (file): cannot use directory {path}: {detail}', retryable: false },
});
