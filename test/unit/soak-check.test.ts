/**
 * The soak's checks (scripts/soak-check.ts) can fail: a drifting series is flagged, a flat noisy one
 * passes, a key without an expiry and a key left after the last close are reported. Synthetic series
 * from a seeded generator, so every run sees the same numbers.
 */
import test from 'ava';
import { checkDrift, keysWithoutExpiry, leftoverKeys, type Point } from '../../scripts/soak-check.js';
import { prng as rng } from '../../scripts/prng.js';

/** 360 samples, one per 10 s (an hour): base + slope * t + uniform noise of +-noise. */
function series(base: number, slopePerS: number, noise: number, seed = 1, n = 360, every = 10): Point[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => ({ t: i * every, v: base + slopePerS * i * every + (r() * 2 - 1) * noise }));
}

const MiB = 2 ** 20;
const BOUND = { fraction: 0.1, floor: 2 * MiB };

test('a heap that leaks 20 MiB an hour over a 50 MiB mean, under noise, is flagged', (t) => {
  const v = checkDrift('heap', 'B', series(40 * MiB, (20 * MiB) / 3600, 3 * MiB), 720, BOUND);
  t.false(v.pass, v.why);
  t.true(v.growth > v.allowed);
  t.true(v.slopePerHour > 15 * MiB && v.slopePerHour < 25 * MiB);
});

test('a flat series with large noise passes, for many seeds (no false alarm from noise alone)', (t) => {
  for (let seed = 1; seed <= 50; seed++) {
    const v = checkDrift('heap', 'B', series(50 * MiB, 0, 10 * MiB, seed), 720, BOUND);
    t.true(v.pass, `seed ${seed}: ${v.why}`);
  }
});

test('a short run (2 minutes, a sample per 5 s) flags a steep leak and passes a flat noisy series', (t) => {
  const leak = checkDrift('keys', 'keys', series(2_000, 5, 10, 3, 24, 5), 30, { fraction: 0.05, floor: 50 });
  t.false(leak.pass, leak.why);
  const flat = checkDrift('keys', 'keys', series(2_000, 0, 10, 3, 24, 5), 30, { fraction: 0.05, floor: 50 });
  t.true(flat.pass, flat.why);
});

test('growth below the floor passes even when significant (a tiny steady rise is not a leak)', (t) => {
  const v = checkDrift('handles', 'handles', series(8, 0.001, 0.1), 720, { fraction: 0.25, floor: 10 });
  t.true(v.pass, v.why);
});

test('warm-up samples are not checked: a rise only during warm-up passes', (t) => {
  const pts = series(50 * MiB, 0, MiB).map((p) => (p.t < 720 ? { ...p, v: p.v - (720 - p.t) * 20_000 } : p));
  t.true(checkDrift('heap', 'B', pts, 720, BOUND).pass);
  t.false(checkDrift('heap', 'B', pts, 0, BOUND).pass);
});

test('too few samples after warm-up fail the check instead of passing it', (t) => {
  const v = checkDrift('heap', 'B', series(50 * MiB, 0, MiB, 1, 10), 60, BOUND);
  t.false(v.pass);
  t.regex(v.why, /only \d+ samples/);
});

test('a key without an expiry is reported; the documented persistent key is not', (t) => {
  const keys = [
    { key: 'p:{a}:state', pttl: 86_000_000, holders: false },
    { key: 'p:{a}:queue', pttl: -1 },
    { key: 'p:born', pttl: -1 },
  ];
  t.deepEqual(keysWithoutExpiry('p', keys), ['p:{a}:queue']);
});

test('after the last close: a queue, a group list, a state naming holders or a state without expiry is left over; a quiet token counter is not', (t) => {
  const keys = [
    { key: 'p:{a}:state', pttl: 86_000_000, holders: false },
    { key: 'p:{b}:state', pttl: 86_000_000, holders: true },
    { key: 'p:{c}:state', pttl: -1, holders: false },
    { key: 'p:{d}:queue', pttl: 1_000 },
    { key: 'p:{e}:queue:r', pttl: 1_000 },
    { key: 'p:{f}:queue', pttl: -2 },
    { key: 'p:born', pttl: -1 },
  ];
  t.deepEqual(leftoverKeys('p', keys), ['p:{b}:state', 'p:{c}:state', 'p:{d}:queue', 'p:{e}:queue:r']);
});
