/**
 * Site extension `recognition`: the exam/lab result mutual-recognition
 * platform (检查检验互认共享平台, SPEC §3, seed 004). Owns the `recognition:`
 * section of hisbridge.yaml, its simulator and the workstation endpoints.
 * The plugins recognition-upload, recognition-check and sensitive-guard use it.
 */
import type { SiteExtension } from '../../core/sdk.js';
import { recognitionEndpoints } from './endpoints.js';
import { createHub } from './hub.js';
import { recognitionDefaults, recognitionInstitutionProblems, recognitionSiteSchema } from './site.js';
import { DEFAULT_SIM_PORT, startRecognitionSimulator } from './simulator.js';
import { recognitionDoctor } from './doctor.js';
import { urlsInUse } from '../shared/institutions.js';

const extension: SiteExtension = {
  key: 'recognition',
  summary: 'Exam/lab result mutual-recognition platform (检查检验互认共享平台): paths, field names, credentials',
  configSchema: recognitionSiteSchema,
  /** A duplicate orgCode, a sender listed by two institutions, the single account beside a list (site.ts). */
  problems: recognitionInstitutionProblems,
  defaults: recognitionDefaults,
  simulator: {
    defaultPort: DEFAULT_SIM_PORT,
    start: (opts) => startRecognitionSimulator(opts),
  },
  endpoints: (ctx) => recognitionEndpoints(ctx),
  /** Every base URL in use: the section's and each institution's own. */
  health: (site) => {
    const [url, ...urls] = urlsInUse(site, 'baseUrl');
    return url === undefined ? undefined : { url, urls };
  },
  /** `hisbridge doctor`: one login (doctor.ts). */
  doctor: recognitionDoctor,
  // One hub per engine: the token client and the checks awaiting a decision (hub.ts).
  service: (ctx) => createHub(ctx),
};

export default extension;
