/**
 * Short chaos runs (locks, semaphores, read-write locks; processes killed, paused, disconnected, and
 * partitioned (a holder, a waiter, or a waiter's subscriber alone) at random)
 * show, from Redis's event log and the fenced store alone, no overlap, no reused or falling token, no
 * rejected fenced write of a valid holder, no waiter left waiting and no FIFO inversion among unfaulted
 * processes; locks taken in groups also keep FIFO inside each group and take turns (round robin);
 * the same over a quorum of 3 masters with master kills, stops, restarts and partitions besides; the
 * checker is shown, on made-up logs, to catch each violation.
 */
import test from 'ava';
import { check, runChaos, summary, totalViolations } from '../../scripts/chaos-lib.js';
import { call, done, enter, leave, queued, section, store, type Store } from '../helpers/chaos-log.js';

test.serial('chaos: kills, pauses, disconnects and partitions for 15 s break no property', async (t) => {
  t.timeout(90_000);
  const result = await runChaos({ durationMs: 15_000, minFaults: 11, processes: 4, locks: 3, contenders: 2, acquireTimeoutMs: 20_000, log: (l) => t.log(l) });
  t.log(summary(result));
  for (const d of result.details) t.log(d);
  t.is(totalViolations(result), 0);
  t.true(result.grants > 100, 'the locks kept changing hands');
  t.true(result.kills + result.pauses + result.disconnects + result.partitions > 10, 'faults were injected');
  t.true(result.fifoPairs > 0, 'FIFO was checked on some pairs');
});

for (const [kind, extra] of [
  ['semaphore', { permits: 3, maxWeight: 2 }],
  ['rw', { readRatio: 0.8 }],
] as const) {
  test.serial(`chaos: a ${kind} under kills, pauses and disconnects for 5 s breaks no property`, async (t) => {
    t.timeout(60_000);
    const started = Date.now();
    const result = await runChaos({ kind, ...extra, durationMs: 5_000, minFaults: 4, processes: 3, locks: 2, contenders: 2, acquireTimeoutMs: 20_000, log: (l) => t.log(l) });
    t.log(`${summary(result)} in ${Date.now() - started} ms`);
    for (const d of result.details) t.log(d);
    t.is(result.kind, kind);
    t.is(totalViolations(result), 0);
    t.true(result.grants > 50, 'the names kept changing hands');
    t.true(result.kills + result.pauses + result.disconnects + result.partitions > 3, 'faults were injected');
    t.true(result.fifoPairs > 0, 'FIFO was checked on some pairs');
  });
}

test.serial('chaos: locks taken in 3 groups under kills, pauses and disconnects for 5 s: no property broken, turns checked', async (t) => {
  t.timeout(60_000);
  const started = Date.now();
  const result = await runChaos({ groups: 3, durationMs: 5_000, processes: 3, locks: 1, contenders: 3, acquireTimeoutMs: 20_000, log: (l) => t.log(l) });
  t.log(`${summary(result)} in ${Date.now() - started} ms`);
  for (const d of result.details) t.log(d);
  t.is(result.groups, 3);
  t.is(totalViolations(result), 0);
  t.true(result.grants > 50, 'the lock kept changing hands');
  t.true(result.fifoPairs > 0, 'FIFO inside a group was checked on some pairs');
  t.true(result.rrWindows > 0, 'round robin was checked on some waits');
});

test.serial('chaos: a quorum of 3 under worker kills and pauses, master kills, stops, restarts empty and partitions for 5 s breaks no property', async (t) => {
  t.timeout(60_000);
  const started = Date.now();
  const result = await runChaos({
    quorum: 3,
    masterFaults: ['kill', 'stop', 'restart', 'partition'],
    masterFaultEveryMs: 700,
    commandTimeoutMs: 300,
    durationMs: 5_000,
    processes: 3,
    locks: 1,
    contenders: 2,
    acquireTimeoutMs: 20_000,
    log: (l) => t.log(l),
  });
  t.log(`${summary(result)} in ${Date.now() - started} ms`);
  for (const d of result.details) t.log(d);
  t.is(totalViolations(result), 0);
  t.is(result.quorum?.unfair, 0, 'no inversion where master 0 order is promised');
  t.true(result.grants > 20, 'the lock kept changing hands');
  const mf = result.quorum!.masterFaults;
  t.true(mf.kill + mf.stop + mf.restart + mf.partition >= 2, 'masters were faulted');
});

// Made-up event logs: test/helpers/chaos-log.ts.

test('checker: a clean log has no violation', (t) => {
  const log = [
    'spawn 1',
    'spawn 2',
    call(1, 'a'),
    enter(1, 'a', 10),
    call(2, 'b'),
    queued(2, 'b'),
    ...leave(1, 'a', 10),
    enter(2, 'b', 11),
    call(1, 'c'),
    queued(1, 'c'),
    ...leave(2, 'b', 11),
    ...section(1, 'c', 12),
    ...done,
  ];
  const r = check(log, store([10, 'a'], [11, 'b'], [12, 'c']));
  t.is(totalViolations(r), 0, r.details.join('; '));
  t.is(r.fifoPairs, 1, 'b queued before c called');
  t.is(r.grants, 3);
  t.is(r.sections, 3);
});

test('checker: an enter inside a section that held to its end is an overlap', (t) => {
  const log = [call(1, 'a'), call(2, 'b'), enter(1, 'a', 10), enter(2, 'b', 11), ...leave(1, 'a', 10), ...leave(2, 'b', 11), ...done];
  const r = check(log, store([10, 'a'], [11, 'b']));
  t.is(r.violations.overlap, 1, r.details.join('; '));
  t.is(totalViolations(r), 1);
});

test('checker: a holder that knew of its loss is no overlap', (t) => {
  // a's verdict held=0: a was told (or its deadline passed) before its `leave` landed.
  const lost = [call(1, 'a'), call(2, 'b'), enter(1, 'a', 10), enter(2, 'b', 11), ...leave(1, 'a', 10, 1, 0), ...leave(2, 'b', 11), ...done];
  const r1 = check(lost, store([10, 'a'], [11, 'b']));
  t.is(totalViolations(r1), 0, r1.details.join('; '));
  t.is(r1.lost, 1);
  // b entered=0: b's grant was already lost when its `enter` landed (e.g. paused before it).
  const stale = [call(1, 'a'), call(2, 'b'), enter(1, 'a', 11), enter(2, 'b', 10), ...leave(1, 'a', 11), ...leave(2, 'b', 10, 0), ...done];
  const r2 = check(stale, store([11, 'a']));
  t.is(totalViolations(r2), 0, r2.details.join('; '));
  // A lease believed lost at its enter yet held at its leave would break the evidence: flagged.
  const revived = [call(1, 'a'), ...section(1, 'a', 10).slice(0, 1), ...leave(1, 'a', 10, 0, 1), ...done];
  t.is(check(revived, store([10, 'a'])).violations.overlap, 1);
});

test('checker: a token entered twice, and a falling token', (t) => {
  const reused = [call(1, 'a'), ...section(1, 'a', 10), call(2, 'b'), ...section(2, 'b', 10), ...done];
  const r1 = check(reused, store([10, 'a'], [10, 'b']));
  t.is(r1.violations.token, 1, r1.details.join('; '));
  t.is(totalViolations(r1), 1);
  // b believed (entered=1) in token 9 after a had entered token 10.
  const falling = [call(1, 'a'), call(2, 'b'), ...section(1, 'a', 10), enter(2, 'b', 9), ...leave(2, 'b', 9, 1, 0), ...done];
  const r2 = check(falling, store([10, 'a']));
  t.is(r2.violations.token, 1, r2.details.join('; '));
  t.is(totalViolations(r2), 1);
  // Had b known at once that token 9 was gone (entered=0), nothing is wrong.
  const known = [call(1, 'a'), call(2, 'b'), ...section(1, 'a', 10), enter(2, 'b', 9), ...leave(2, 'b', 9, 0), ...done];
  t.is(totalViolations(check(known, store([10, 'a']))), 0);
});

test('checker: a FIFO inversion, and the faults that excuse it', (t) => {
  // a (process 1) was queued before b (process 2) called, yet b got the lower token.
  const wait = (...faults: string[]) => [call(1, 'a'), queued(1, 'a'), call(2, 'b'), ...faults, ...section(2, 'b', 10), ...section(1, 'a', 11), ...done];
  const s = store([10, 'b'], [11, 'a']);
  const r = check(wait(), s);
  t.is(r.violations.fifo, 1, r.details.join('; '));
  t.is(totalViolations(r), 1);
  t.is(r.fifoPairs, 1);
  for (const fault of [['pause 1 f1', 'resume 1 f1', 'settled 1 f1'], ['disconnect 1 f1', 'disconnected 1 f1', 'settled 1 f1'], ['kill 1 f1']]) {
    const e = check(wait(...fault), s);
    t.is(e.violations.fifo, 0, `excused by ${fault[0]}`);
    t.is(e.fifoPairs, 0);
  }
  t.is(check(wait('pause 2 f1', 'resume 2 f1', 'settled 2 f1'), s).violations.fifo, 1, 'a fault of the other process excuses nothing');
  // A fault window (fault .. settled) open when a queued also excuses it; one closed before does not.
  const open = ['pause 1 f1', call(1, 'a'), queued(1, 'a'), 'resume 1 f1', call(2, 'b'), 'settled 1 f1', ...section(2, 'b', 10), ...section(1, 'a', 11), ...done];
  t.is(check(open, s).violations.fifo, 0);
  const nested = ['pause 1 f2', 'disconnect 1 f1', 'disconnected 1 f1', 'settled 1 f1', ...open.slice(1).map((l) => l.replace(' f1', ' f2'))];
  t.is(check(nested, s).violations.fifo, 0, 'the settling of another fault does not close the window of a pause');
  const closed = ['pause 1 f1', 'resume 1 f1', 'settled 1 f1', ...wait()];
  t.is(check(closed, s).violations.fifo, 1);
  // b called before a's `queued` landed: no order is known, no pair.
  const racing = [call(1, 'a'), call(2, 'b'), queued(1, 'a'), ...section(2, 'b', 10), ...section(1, 'a', 11), ...done];
  const r2 = check(racing, s);
  t.is(totalViolations(r2), 0);
  t.is(r2.fifoPairs, 0);
});

test('checker: a partition excuses a cut process\'s FIFO place, never an overlap, a lost write, nor a cut subscriber', (t) => {
  const cutHolder = ['partition 1 f1 holder silent', 'healed 1 f1', 'settled 1 f1'];
  // a (process 1) cut while it holds; b enters: a must have learned its loss (held=0) by its leave.
  const during = (held: number, ...writes: [number, string][]) => {
    const log = [call(1, 'a'), enter(1, 'a', 10), cutHolder[0]!, call(2, 'b'), enter(2, 'b', 11), ...leave(1, 'a', 10, 1, held), cutHolder[1]!, ...leave(2, 'b', 11), cutHolder[2]!, ...done];
    return check(log, store(...writes));
  };
  const learned = during(0, [10, 'a'], [11, 'b']);
  t.is(totalViolations(learned), 0, learned.details.join('; '));
  t.is(learned.lost, 1);
  t.is(learned.partitions, 1);
  t.regex(summary(learned), / partitions=1 /);
  t.false(learned.details.some((d) => d.startsWith('note:')), 'healed and settled lines are read without a note');
  const silent = during(1, [10, 'a'], [11, 'b']);
  t.is(silent.violations.overlap, 1, 'a cut holder that did not learn of its loss is still an overlap');
  // Its "e" write refused (b's token is higher) and yet held=1: still a fenced violation.
  const refused = check([call(1, 'a'), enter(1, 'a', 10), cutHolder[0]!, ...leave(1, 'a', 10), cutHolder[1]!, cutHolder[2]!, ...done], new Map([['L', [{ token: 10, value: 'a b' }]]]));
  t.is(refused.violations.fenced, 1, refused.details.join('; '));

  // a queued before b called, yet b got the lower token.
  const wait = (...faults: string[]) => [call(1, 'a'), queued(1, 'a'), call(2, 'b'), ...faults, ...section(2, 'b', 10), ...section(1, 'a', 11), ...done];
  const s = store([10, 'b'], [11, 'a']);
  for (const what of ['holder', 'waiter']) {
    for (const how of ['silent', 'reset']) {
      const e = check(wait(`partition 1 f1 ${what} ${how}`, 'healed 1 f1', 'settled 1 f1'), s);
      t.is(e.violations.fifo, 0, `a ${what} cut (${how}) excuses its process's place`);
      t.is(e.fifoPairs, 0);
    }
  }
  // A subscriber cut alone: heartbeats still reach Redis and recover the wake-up; no excuse.
  const sub = check(wait('partition 1 f1 subscriber silent', 'healed 1 f1', 'settled 1 f1'), s);
  t.is(sub.violations.fifo, 1, sub.details.join('; '));
  t.false(sub.details.some((d) => d.startsWith('note:')), 'the settling of a subscriber cut is read without a note');
  // Granted with no wake-up: queued after the cut, entered before the heal (a entered after it: not counted).
  const found = check(['partition 1 f1 subscriber reset', call(1, 'a'), queued(1, 'a'), ...section(1, 'a', 10), 'healed 1 f1', 'settled 1 f1', ...done], store([10, 'a']));
  t.is(found.grantsWhileSubscriberCut, 1);
  t.regex(summary(found), /partitions=1 \(granted-while-subscriber-cut=1\)/);
  t.is(sub.grantsWhileSubscriberCut, 0);
  t.is(check(wait('partition 2 f1 waiter silent', 'healed 2 f1', 'settled 2 f1'), s).violations.fifo, 1, 'a cut of the other process excuses nothing');
  const closed = check(['partition 1 f1 waiter reset', 'healed 1 f1', 'settled 1 f1', ...wait()], s);
  t.is(closed.violations.fifo, 1, 'a cut settled before the wait excuses nothing');
  const unhealed = check(wait('partition 1 f1 waiter silent'), s);
  t.is(unhealed.violations.fifo, 0, 'a cut never settled stays open to the end');
});

test('checker: a hung waiter, a timed-out waiter, a process that never finished', (t) => {
  const hung = check([call(1, 'a'), ...done], store());
  t.is(hung.violations.liveness, 1, hung.details.join('; '));
  t.is(check([call(1, 'a'), 'kill 1 f1'], store()).violations.liveness, 0, 'a killed process owes nothing');
  const timedOut = check([call(1, 'a'), queued(1, 'a'), 'acqerr 1 a L LOCK_TIMEOUT timed out after 20000 ms', ...done], store());
  t.is(timedOut.violations.liveness, 1);
  t.deepEqual(timedOut.errorCodes, { LOCK_TIMEOUT: 1 });
  const otherError = check([call(1, 'a'), 'acqerr 1 a L REDIS_ERROR Socket closed unexpectedly', ...done], store());
  t.is(totalViolations(otherError), 0, 'an acquire failed by a disconnect is not a liveness violation');
  t.is(check(['spawn 3', 'ready 3', 'exit 3 1 -', 'done 1'], store()).violations.liveness, 1, 'process 3 never logged done');
});

test('checker: interleaved writes and a rejected write of a valid holder', (t) => {
  const interleaved = check([], new Map([['L', [{ token: 1, value: 'a b' }, { token: 2, value: 'b b' }, { token: 2, value: 'a e' }]]]));
  t.is(interleaved.violations.fenced, 1, interleaved.details.join('; '));
  const log = [call(1, 'a'), ...section(1, 'a', 10), ...done];
  const rejected = check(log, new Map([['L', [{ token: 10, value: 'a b' }]]]));
  t.is(rejected.violations.fenced, 1, rejected.details.join('; '));
  const lost = [call(1, 'a'), enter(1, 'a', 10), ...leave(1, 'a', 10, 1, 0), ...done];
  t.is(check(lost, new Map([['L', [{ token: 10, value: 'a b' }]]])).violations.fenced, 0, 'a holder that knew of its loss may be rejected');
});

test('checker: the FIFO pair count agrees with a brute-force count on random logs', (t) => {
  for (let round = 0; round < 30; round++) {
    // n acquires on L; random interleaving of their lines; tokens in order of enter.
    const n = 2 + Math.floor(Math.random() * 12);
    const steps = Array.from({ length: n }, (_, i) => ({ op: `o${i}`, pid: 1 + (i % 3), next: 0, queued: Math.random() < 0.7 }));
    const log: string[] = [];
    const pos: Record<string, { call?: number; queued?: number; token?: number }> = {};
    let token = 0;
    while (steps.some((s) => s.next < 3)) {
      const s = steps.filter((x) => x.next < 3)[Math.floor(Math.random() * steps.filter((x) => x.next < 3).length)]!;
      const p = (pos[s.op] ??= {});
      if (s.next === 0) (p.call = log.length), log.push(call(s.pid, s.op));
      else if (s.next === 1 && s.queued) (p.queued = log.length), log.push(queued(s.pid, s.op));
      else if (s.next === 2) (p.token = ++token), log.push(enter(s.pid, s.op, token), ...leave(s.pid, s.op, token, 0));
      s.next++;
    }
    log.push(...done);
    let pairs = 0;
    let bad = 0;
    for (const a of Object.values(pos)) {
      for (const b of Object.values(pos)) {
        if (a.queued === undefined || !(a.queued < b.call!)) continue;
        pairs++;
        if (b.token! < a.token!) bad++;
      }
    }
    const r = check(log, store());
    t.is(r.fifoPairs, pairs);
    t.is(r.violations.fifo, bad);
  }
  // And it is quick on a run's worth of acquires: 20000 waiters queued one after another.
  const long: string[] = [];
  for (let i = 0; i < 20_000; i++) long.push(call(1 + (i % 3), `q${i}`), queued(1 + (i % 3), `q${i}`));
  for (let i = 0; i < 20_000; i++) long.push(enter(1 + (i % 3), `q${i}`, i + 1), ...leave(1 + (i % 3), `q${i}`, i + 1, 0));
  const started = performance.now();
  const r = check([...long, ...done], store());
  t.is(r.fifoPairs, (20_000 * 19_999) / 2);
  t.is(totalViolations(r), 0);
  t.log(`checked 20000 acquires in ${(performance.now() - started).toFixed(0)} ms`);
});

// Made-up logs of a semaphore of 3 permits and of a read-write lock: `call` and `enter` carry what
// the acquire takes (weight=N, mode=read|write), and the first line the run's kind.
const semaphore = 'kind semaphore 3';
const rw = 'kind rw 0';
/** A section taking `extra` ("weight=2", "mode=read"): call, enter, leave, verdict (held). */
const take = (pid: number, op: string, token: number, extra: string) => ({
  call: `call ${pid} ${op} L ${extra}`,
  enter: `enter ${pid} ${op} L ${token} ${extra}`,
  end: leave(pid, op, token),
});
/** No store kept for L: its checks are left out (they have a test of their own). */
const noStore: Store = new Map();
/** Sections that all enter, in this order, before any of them leaves. */
const together = (...xs: ReturnType<typeof take>[]) => [...xs.map((x) => x.call), ...xs.map((x) => x.enter), ...xs.flatMap((x) => x.end)];

test('checker: a semaphore holds weights up to its permits, and not one more', (t) => {
  const atLimit = check([semaphore, ...together(take(1, 'a', 10, 'weight=2'), take(2, 'b', 11, 'weight=1')), ...done], store());
  t.is(totalViolations(atLimit), 0, atLimit.details.join('; '));
  t.is(atLimit.kind, 'semaphore');
  t.is(atLimit.limit, 3);
  const ones = check([semaphore, ...together(take(1, 'a', 10, 'weight=1'), take(2, 'b', 11, 'weight=1'), take(3, 'c', 12, 'weight=1')), ...done], store());
  t.is(totalViolations(ones), 0, 'three of one permit each');

  const over = check([semaphore, ...together(take(1, 'a', 10, 'weight=2'), take(2, 'b', 11, 'weight=2')), ...done], store());
  t.is(over.violations.overlap, 1, over.details.join('; '));
  t.is(totalViolations(over), 1);
  t.regex(over.details[0]!, /do not fit 3 permits/);
  const fourth = check([semaphore, ...together(take(1, 'a', 10, 'weight=1'), take(2, 'b', 11, 'weight=1'), take(3, 'c', 12, 'weight=1'), take(1, 'd', 13, 'weight=1')), ...done], store());
  t.is(fourth.violations.overlap, 1, 'a fourth permit');
  // Without a kind line the log is a lock's: two sections of weight 1 together are one too many.
  t.is(check([...together(take(1, 'a', 10, 'weight=1'), take(2, 'b', 11, 'weight=1')), ...done], store()).violations.overlap, 1);
  // A section that knew of its loss (held=0) counts for nothing.
  const a = take(1, 'a', 10, 'weight=2');
  const lost = check([semaphore, a.call, a.enter, ...together(take(2, 'b', 11, 'weight=2')), ...leave(1, 'a', 10, 1, 0), ...done], store());
  t.is(totalViolations(lost), 0, lost.details.join('; '));
});

test('checker: holders of a semaphore may enter out of token order, unless they could not be held together', (t) => {
  // b (token 10) was granted with a (token 11), by one release; b's process logged `enter` later.
  const fits = check([semaphore, ...together(take(1, 'a', 11, 'weight=2'), take(2, 'b', 10, 'weight=1')), ...done], store());
  t.is(totalViolations(fits), 0, fits.details.join('; '));
  // b's grant came first yet b enters after a left: b was held at a's enter, 2 + 2 > 3.
  const a = take(1, 'a', 11, 'weight=2');
  const b = take(2, 'b', 10, 'weight=2');
  const late = check([semaphore, a.call, b.call, a.enter, ...a.end, b.enter, ...b.end, ...done], store());
  t.is(late.violations.token, 1, late.details.join('; '));
  t.is(totalViolations(late), 1);
  // The same with weights that fit: no violation.
  const c = take(2, 'c', 10, 'weight=1');
  t.is(totalViolations(check([semaphore, a.call, c.call, a.enter, ...a.end, c.enter, ...c.end, ...done], store())), 0);
  // A small request must not pass a big one queued before it: the big one (token 10) enters after the
  // small one (token 11) entered, so it was held beside it, and 3 + 1 > 3.
  const big = take(1, 'big', 10, 'weight=3');
  const small = take(2, 'small', 11, 'weight=1');
  const passed = check([semaphore, big.call, 'queued 1 big L 1', small.call, small.enter, ...small.end, big.enter, ...big.end, ...done], store());
  t.is(passed.violations.token, 1, passed.details.join('; '));
  t.is(totalViolations(passed), 1, 'the tokens themselves are in call order: no fifo violation');
  // Had the small one been the later caller with the lower token, that is a fifo violation.
  const lower = take(2, 'small', 9, 'weight=1');
  const jumped = check([semaphore, big.call, 'queued 1 big L 1', lower.call, lower.enter, ...lower.end, big.enter, ...big.end, ...done], store());
  t.is(jumped.violations.fifo, 1, jumped.details.join('; '));
  t.is(totalViolations(jumped), 1);
  // Nor may a caller get a lower token than a grant made before its call (no queueing involved).
  const first = take(1, 'first', 11, 'weight=1');
  const next = take(2, 'next', 10, 'weight=1');
  const granted = check([semaphore, first.call, first.enter, next.call, next.enter, ...first.end, ...next.end, ...done], store());
  t.is(granted.violations.token, 1, granted.details.join('; '));
  t.is(totalViolations(granted), 1);
  t.is(granted.tokenPairs, 1);
});

test('checker: a read-write lock holds readers together, never a writer beside anyone', (t) => {
  const readers = check([rw, ...together(take(1, 'a', 10, 'mode=read'), take(2, 'b', 11, 'mode=read'), take(3, 'c', 12, 'mode=read')), ...done], noStore);
  t.is(totalViolations(readers), 0, readers.details.join('; '));
  t.is(readers.kind, 'rw');
  // Readers may log `enter` out of token order (one release granted them all).
  const reversed = check([rw, ...together(take(1, 'a', 12, 'mode=read'), take(2, 'b', 11, 'mode=read'), take(3, 'c', 10, 'mode=read')), ...done], noStore);
  t.is(totalViolations(reversed), 0, reversed.details.join('; '));

  const writerInReader = check([rw, ...together(take(1, 'a', 10, 'mode=read'), take(2, 'b', 11, 'mode=write')), ...done], noStore);
  t.is(writerInReader.violations.overlap, 1, writerInReader.details.join('; '));
  t.is(totalViolations(writerInReader), 1);
  const readerInWriter = check([rw, ...together(take(1, 'a', 10, 'mode=write'), take(2, 'b', 11, 'mode=read')), ...done], noStore);
  t.is(readerInWriter.violations.overlap, 1, readerInWriter.details.join('; '));
  const twoWriters = check([rw, ...together(take(1, 'a', 10, 'mode=write'), take(2, 'b', 11, 'mode=write')), ...done], noStore);
  t.is(twoWriters.violations.overlap, 1, twoWriters.details.join('; '));

  // A reader that passed a queued writer: the writer (token 10) enters after the reader (token 11)
  // entered, so it was held beside it.
  const w = take(1, 'w', 10, 'mode=write');
  const r = take(2, 'r', 11, 'mode=read');
  const passed = check([rw, w.call, 'queued 1 w L 1', r.call, r.enter, ...r.end, w.enter, ...w.end, ...done], noStore);
  t.is(passed.violations.token, 1, passed.details.join('; '));
  t.is(totalViolations(passed), 1);
});

test('checker: the fenced store of a read-write lock', (t) => {
  const log = [rw, ...together(take(1, 'a', 10, 'mode=read'), take(2, 'b', 11, 'mode=read')), ...done];
  const entries = (...xs: [number, string][]) => new Map([['L', xs.map(([token, value]) => ({ token, value }))]]);
  const interleavedReads = check(log, entries([10, 'a b'], [11, 'b b'], [10, 'a e'], [11, 'b e']));
  t.is(totalViolations(interleavedReads), 0, interleavedReads.details.join('; '));
  const missing = check(log, entries([10, 'a b'], [11, 'b b'], [11, 'b e']));
  t.is(missing.violations.fenced, 1, 'a held reader whose "e" write was refused');
  const w = take(3, 'w', 12, 'mode=write');
  const afterWrite = [rw, ...together(take(1, 'a', 10, 'mode=read'), take(2, 'b', 11, 'mode=read')), w.call, w.enter, ...w.end, ...done];
  const ok = check(afterWrite, entries([10, 'a b'], [11, 'b b'], [10, 'a e'], [11, 'b e'], [12, 'w b'], [12, 'w e']));
  t.is(totalViolations(ok), 0, ok.details.join('; '));
  const inside = check(afterWrite, entries([10, 'a b'], [11, 'b b'], [10, 'a e'], [12, 'w b'], [11, 'b e'], [12, 'w e']));
  t.is(inside.violations.fenced, 2, `a read's write inside a write's, and the write's inside the read's: ${inside.details.join('; ')}`);
  t.is(totalViolations(check([semaphore, ...together(take(1, 'a', 10, 'weight=1')), ...done], store())), 0, 'a semaphore has no store to check');
});

// Groups (DESIGN §7): `call`/`enter` carry group=G; a semaphore's kind line may carry its perGroup cap.
const inGroup = (pid: number, op: string, token: number, group: string) => [
  `call ${pid} ${op} L group=${group}`,
  `queued ${pid} ${op} L 1`,
  `enter ${pid} ${op} L ${token} group=${group}`,
  ...leave(pid, op, token),
];

test('checker: a perGroup cap is a limit of its own; FIFO binds only inside a group', (t) => {
  const capped = 'kind semaphore 3 1';
  const two = check([capped, ...together(take(1, 'a', 10, 'weight=1 group=x'), take(2, 'b', 11, 'weight=1 group=y')), ...done], store());
  t.is(totalViolations(two), 0, two.details.join('; '));
  t.is(two.perGroup, 1);
  const over = check([capped, ...together(take(1, 'a', 10, 'weight=1 group=x'), take(2, 'b', 11, 'weight=1 group=x')), ...done], store());
  t.is(over.violations.overlap, 1, over.details.join('; '));
  t.regex(over.details[0]!, /1 per group/);
  // b (group y) called after a (group x) queued, granted first: the rotation may do that.
  const a = [`call 1 a L group=x`, `queued 1 a L 1`];
  const b = inGroup(2, 'b', 10, 'y');
  const across = check([...a, ...b, `enter 1 a L 11 group=x`, ...leave(1, 'a', 11), ...done], store([10, 'b'], [11, 'a']));
  t.is(totalViolations(across), 0, across.details.join('; '));
  t.is(across.groups, 2);
  const within = check([...a, ...inGroup(2, 'b', 10, 'x'), `enter 1 a L 11 group=x`, ...leave(1, 'a', 11), ...done], store([10, 'b'], [11, 'a']));
  t.is(within.violations.fifo, 1, within.details.join('; '));
});

test('checker: round robin: a group that waits sees no other group served twice past it, unless a grant of its own may hide', (t) => {
  // y1 waits (queued first) while x1 and x2 are granted: two turns of x in a row.
  const base = (...extra: string[]) => [
    'call 3 h L group=z',
    'enter 3 h L 1 group=z',
    'call 1 y1 L group=y',
    'queued 1 y1 L 1',
    ...extra,
    'call 2 x1 L group=x',
    'queued 2 x1 L 1',
    'call 2 x2 L group=x',
    'queued 2 x2 L 2',
    ...leave(3, 'h', 1),
    'enter 2 x1 L 2 group=x',
    ...leave(2, 'x1', 2),
    'enter 2 x2 L 3 group=x',
    ...leave(2, 'x2', 3),
    'enter 1 y1 L 4 group=y',
    ...leave(1, 'y1', 4),
    ...done,
  ];
  const s = store([1, 'h'], [2, 'x1'], [3, 'x2'], [4, 'y1']);
  const twice = check(base(), s);
  t.is(twice.violations.rr, 1, twice.details.join('; '));
  t.is(twice.rrWindows, 1);
  // A request of y called before y1 queued that never entered (its process killed, not yet settled)
  // may have been granted in the window: no witness.
  const hidden = check(['call 4 y0 L group=y', 'queued 4 y0 L 1', ...base('kill 4 f1')], s);
  t.is(hidden.violations.rr, 0, hidden.details.join('; '));
  t.is(hidden.rrWindows, 0);
  // Once its session has surely lapsed (settled) before y1 queued, the window is checked again.
  const settled = check(['call 4 y0 L group=y', 'queued 4 y0 L 1', 'kill 4 f1', 'settled 4 f1', ...base()], s);
  t.is(settled.violations.rr, 1, settled.details.join('; '));
  // A request of y ahead of y1 whose process was paused in its wait may have had a hand-off that
  // lapsed unseen (and entered later under another token): no witness.
  const paused = ['call 4 y0 L group=y', 'queued 4 y0 L 1', ...base('pause 4 f1')].slice(0, -3);
  const again = check([...paused, 'resume 4 f1', 'settled 4 f1', 'enter 4 y0 L 5 group=y', ...leave(4, 'y0', 5), ...done], s);
  t.is(again.violations.rr, 0, again.details.join('; '));
  t.is(again.rrWindows, 0);
  // Weights above 1 or a perGroup cap: not checked, and the summary says why.
  const capped = check(['kind semaphore 1 1', ...base()], s);
  t.is(capped.violations.rr, 0);
  t.regex(summary(capped), /rr-windows-checked=0 \(not checked: a perGroup cap/);
});

// Made-up logs of a quorum run (chaos --quorum): master faults, queued master=, waited=, the majority phase.
const quorum3 = ['kind lock 1', 'quorum 3 lease=800'];
const qqueued = (pid: number, op: string, master = 0) => `queued ${pid} ${op} L 1 master=${master}`;

test('checker (quorum): an inversion counts as unfair only where master 0 order is promised', (t) => {
  const wait = (...faults: string[]) => [...quorum3, call(1, 'a'), qqueued(1, 'a'), call(2, 'b'), ...faults, ...section(2, 'b', 10), ...section(1, 'a', 11), ...done];
  const s = store([10, 'b'], [11, 'a']);
  const r = check(wait(), s);
  t.is(totalViolations(r), 0, 'unfair is reported, not a violation');
  t.is(r.quorum?.unfair, 1, r.details.join('; '));
  t.is(r.quorum?.unfairPairs, 1);
  // A master fault window over the wait, a down mark of either process, a fault of either process: not counted.
  for (const fault of [['master 1 stop m1', 'master 1 back m1'], ['mdown 1 2'], ['mdown 2 0', 'mup 2 0'], ['pause 2 f1', 'resume 2 f1', 'settled 2 f1']]) {
    const e = check(wait(...fault), s);
    t.is(e.quorum?.unfair, 0, `not counted with ${fault[0]}`);
    t.is(e.quorum?.unfairPairs, 0);
  }
  // A master fault settled before the wait: counted again.
  const after = check([...quorum3, 'master 1 kill m1', 'master 1 back m1', 'master 1 settled m1', ...wait().slice(2)], s);
  t.is(after.quorum?.unfair, 1);
  t.deepEqual(after.quorum?.masterFaults, { kill: 1, stop: 0, restart: 0, partition: 0 });
  // A first queued on master 1 (master 0 skipped): no promise.
  const skipped = check([...quorum3, call(1, 'a'), qqueued(1, 'a', 1), call(2, 'b'), ...section(2, 'b', 10), ...section(1, 'a', 11), ...done], s);
  t.is(skipped.quorum?.unfairPairs, 0);
  // The token rule holds for every pair of a quorum run, faults or not.
  const fell = check([...quorum3, 'master 0 restart m1', call(1, 'a'), ...section(1, 'a', 11), call(2, 'b'), ...section(2, 'b', 10), ...done], store([11, 'a'], [10, 'b']));
  t.true(fell.violations.token >= 1, fell.details.join('; '));
});

test('checker (quorum): the majority phase, waited= and the longest wait', (t) => {
  const phase = (outcome: string[]) => [
    ...quorum3,
    call(1, 'a'),
    'enter 1 a L 10 waited=120',
    ...leave(1, 'a', 10),
    'majority down p1 0:stop,1:partition bound=3000',
    'majority downed p1',
    call(2, 'b'),
    ...outcome,
    'majority up p1',
    'majority settled p1',
    ...done,
  ];
  const ok = check(phase(['acqerr 2 b L QUORUM_LOST waited=900 acquire of "L" could not hold a majority']), store([10, 'a']));
  t.is(totalViolations(ok), 0, ok.details.join('; '));
  t.deepEqual(ok.quorum?.majority, { phases: 1, calls: 1, quorumLost: 1, otherErrors: 0, maxWaitMs: 900, boundMs: 3000 });
  t.is(ok.longestWaitMs, 120);
  t.is(ok.errorCodes.QUORUM_LOST, 1);
  t.is(check(phase(['acqerr 2 b L QUORUM_LOST waited=3500 late']), store([10, 'a'])).violations.quorum, 1, 'past the bound');
  t.is(check(phase(['acqerr 2 b L REDIS_ERROR waited=10 x']), store([10, 'a'])).violations.quorum, 1, 'another code');
  const granted = check(phase(['enter 2 b L 11 waited=50', ...leave(2, 'b', 11)]), store([10, 'a'], [11, 'b']));
  t.is(granted.violations.quorum, 1, 'a grant without a majority');
});
