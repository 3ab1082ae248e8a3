/**
 * Server-side HTML for the console: an auto-escaping tagged template and the
 * page layout. Every interpolated value is escaped unless it is itself a
 * `Html` fragment built by this module, so a control id or an error text
 * read from a message can never inject markup.
 */

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

const NAV: [string, string][] = [
  ['dashboard', 'Dashboard'], ['messages', 'Messages'], ['dead', 'Dead letters'], ['audit', 'Audit'], ['stats', 'Statistics'], ['search', 'Search'],
];

/** The page frame; `user` and `csrf` are set once logged in. */
export function layout(title: string, body: Html, opts: { user?: string; csrf?: string; active?: string } = {}): string {
  const nav = opts.user
    ? html`<nav>${NAV.map(([k, label]) => html`<a href="/console/${k}"${k === opts.active ? new Html(' class="active"') : ''}>${label}</a>`)}
        <span class="who">${opts.user}</span>
        <form data-post="/console/logout" class="inline"><button type="submit">Log out</button></form></nav>`
    : '';
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><title>${title} · hisbridge</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
${opts.csrf ? html`<meta name="csrf-token" content="${opts.csrf}">` : ''}
<link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head>
<body><header><strong>hisbridge</strong> ${nav}</header><main><h1>${title}</h1><p class="flash" id="flash" role="alert" hidden></p>${body}</main></body></html>`.value}`;
}

/** Formats epoch ms as local `YYYY-MM-DD HH:MM:SS`. */
export function time(ms: number | undefined): string {
  if (ms === undefined) return '';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Query string of a link, leaving out empty values. */
export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
