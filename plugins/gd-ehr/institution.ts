/**
 * Which gdEhr institution a message goes out under (issue 16): the shared
 * picker (plugins/shared/institutions.ts) with this family's error. A
 * message no institution claims is refused (GDEHR_E_NO_INSTITUTION): it is
 * never sent under another institution's credentials.
 */
import { institutionPicker as sharedPicker, type InstitutionPicker as SharedPicker } from '../shared/institutions.js';
import { gdEhrError } from './errors.js';
import type { GdEhrInstitution, GdEhrInstitutions } from './site.js';

export { safeSender } from '../shared/institutions.js';

export type InstitutionPicker = SharedPicker<GdEhrInstitution>;

/**
 * The picker of one step. `fixed` (the step's `institution:`) must name a
 * configured orgCode: ROUTE_E_PLUGIN_CONFIG otherwise, so the route does not load.
 */
export function institutionPicker(all: GdEhrInstitutions, fixed: string | undefined, pluginName: string): InstitutionPicker {
  return sharedPicker(all, fixed, { pluginName, sectionName: 'gdEhr', noInstitution: (sender) => gdEhrError('GDEHR_E_NO_INSTITUTION', { sender }) });
}
