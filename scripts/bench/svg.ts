/** docs/bench.svg, written by hand: hand-off latency and Redis commands per grant, per library. */
import { isFairlock, type BenchResults } from './results.js';

interface Bar {
  label: string;
  value: number | null;
  text: string;
}

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One horizontal bar panel on a log10 axis. */
function panel(x0: number, y0: number, width: number, title: string, bars: Bar[], unit: (v: number) => string): string {
  const rowH = 26;
  const labelW = 200; // fits `fairlock (node-redis 6 RESP3)`
  const plotW = width - labelW - 70;
  const vals = bars.map((b) => b.value).filter((v): v is number => v !== null && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...vals, 1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...vals, lo * 10))));
  const sx = (v: number) => labelW + (plotW * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const parts: string[] = [`<g transform="translate(${x0},${y0})">`, `<text x="0" y="0" class="t">${esc(title)}</text>`];
  const top = 16;
  const h = bars.length * rowH;
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const x = sx(d);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + h}" class="grid"/>`);
    parts.push(`<text x="${x}" y="${top + h + 14}" class="ax" text-anchor="middle">${esc(unit(d))}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const cls = isFairlock({ id: b.label }) ? 'bar me' : 'bar';
    parts.push(`<text x="${labelW - 8}" y="${y + rowH / 2 + 4}" class="lb" text-anchor="end">${esc(b.label)}</text>`);
    if (b.value !== null && b.value > 0) {
      const w = Math.max(1, sx(b.value) - labelW);
      parts.push(`<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" class="${cls}"/>`);
      parts.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${y + rowH / 2 + 4}" class="v">${esc(b.text)}</text>`);
    } else {
      parts.push(`<text x="${labelW + 4}" y="${y + rowH / 2 + 4}" class="v">n/a (none within the time bound)</text>`);
    }
  });
  parts.push('</g>');
  return parts.join('\n');
}

const time = (ms: number) => (ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : ms >= 1 ? `${+ms.toFixed(1)} ms` : `${Math.round(ms * 1000)} us`);

export function chart(r: BenchResults): string {
  const hold = r.libs[0]?.contention.some((c) => c.holdMs === 1) ? 1 : (r.libs[0]?.contention[0]?.holdMs ?? 0);
  const hand: Bar[] = r.libs.map((l) => ({ label: l.id, value: l.loopback?.handoff.p50 ?? null, text: l.loopback?.handoff.p50 != null ? time(l.loopback.handoff.p50) : '' }));
  const cmds: Bar[] = r.libs.map((l) => {
    const v = l.contention.find((c) => c.holdMs === hold)?.commandsPerGrant ?? null;
    return { label: l.id, value: v, text: v === null ? '' : v.toFixed(1) };
  });
  const width = 1100;
  const height = 110 + r.libs.length * 26;
  const sub = `${r.meta.procs}x${r.meta.contenders} contenders, Node ${r.meta.node}, Redis ${r.meta.redis}, ${r.meta.cores} cores, ${r.meta.date.slice(0, 10)}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
.t{font-size:14px;font-weight:bold;fill:#222}.s{font-size:11px;fill:#666}.lb{font-size:12px;fill:#222}
.v{font-size:11px;fill:#333}.ax{font-size:10px;fill:#777}.grid{stroke:#ddd;stroke-width:1}
.bar{fill:#9aa7b8}.me{fill:#d9534f}
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="24" class="t">fairlock vs peers (log scales, shorter is better)</text>
<text x="20" y="40" class="s">${esc(sub)}; hand-off: release() call to the next acquire() resolving, one process</text>
${panel(20, 70, 530, 'Hand-off latency p50, loopback', hand, time)}
${panel(560, 70, 530, `Redis commands per grant (hot lock, hold ${hold} ms)`, cmds, (v) => (v >= 1 ? String(+v.toFixed(0)) : String(+v.toFixed(2))))}
</svg>
`;
}
