/**
 * What a soak run writes: docs/soak.svg (one small line chart per drift-checked series, the warm-up
 * shaded, the least-squares line of the checked window drawn over it), docs/soak.json (the samples
 * and verdicts) and docs/soak.md (the verdicts as a table). The SVG escaping is the bench chart's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { esc } from './bench/svg.js';
import { afterWarmup, fit, type Point } from './soak-check.js';
import { SERIES, type Sample, type SeriesName, type SoakResult } from './soak-lib.js';

const human = (v: number, unit: string): string => {
  if (!Number.isFinite(v)) return 'n/a';
  if (unit === 'B') return v >= 2 ** 20 ? `${(v / 2 ** 20).toFixed(1)} MiB` : `${(v / 1024).toFixed(0)} KiB`;
  return `${+v.toPrecision(3)}${unit === 'ms' ? ' ms' : unit === '/s' ? '/s' : ''}`;
};

function panel(x0: number, y0: number, w: number, h: number, s: SeriesName, r: SoakResult): string {
  const points: Point[] = r.samples.map((x) => ({ t: x.t, v: x[s as keyof Sample] })).filter((p) => Number.isFinite(p.v));
  const verdict = r.drift.find((d) => d.series === s);
  const { unit, label } = SERIES[s]!;
  const tMax = Math.max(r.options.durationMs / 1000, ...points.map((p) => p.t), 1);
  const vMax = Math.max(...points.map((p) => p.v), 1e-9) * 1.1;
  const sx = (t: number) => (w * t) / tMax;
  const sy = (v: number) => h - (h * v) / vMax;
  const warm = sx(r.options.warmupMs / 1000);
  const parts = [
    `<g transform="translate(${x0},${y0})">`,
    `<text x="0" y="-8" class="t">${esc(label)} <tspan class="${verdict?.pass ? 'ok' : 'bad'}">${verdict?.pass ? 'flat' : r.options.advisory.includes(s) ? 'drift (advisory)' : 'DRIFT'}</tspan></text>`,
    `<rect x="0" y="0" width="${w}" height="${h}" class="frame"/>`,
    `<rect x="0" y="0" width="${warm.toFixed(1)}" height="${h}" class="warm"/>`,
    `<text x="-4" y="8" class="ax" text-anchor="end">${esc(human(vMax, unit))}</text>`,
    `<text x="-4" y="${h}" class="ax" text-anchor="end">0</text>`,
    `<text x="${w}" y="${h + 12}" class="ax" text-anchor="end">${Math.round(tMax)} s</text>`,
  ];
  if (points.length > 1) parts.push(`<polyline class="line" points="${points.map((p) => `${sx(p.t).toFixed(1)},${sy(p.v).toFixed(1)}`).join(' ')}"/>`);
  const checked = afterWarmup(points, r.options.warmupMs / 1000);
  if (checked.length > 2) {
    const { slope, intercept } = fit(checked);
    const a = checked[0]!.t;
    const b = checked[checked.length - 1]!.t;
    parts.push(`<line x1="${sx(a).toFixed(1)}" y1="${sy(slope * a + intercept).toFixed(1)}" x2="${sx(b).toFixed(1)}" y2="${sy(slope * b + intercept).toFixed(1)}" class="fit"/>`);
  }
  if (verdict) parts.push(`<text x="0" y="${h + 12}" class="ax">${esc(`growth ${human(verdict.growth, unit)} (allowed ${human(verdict.allowed, unit)})`)}</text>`);
  parts.push('</g>');
  return parts.join('\n');
}

export function soakSvg(r: SoakResult): string {
  const names = Object.keys(SERIES) as SeriesName[];
  const cols = 2;
  const pw = 470;
  const ph = 90;
  const rowH = ph + 50;
  const width = 40 + cols * (pw + 90);
  const height = 80 + Math.ceil(names.length / cols) * rowH;
  const o = r.options;
  const sub = `${o.durationMs >= 120_000 ? `${Math.round(o.durationMs / 60_000)} min` : `${Math.round(o.durationMs / 1000)} s`}, ${o.names} names, ${o.residents} residents + ${o.churners} churners x ${o.contenders} loops, Redis ${r.redis}; faults: ${r.faults.kills} kills, ${r.faults.pauses} pauses, ${r.faults.disconnects} disconnects, ${r.faults.churns} churns; shaded: warm-up; red: least-squares fit`;
  const panels = names.map((s, i) => panel(80 + (i % cols) * (pw + 90), 80 + Math.floor(i / cols) * rowH, pw, ph, s, r));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
.t{font-size:12px;font-weight:bold;fill:#222}.s{font-size:11px;fill:#666}.ax{font-size:10px;fill:#777}
.frame{fill:none;stroke:#ccc}.warm{fill:#eee}.line{fill:none;stroke:#4a6fa5;stroke-width:1.5}.fit{stroke:#d9534f;stroke-width:1.5;stroke-dasharray:4 2}
.ok{fill:#2e7d32}.bad{fill:#c62828}
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="24" class="t">fairlock soak: ${r.pass ? 'PASS' : 'FAIL'}</text>
<text x="20" y="40" class="s">${esc(sub)}</text>
${panels.join('\n')}
</svg>
`;
}

export function soakMarkdown(r: SoakResult): string {
  const o = r.options;
  const rows = r.drift.map(
    (d) => `| ${SERIES[d.series]!.label} | ${human(d.mean, d.unit)} | ${human(d.growth, d.unit)} | ${human(d.allowed, d.unit)} | ${Number.isFinite(d.t) ? d.t.toFixed(1) : d.t} | ${d.pass ? 'pass' : o.advisory.includes(d.series as SeriesName) ? `advisory (not judged): ${d.why}` : `**FAIL**: ${d.why}`} |`,
  );
  return `# Soak run: ${r.pass ? 'PASS' : 'FAIL'}

\`npm run soak -- --duration ${Math.round(o.durationMs / 1000)}s\`: ${o.names} names (lock, semaphore, rw lock, groups on lock and semaphore; acquire with timeout,
tryAcquire, aborts, reentrant), ${o.residents} resident + ${o.churners} churning workers of ${o.contenders} loops each, Redis ${r.redis}.
Sampled every ${o.sampleEveryMs / 1000} s; warm-up ${o.warmupMs / 1000} s. Faults: ${r.faults.kills} SIGKILL, ${r.faults.pauses} SIGSTOP/SIGCONT, ${r.faults.disconnects} CLIENT KILL; ${r.faults.churns} churns, ${r.faults.spawned} workers spawned in all.

A series drifts when its least-squares growth over the checked window exceeds the allowed growth
(max(fraction x mean, floor)) and the slope is significant (t > 3). See scripts/soak-check.ts.

| series | mean | growth over window | allowed | t | verdict |
|---|---|---|---|---|---|
${rows.join('\n')}

Keys without expiry: ${r.noExpiry.length === 0 ? 'none' : r.noExpiry.slice(0, 20).join(', ')}.
Left after the last close (besides the names' token counters, with expiry and no holders): ${r.leftover.length === 0 ? 'none' : r.leftover.slice(0, 20).join(', ')}
(${r.swept} names touched once after the workers stopped, to drop dead sessions' entries).
Worker outcomes: ${Object.entries(r.errors).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}.

![soak](soak.svg)
`;
}

export function writeSoak(dir: string, r: SoakResult): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'soak.svg'), soakSvg(r));
  writeFileSync(join(dir, 'soak.json'), JSON.stringify(r, null, 1) + '\n');
  writeFileSync(join(dir, 'soak.md'), soakMarkdown(r));
}
