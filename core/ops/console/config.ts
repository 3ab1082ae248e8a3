/**
 * The `console:` section of hisbridge.yaml: schema and defaults. Lives with
 * the console so core/config/site.ts only wires it in.
 *
 * ```yaml
 * console:
 *   enabled: true
 *   users:
 *     - { name: ops, passwordHash: "scrypt$16384$8$1$..." }   # npx hisbridge console hash-password
 *   token: ${env:HISBRIDGE_CONSOLE_TOKEN}                    # bearer token for scripts
 *   sessionTtl: 8h
 * ```
 */
import { durationSchema, parseDuration } from '../../config/duration.js';
import { DEFAULT_CONSOLE, type ConsoleConfig } from './auth.js';

export const consoleSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Web console at /console (bound with the HTTP server, 127.0.0.1 by default)',
  properties: {
    enabled: { type: 'boolean', description: 'Serve /console and /api/stats (default true)' },
    users: {
      type: 'array',
      description: 'Local users; passwordHash from `hisbridge console hash-password`',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'passwordHash'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 64 },
          passwordHash: { type: 'string', pattern: '^scrypt\\$\\d+\\$\\d+\\$\\d+\\$[A-Za-z0-9+/=]+\\$[A-Za-z0-9+/=]+$' },
        },
      },
    },
    token: { type: 'string', minLength: 16, description: 'Bearer token for scripts and /api/stats; use ${env:NAME}' },
    sessionTtl: { ...durationSchema, description: 'Session lifetime (default 8h)' },
  },
} as const;

type Raw = { enabled?: boolean; users?: { name: string; passwordHash: string }[]; token?: string; sessionTtl?: string | number } | undefined;

/** The validated section with defaults applied. */
export function parseConsoleConfig(raw: Raw): ConsoleConfig {
  return {
    enabled: raw?.enabled ?? DEFAULT_CONSOLE.enabled,
    users: (raw?.users ?? []).map((u) => ({ name: u.name, passwordHash: u.passwordHash })),
    ...(raw?.token ? { token: raw.token } : {}),
    sessionTtlMs: parseDuration(raw?.sessionTtl, DEFAULT_CONSOLE.sessionTtlMs),
  };
}
