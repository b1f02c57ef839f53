/**
 * The soak's pass criteria, as pure functions over samples and key listings (so test/unit/soak-check.test.ts
 * can feed them synthetic series): a least-squares drift check per series, and the key checks (every key
 * of the prefix expires; nothing but the documented persistent keys is left after the last close).
 */
import { linearRegression, mean } from 'simple-statistics';

/** One sampled value: `t` seconds since the run started (the driver's clock only), `v` the value. */
export interface Point {
  t: number;
  v: number;
}

/**
 * How much upward drift a series may show. The least-squares line over the samples after warm-up,
 * projected over that window (slope x window), may grow at most max(fraction x the series' mean, floor).
 * A noisy flat series can show a slope by chance: the check fails only when the slope is also
 * significant (t = slope / its standard error above `minT`), so noise alone does not fail a run.
 */
export interface DriftBound {
  fraction: number;
  /** Absolute growth always allowed (in the series' unit): noise floor of small series. */
  floor: number;
}

export interface DriftVerdict {
  series: string;
  unit: string;
  n: number;
  mean: number;
  /** Least-squares slope, unit per hour. */
  slopePerHour: number;
  /** Projected growth over the checked window (slope x window), in the unit. */
  growth: number;
  allowed: number;
  /** slope / standard error of the slope (Infinity for a perfectly straight rising line). */
  t: number;
  pass: boolean;
  why: string;
}

/** Slopes with |t| at or below this are taken as noise: about a 0.3% one-sided chance for a flat series of 20+ samples. */
export const MIN_T = 3;
/** Fewer samples than this after warm-up prove nothing either way: the check fails, asking for a longer run. */
export const MIN_POINTS = 6;

/** Slope and its standard error (ordinary least squares). */
export function fit(points: readonly Point[]): { slope: number; intercept: number; se: number } {
  const { m, b } = linearRegression(points.map((p) => [p.t, p.v]));
  const n = points.length;
  const tMean = mean(points.map((p) => p.t));
  const sxx = points.reduce((s, p) => s + (p.t - tMean) ** 2, 0);
  const sse = points.reduce((s, p) => s + (p.v - (m * p.t + b)) ** 2, 0);
  const se = n > 2 && sxx > 0 ? Math.sqrt(sse / (n - 2) / sxx) : Infinity;
  return { slope: m, intercept: b, se };
}

/** The samples at or after `warmupS` (seconds), the ones every check looks at. */
export function afterWarmup(points: readonly Point[], warmupS: number): Point[] {
  return points.filter((p) => p.t >= warmupS && Number.isFinite(p.v));
}

/** Whether `series` drifts upward after warm-up beyond `bound` (see DriftBound). */
export function checkDrift(series: string, unit: string, points: readonly Point[], warmupS: number, bound: DriftBound): DriftVerdict {
  const pts = afterWarmup(points, warmupS);
  const base = { series, unit, n: pts.length };
  if (pts.length < MIN_POINTS) {
    return { ...base, mean: NaN, slopePerHour: NaN, growth: NaN, allowed: NaN, t: NaN, pass: false, why: `only ${pts.length} samples after warm-up (need ${MIN_POINTS})` };
  }
  const { slope, se } = fit(pts);
  const avg = mean(pts.map((p) => p.v));
  const window = pts[pts.length - 1]!.t - pts[0]!.t;
  const growth = slope * window;
  const allowed = Math.max(bound.fraction * Math.abs(avg), bound.floor);
  const t = se === 0 ? (slope > 0 ? Infinity : slope < 0 ? -Infinity : 0) : slope / se;
  const drifts = growth > allowed && t > MIN_T;
  const why = drifts
    ? `grows ${fmt(growth)} ${unit} over ${Math.round(window)} s (allowed ${fmt(allowed)}; t=${fmt(t)})`
    : growth > allowed
      ? `slope not significant (t=${fmt(t)} <= ${MIN_T})`
      : `growth ${fmt(growth)} ${unit} within ${fmt(allowed)}`;
  return { ...base, mean: avg, slopePerHour: slope * 3600, growth, allowed, t, pass: !drifts, why };
}

const fmt = (v: number) => (Math.abs(v) >= 100 || !Number.isFinite(v) ? String(Math.round(v)) : String(+v.toPrecision(3)));

/** A key of the prefix as the runner scanned it: its PTTL (-1: no expiry, -2: gone meanwhile) and, for a state hash, whether it names holders. */
export interface ScannedKey {
  key: string;
  pttl: number;
  /** For a `:state` hash: the `h` field (holders) is non-empty. */
  holders?: boolean;
}

/**
 * The keys of `prefix` meant to persist without an expiry (src/protocol/lua/engine.lua, keys.ts):
 * only a quorum master's born key (`<prefix>:born`). The soak runs on one server and never creates it.
 */
export function persistentKeys(prefix: string): Set<string> {
  return new Set([`${prefix}:born`]);
}

/** Keys that should expire and have no expiry (PTTL -1), excluding the documented persistent ones. */
export function keysWithoutExpiry(prefix: string, keys: readonly ScannedKey[]): string[] {
  const persistent = persistentKeys(prefix);
  return keys.filter((k) => k.pttl === -1 && !persistent.has(k.key)).map((k) => k.key);
}

/**
 * Keys left after every worker closed (or died and its leases ran out, and the sweep touched the
 * names): DESIGN §2.7 allows a name's token counter only, i.e. its `:state` hash, with an expiry and
 * no holders; and the persistent keys. Everything else (queues, group lists, rotations) is a leak.
 */
export function leftoverKeys(prefix: string, keys: readonly ScannedKey[]): string[] {
  const persistent = persistentKeys(prefix);
  return keys
    .filter((k) => k.pttl !== -2 && !persistent.has(k.key))
    .filter((k) => !(k.key.endsWith(':state') && k.pttl > 0 && !k.holders))
    .map((k) => k.key);
}
