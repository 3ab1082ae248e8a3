/**
 * Server-side HTML for the console: an auto-escaping tagged template and the
 * page layout. Every interpolated value is escaped unless it is itself a
 * `Html` fragment built by this module, so a control id or an error text
 * read from a message can never inject markup.
 */

import type { Key, Lang, T } from './i18n.js';

/** A trusted HTML fragment. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESC[c]!);
}

function part(v: unknown): string {
  if (v === undefined || v === null || v === false) return '';
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(part).join('');
  return escapeHtml(v);
}

/** `html\`<p>${text}</p>\``: values escaped, nested `Html` (and arrays of it) kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Headers of every console page: no caching, no framing, scripts only from the console itself. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const NAV: [string, Key][] = [
  ['dashboard', 'nav.dashboard'], ['messages', 'nav.messages'], ['dead', 'nav.dead'], ['audit', 'nav.audit'], ['stats', 'nav.stats'], ['search', 'nav.search'],
];

export interface LayoutOptions {
  /** The language of the page. */
  t: T;
  /** Set once logged in. */
  user?: string;
  csrf?: string;
  active?: string;
  /** The page's query, kept by the language switch (a relative `?...` link stays on the page). */
  query?: Record<string, string>;
}

/** The page frame: header with navigation (collapsed behind a menu button on narrow screens) and the language switch. */
export function layout(title: string, body: Html, opts: LayoutOptions): string {
  const { t } = opts;
  const other: Lang = t.lang === 'en' ? 'zh-CN' : 'en';
  const sw = html`<a class="lang" id="lang-switch" href="${qs({ ...(opts.query ?? {}), lang: other })}" hreflang="${other}" lang="${other}" title="${t('app.lang.label')}">${t('app.lang.other')}</a>`;
  const nav = opts.user
    ? html`<button type="button" class="menu" id="menu" aria-controls="nav" aria-expanded="false">${t('app.menu')}</button>
<nav id="nav">${NAV.map(([k, label]) => html`<a href="/console/${k}"${k === opts.active ? new Html(' class="active"') : ''}>${t(label)}</a>`)}
        <span class="who">${opts.user}</span>
        <form data-post="/console/logout" class="inline"><button type="submit">${t('app.logout')}</button></form></nav>`
    : '';
  return `<!doctype html>${html`<html lang="${t.lang}"><head><meta charset="utf-8"><title>${title} · hisbridge</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
${opts.csrf ? html`<meta name="csrf-token" content="${opts.csrf}">` : ''}
<link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head>
<body data-failed="${t('app.requestFailed')}"><header><strong>hisbridge</strong> ${nav} ${sw}</header><main><h1>${title}</h1><p class="flash" id="flash" role="alert" hidden></p>${body}</main></body></html>`.value}`;
}

/** Hours the console's times are shifted from UTC: Asia/Shanghai (no daylight saving since 1991). */
const SHANGHAI_OFFSET_MS = 8 * 3_600_000;

/** Formats epoch ms as `YYYY-MM-DD HH:MM:SS` in Asia/Shanghai time, whatever the server's time zone. */
export function time(ms: number | undefined): string {
  if (ms === undefined) return '';
  const d = new Date(ms + SHANGHAI_OFFSET_MS);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/**
 * A time typed in the console (a `datetime-local` or `date` input, no zone)
 * read as Asia/Shanghai time: `2026-01-31T08:00` becomes
 * `2026-01-31T08:00+08:00`. Ages (`24h`) and values with a zone are kept.
 */
export function shanghaiInput(v: string | undefined): string | undefined {
  if (v === undefined) return v;
  const s = v.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return `${s}T00:00+08:00`;
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(s)) return `${s}+08:00`;
  return v;
}

/** Query string of a link, leaving out empty values. */
export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
