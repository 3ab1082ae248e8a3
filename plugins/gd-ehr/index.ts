/**
 * Site extension `gdEhr`: the Guangdong Health Record Interop System
 * (广东健康档案互通系统). Owns the `gdEhr:` section of hisbridge.yaml, its
 * embedded defaults (the simulator, demo credentials), the provincial
 * simulator and the workstation viewer-URL endpoint. The plugins
 * gd-ehr-authorize and gd-ehr-viewer read the same section.
 */
import type { SiteExtension } from '../../core/sdk.js';
import { gdEhrDefaults, gdEhrSiteSchema, institutionProblems } from './site.js';
import { startGdEhrSimulator } from './simulator.js';
import { gdEhrEndpoints } from './endpoint.js';
import { viewerUrlCommand } from './cli.js';
import { gdEhrDoctor } from './doctor.js';
import { urlsInUse } from '../shared/institutions.js';

/** Port of the simulator with the engine's HTTP server off; otherwise HTTP port + 1 (core/engine/sim-ports.ts). */
export const GD_EHR_SIMULATOR_PORT = 8481;

const gdEhr: SiteExtension = {
  key: 'gdEhr',
  summary: 'Guangdong Health Record Interop System (广东健康档案互通系统): parameters issued by the province; secrets via ${env:NAME}',
  configSchema: gdEhrSiteSchema,
  /** A duplicate orgCode, a sender listed by two institutions (site.ts). */
  problems: institutionProblems,
  defaults: gdEhrDefaults,
  simulator: {
    defaultPort: GD_EHR_SIMULATOR_PORT,
    start: startGdEhrSimulator,
  },
  endpoints: gdEhrEndpoints,
  /** The authorization API is what the engine calls; the viewer URL is opened by the doctor's browser. */
  health: (site) => {
    const [url, ...urls] = urlsInUse(site, 'authUrl');
    return url === undefined ? undefined : { url, urls };
  },
  commands: [viewerUrlCommand],
  /** `hisbridge doctor`: a signed probe with an empty body (doctor.ts). */
  doctor: gdEhrDoctor,
};

export default gdEhr;
export { gdEhr };
export * from './site.js';
export { institutionPicker, type InstitutionPicker } from './institution.js';
export { buildViewerUrl, parseViewerParam, viewerParamPlaintext, VIEWER_FIELDS, type ViewerFields } from './viewer-url.js';
export { authorize, authorizeBody, type AuthorizeRequest, type AuthorizeResult } from './client.js';
export { startGdEhrSimulator, type FaultRule, type SimCall, type GdEhrSimulator } from './simulator.js';
