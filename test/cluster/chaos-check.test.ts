/**
 * The chaos checker's cluster lines (scripts/chaos-check.ts), on made-up event logs: a fault's
 * window excuses a FIFO inversion (a failover may lose a waiter's queue entry) and nothing else: a
 * grant lost without its holder learning it (held=1 under a later holder) is an overlap, a falling
 * token is flagged, a waiter with no outcome is a liveness violation; a loss the holder learned is
 * counted per fault kind as lost-and-reported.
 */
import test from 'ava';
import { check, summary, totalViolations } from '../../scripts/chaos-check.js';
import { call, done, enter, leave, queued, store } from '../helpers/chaos-log.js';

const head = ['kind lock 1', 'cluster nodes=6 durability=0'];

const fault = (kind: string, id: string) => `cluster ${kind} ${id} name=L master=7000`;
const settled = (id: string) => [`cluster back ${id}`, `cluster settled ${id}`];

test('cluster checker: a clean log with faults has no violation and counts them', (t) => {
  const log = [...head, call(1, 'a'), enter(1, 'a', 10), ...leave(1, 'a', 10), fault('kill', 'c1'), `cluster promoted c1 new=7003 after=2100ms`, ...settled('c1'),
    fault('migrate', 'c2'), call(2, 'b'), enter(2, 'b', 11), ...leave(2, 'b', 11), ...settled('c2'), ...done];
  const r = check(log, store([10, 'a'], [11, 'b']));
  t.is(totalViolations(r), 0, r.details.join('; '));
  t.deepEqual(r.cluster?.faults, { kill: 1, migrate: 1 });
  t.is(r.cluster?.durability, 0);
  t.regex(summary(r), /cluster\(durability=0\): faults kill=1 migrate=1/);
});

test('cluster checker: a FIFO inversion is excused inside a fault window only', (t) => {
  // a queued before b called, yet b got the lower token: a's queue entry was lost in a failover.
  const body = (faulted: boolean) => [
    ...head,
    call(1, 'a'),
    queued(1, 'a'),
    ...(faulted ? [fault('kill', 'c1')] : []),
    call(2, 'b'),
    queued(2, 'b'),
    enter(2, 'b', 11),
    ...leave(2, 'b', 11),
    enter(1, 'a', 12),
    ...leave(1, 'a', 12),
    ...(faulted ? settled('c1') : []),
    ...done,
  ];
  // Tokens: b 11 < a 12 although a queued first.
  const r1 = check(body(false), store([11, 'b'], [12, 'a']));
  t.is(r1.violations.fifo, 1, r1.details.join('; '));
  const r2 = check(body(true), store([11, 'b'], [12, 'a']));
  t.is(totalViolations(r2), 0, r2.details.join('; '));
});

test('cluster checker: a grant lost silently in a failover is an overlap; one its holder learned is counted as reported', (t) => {
  const log = (held: number) => [
    ...head,
    call(1, 'a'),
    enter(1, 'a', 10),
    fault('kill', 'c1'),
    call(2, 'b'),
    enter(2, 'b', 11),
    ...leave(1, 'a', 10, 1, held),
    ...leave(2, 'b', 11),
    ...settled('c1'),
    ...done,
  ];
  const silent = check(log(1), store([10, 'a'], [11, 'b']));
  t.is(silent.violations.overlap, 1, silent.details.join('; '));
  const told = check(log(0), store([10, 'a'], [11, 'b']));
  t.is(totalViolations(told), 0, told.details.join('; '));
  t.is(told.cluster?.lostReported.kill, 1);
});

test('cluster checker: a falling token is flagged even inside a fault window', (t) => {
  const log = [...head, call(1, 'a'), enter(1, 'a', 10), ...leave(1, 'a', 10), fault('failover', 'c1'), call(2, 'b'), enter(2, 'b', 9), ...leave(2, 'b', 9), ...settled('c1'), ...done];
  const r = check(log, store([10, 'a']));
  t.true(r.violations.token >= 1, r.details.join('; '));
});

test('cluster checker: a waiter left waiting across a fault is a liveness violation', (t) => {
  const log = [...head, call(1, 'a'), queued(1, 'a'), fault('partition', 'c1'), ...settled('c1'), ...done];
  const r = check(log, new Map());
  t.is(r.violations.liveness, 1, r.details.join('; '));
});
