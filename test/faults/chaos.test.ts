/**
 * A short, bounded chaos run (the long one is `npm run chaos`): processes contend for a few locks
 * while they are killed, paused and disconnected at random; the checker of scripts/chaos-lib.ts
 * finds no overlap of valid critical sections, no reused or falling token, no rejected or interleaved
 * fenced write of a valid holder, no live waiter left waiting, and no FIFO inversion among waiters
 * whose process saw no fault. The checker itself is shown to catch each kind of violation.
 */
import test from 'ava';
import { check, runChaos, summary, totalViolations, type ProcLog } from '../../scripts/chaos-lib.js';
import type { WorkerEvent } from '../../scripts/chaos-worker.js';

test('chaos: kills, pauses and disconnects for 15 s break no property', async (t) => {
  t.timeout(90_000);
  const result = await runChaos({ durationMs: 15_000, processes: 4, locks: 3, contenders: 2, acquireTimeoutMs: 20_000, log: (l) => t.log(l) });
  t.log(summary(result));
  for (const d of result.details) t.log(d);
  t.is(totalViolations(result), 0);
  t.true(result.grants > 100, 'the locks kept changing hands');
  t.true(result.kills + result.pauses + result.disconnects > 10, 'faults were injected');
  t.true(result.fifoPairs > 0, 'FIFO was checked on some pairs');
});

// Synthetic logs: the checker must see each kind of violation (so a clean run means something).
type WithoutPid<T> = T extends unknown ? Omit<T, 'pid'> : never;
const proc = (pid: number, events: WithoutPid<WorkerEvent>[], extra: Partial<ProcLog> = {}): ProcLog => ({
  pid,
  events: events.map((e) => ({ ...e, pid }) as WorkerEvent),
  killed: false,
  done: true,
  alive: false,
  faults: [],
  ...extra,
});
const sec = (op: string, token: number, start: number, end: number, aborted = false) =>
  ({ ev: 'section', at: end, op, lock: 'L', token, start, end, aborted, wroteBegin: true, wroteEnd: true }) as const;
const acq = (op: string, token: number, call: number, queued: number | undefined, grant: number) => [
  { ev: 'call', at: call, op, lock: 'L' } as const,
  ...(queued === undefined ? [] : [{ ev: 'queued', at: queued, op, lock: 'L' } as const]),
  { ev: 'granted', at: grant, op, lock: 'L', token } as const,
];
const counts = { kills: 0, pauses: 0, disconnects: 0 };

test('checker: a clean log has no violation', (t) => {
  const r = check([proc(1, [...acq('a', 10, 0, 1, 5), sec('a', 10, 5, 8), ...acq('b', 20, 2, 3, 9), sec('b', 20, 9, 12)])], new Map(), counts);
  t.is(totalViolations(r), 0, r.details.join('; '));
  t.is(r.fifoPairs, 1);
});

test('checker: overlapping valid sections, a reused token, a FIFO inversion, a hung waiter, interleaved writes', (t) => {
  const overlap = check([proc(1, [...acq('a', 10, 0, 1, 5), sec('a', 10, 5, 9), ...acq('b', 20, 2, 3, 8), sec('b', 20, 8, 12)])], new Map(), counts);
  t.is(overlap.violations.overlap, 1);
  const aborted = check([proc(1, [...acq('a', 10, 0, 1, 5), sec('a', 10, 5, 9, true), ...acq('b', 20, 2, 3, 8), sec('b', 20, 8, 12)])], new Map(), counts);
  t.is(aborted.violations.overlap, 0, 'a holder told of its loss is not an overlap');
  const reused = check([proc(1, [...acq('a', 10, 0, 1, 5), ...acq('b', 10, 2, 3, 8)])], new Map(), counts);
  t.true(reused.violations.token >= 1);
  const fifo = check([proc(1, [...acq('a', 20, 0, 1, 9)]), proc(2, [...acq('b', 10, 2, 3, 5)])], new Map(), counts);
  t.is(fifo.violations.fifo, 1);
  const excused = check([proc(1, [...acq('a', 20, 0, 1, 9)], { faults: [[4, 6]] }), proc(2, [...acq('b', 10, 2, 3, 5)])], new Map(), counts);
  t.is(excused.violations.fifo, 0, 'a waiter whose process was faulted may lose its place');
  const hung = check([proc(1, [{ ev: 'call', at: 0, op: 'a', lock: 'L' }])], new Map(), counts);
  t.is(hung.violations.liveness, 1);
  const interleaved = check([], new Map([['L', [{ token: 1, value: 'a b' }, { token: 1, value: 'b b' }, { token: 1, value: 'a e' }]]]), counts);
  t.is(interleaved.violations.fenced, 1);
  const rejected = check([proc(1, [{ ...sec('a', 10, 5, 9), wroteEnd: false }])], new Map(), counts);
  t.is(rejected.violations.fenced, 1);
});
