/**
 * Per-day call chart as inline SVG (no script, no library): one bar per day,
 * successes stacked under failures, so a bad day stands out at a glance.
 */
import { html, Html } from './html.js';

export interface DayBar {
  day: string;
  ok: number;
  failed: number;
}

/** A bar chart of at most the last `maxDays` days. */
export function dayChart(days: readonly DayBar[], opts: { width?: number; height?: number; maxDays?: number; title?: string; ok?: string; failed?: string } = {}): Html {
  const shown = days.slice(-(opts.maxDays ?? 60));
  const width = opts.width ?? 720;
  const height = opts.height ?? 200;
  const pad = { left: 40, bottom: 30, top: 10, right: 10 };
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...shown.map((d) => d.ok + d.failed));
  const step = shown.length ? (width - pad.left - pad.right) / shown.length : 0;
  const bar = Math.max(2, step * 0.7);
  const y = (v: number) => pad.top + plotH - (v / max) * plotH;
  const label = (d: string) => d.slice(5);
  return html`<svg class="chart" role="img" aria-label="${opts.title ?? 'calls per day'}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">
<line x1="${pad.left}" y1="${pad.top + plotH}" x2="${width - pad.right}" y2="${pad.top + plotH}" stroke="#9aa5b1"/>
<text x="${pad.left - 4}" y="${pad.top + 8}" text-anchor="end">${max}</text><text x="${pad.left - 4}" y="${pad.top + plotH}" text-anchor="end">0</text>
${shown.map((d, i) => {
    const x = pad.left + i * step + (step - bar) / 2;
    const okTop = y(d.ok);
    const failTop = y(d.ok + d.failed);
    return html`<g><title>${d.day}: ${d.ok} ${opts.ok ?? 'ok'}, ${d.failed} ${opts.failed ?? 'failed'}</title>
<rect class="bar-ok" x="${x.toFixed(1)}" y="${okTop.toFixed(1)}" width="${bar.toFixed(1)}" height="${(pad.top + plotH - okTop).toFixed(1)}" fill="#3c8d5a"/>
<rect class="bar-failed" x="${x.toFixed(1)}" y="${failTop.toFixed(1)}" width="${bar.toFixed(1)}" height="${(okTop - failTop).toFixed(1)}" fill="#c0392b"/>
${shown.length <= 31 || i % Math.ceil(shown.length / 15) === 0 ? html`<text x="${(x + bar / 2).toFixed(1)}" y="${height - pad.bottom + 14}" text-anchor="middle">${label(d.day)}</text>` : ''}</g>`;
  })}
</svg>`;
}

export { Html };
