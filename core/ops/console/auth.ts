/**
 * Console authentication: local users with scrypt password hashes from the
 * site config, or a bearer token; in-memory sessions that expire; one CSRF
 * token per session, required on every state-changing request made with the
 * session cookie. Sessions die with the process on purpose: a restart logs
 * everyone out rather than keeping session secrets on disk.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

/** Cookie holding the session id. */
export const SESSION_COOKIE = 'hb_session';

export interface ConsoleUser {
  name: string;
  /** `scrypt$N$r$p$<salt b64>$<hash b64>` as made by hashPassword(). */
  passwordHash: string;
}

export interface ConsoleConfig {
  /** Serve /console and /api/stats (default true). */
  enabled: boolean;
  users: ConsoleUser[];
  /** Bearer token for scripts (`Authorization: Bearer ...`); from ${env:NAME}. */
  token?: string;
  /** Session lifetime in ms (default 8 h). */
  sessionTtlMs: number;
}

export const DEFAULT_CONSOLE: ConsoleConfig = { enabled: true, users: [], sessionTtlMs: 8 * 3_600_000 };

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

/** Hash for the site config's `console.users[].passwordHash`. */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, KEYLEN, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Constant-time check of a password against a hashPassword() string; false for malformed hashes. */
export function verifyPassword(password: string, stored: string): boolean {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 1 << 20) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const want = Buffer.from(parts[5]!, 'base64');
  if (!salt.length || !want.length) return false;
  try {
    const got = scryptSync(password, salt, want.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
    return timingSafeEqual(got, want);
  } catch {
    return false;
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface Session {
  id: string;
  user: string;
  csrf: string;
  expiresAt: number;
}

/** Who is making a request, and how. */
export type Principal = { user: string; via: 'session'; session: Session } | { user: string; via: 'token' };

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export class ConsoleAuth {
  readonly #cfg: ConsoleConfig;
  readonly #sessions = new Map<string, Session>();
  // A dummy hash so an unknown user name costs as much as a wrong password (no user enumeration by timing).
  readonly #dummy = hashPassword(randomBytes(8).toString('hex'));

  constructor(cfg: ConsoleConfig) {
    this.#cfg = cfg;
  }

  /** True when anyone can log in at all (a user or a token is configured). */
  get configured(): boolean {
    return this.#cfg.users.length > 0 || !!this.#cfg.token;
  }

  /** A new session for valid credentials, undefined otherwise. */
  login(name: string, password: string, now = Date.now()): Session | undefined {
    const user = this.#cfg.users.find((u) => u.name === name);
    const ok = verifyPassword(password, user?.passwordHash ?? this.#dummy) && user !== undefined;
    if (!ok) return undefined;
    this.#sweep(now);
    const s: Session = { id: randomBytes(32).toString('base64url'), user: user.name, csrf: randomBytes(32).toString('base64url'), expiresAt: now + this.#cfg.sessionTtlMs };
    this.#sessions.set(s.id, s);
    return s;
  }

  logout(id: string): void {
    this.#sessions.delete(id);
  }

  /** The live session of a request's cookie, if any. */
  session(headers: Record<string, string | undefined>, now = Date.now()): Session | undefined {
    const id = parseCookies(headers.cookie)[SESSION_COOKIE];
    if (!id) return undefined;
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= now) {
      this.#sessions.delete(id);
      return undefined;
    }
    return s;
  }

  /** Session cookie or bearer token. */
  principal(headers: Record<string, string | undefined>, now = Date.now()): Principal | undefined {
    const auth = headers.authorization;
    if (auth?.startsWith('Bearer ')) {
      return this.#cfg.token && sameSecret(auth.slice(7).trim(), this.#cfg.token) ? { user: 'token', via: 'token' } : undefined;
    }
    const s = this.session(headers, now);
    return s ? { user: s.user, via: 'session', session: s } : undefined;
  }

  /**
   * CSRF check for a state-changing request: a bearer token is not ambient
   * (a browser never adds it by itself), a session must echo its CSRF token
   * in the `x-csrf-token` header.
   */
  csrfOk(p: Principal, headers: Record<string, string | undefined>): boolean {
    if (p.via === 'token') return true;
    const sent = headers['x-csrf-token'];
    return typeof sent === 'string' && sameSecret(sent, p.session.csrf);
  }

  cookie(s: Session): string {
    return `${SESSION_COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.#cfg.sessionTtlMs / 1000)}`;
  }

  clearCookie(): string {
    return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  #sweep(now: number): void {
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(id);
  }
}
