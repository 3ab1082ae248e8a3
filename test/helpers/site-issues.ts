/** The load issues of a hisbridge.yaml written from lines, as `file:line:col message` (empty when it loads). */
import path from 'node:path';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { builtinRegistry } from '../../plugins/index.js';
import { tempFiles } from './routes.js';

export function siteIssues(yaml: readonly string[], env: NodeJS.ProcessEnv = {}): string[] {
  const dir = tempFiles({ 'hisbridge.yaml': yaml.join('\n') });
  const reg = builtinRegistry();
  try {
    loadSiteConfig(path.join(dir, 'hisbridge.yaml'), reg.extensions, {}, env, reg.sources);
  } catch (e) {
    if (e instanceof LoadError) return e.issues.map((i) => `${path.basename(i.pos.file)}:${i.pos.line}:${i.pos.col} ${i.message}`);
    throw e;
  }
  return [];
}
