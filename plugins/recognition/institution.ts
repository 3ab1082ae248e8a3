/**
 * Which recognition institution a message goes out under (issue 16): the
 * shared picker (plugins/shared/institutions.ts) over `recognition.institutions`
 * with this family's error. A message no institution claims is refused
 * (RECOG_E_NO_INSTITUTION, AR at ingest through PluginInstance.admit): it is
 * never sent under another institution's account.
 */
import type { PluginContext } from '../../core/sdk.js';
import { institutionPicker, type InstitutionPicker } from '../shared/institutions.js';
import { recognitionError } from './errors.js';
import { hubFor } from './hub.js';
import type { RecognitionInstitution } from './site.js';

/** Schema of a recognition step's `institution:` key. */
export const INSTITUTION_KEY_SCHEMA = { type: 'string', minLength: 1, description: 'orgCode of the recognition institution to send under (default: the one whose senders list MSH-4)' } as const;

/**
 * The picker of one step. `fixed` (the step's `institution:`) must name a
 * configured orgCode: ROUTE_E_PLUGIN_CONFIG otherwise, so the route does not load.
 */
export function recognitionPicker(ctx: PluginContext, fixed: string | undefined, pluginName: string): InstitutionPicker<RecognitionInstitution> {
  return institutionPicker(hubFor(ctx).institutions, fixed, {
    pluginName,
    sectionName: 'recognition',
    noInstitution: (sender) => recognitionError('RECOG_E_NO_INSTITUTION', { sender }),
  });
}
