/**
 * The properties every primitive of the queue engine keeps, as one suite built from a Subject
 * (subjects.ts): the lock, semaphore(1), semaphore(3) with mixed weights, the read-write lock.
 * Each test file calls `propertySuite(subject)` once. Order is decided from Redis (inspect(), tokens),
 * never by comparing clocks; every wait is bounded.
 */
import { setMaxListeners } from 'node:events';
import avaTest, { type ExecutionContext } from 'ava';
import { FairLocks, type Lease, type LockInfo, LockAbortedError, LockTimeoutError } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { spawnChild } from '../helpers/children.js';
import { newLocks, scopeOf } from '../helpers/cleanup.js';
import type { RedisClientLike } from '../../src/redis/seam.js';
import { whenQueued } from '../helpers/queued.js';
import { newPrefix } from '../helpers/redis.js';
import { describeReq, grantReady, GroupRule, groupHandle, handleFor, type GroupSubject, type ModelView, type Req, type Subject } from './subjects.js';
import { standaloneTarget, type Target } from './target.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `p` settles, or with 'pending' after `ms` (bounded). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p, new Promise<'pending'>((res) => (timer = setTimeout(() => res('pending'), ms)))]);
  clearTimeout(timer);
  return r;
}


/** The lock names the suite's tests use (a cluster target spreads them over its masters). */
export const SUITE_NAMES = ['fifo', 'excl', 'b', 'g', 'r', 'tok', 'w', 'np2', 'np20', 'live'] as const;

/** `target`: where it runs (default: one Redis of the file's own, or REDIS_URL). */
export function propertySuite(subject: Subject, target: Target = standaloneTarget()): void {
  const test = target.test ?? avaTest;
  const title = (what: string) => `${subject.title}${target.label}: ${what}`;
  const n = (base: (typeof SUITE_NAMES)[number]) => target.name(base);
  // livenessMs is 25 heartbeats: no test here waits on a liveness timeout (the SIGKILL test gives its
  // children their own), and with 1 s a heartbeat held up on a loaded CI machine (Valkey cluster,
  // ioredis) dropped a live waiter from the queue and let the one behind it through.
  const opts = { heartbeatMs: 200, livenessMs: 5_000, leaseMs: 10_000 };

  /** Queues requests one after another behind `held` (each in the Redis queue before the next is made). */
  async function queueUp(locks: FairLocks, name: string, reqs: readonly Req[], options: { timeoutMs?: number; signal?: AbortSignal } = {}) {
    const out: Promise<Lease>[] = [];
    for (const r of reqs) {
      const q = whenQueued();
      const p = handleFor(locks, name, r).acquire({ ...options, onQueued: q.onQueued });
      p.catch(() => undefined);
      const first = await Promise.race([q.queued.then(() => 'queued' as const), p.then(() => 'granted' as const)]);
      if (first !== 'queued') throw new Error(`${describeReq(r)} was granted at once although it should have queued`);
      out.push(p);
    }
    return out;
  }

  test(title('grants follow the queue exactly as the rule says: from the head while the head fits'), async (t) => {
    const prefix = newPrefix();
    const locks = newLocks(t, target.client, { prefix, ...opts });
    const name = n('fifo');
    const reqs = Array.from({ length: 10 }, (_, i) => subject.request(i));
    const blocker = await handleFor(locks, name, subject.blocker).acquire();
    const pending = await queueUp(locks, name, reqs, { timeoutMs: 60_000 });
    // The model: who holds and who waits, from the rule alone.
    let heldIdx: number[] = [];
    let waiting = reqs.map((_, i) => i);
    const leases = new Map<number, Lease>();
    const step = async (why: string) => {
      const granted = grantReady(heldIdx.map((i) => reqs[i]!), waiting.map((i) => reqs[i]!)).map((k) => waiting[k]!);
      for (const i of granted) {
        const lease = await within(pending[i]!, 15_000);
        if (lease === 'pending') throw new Error(`${why}: request ${i} (${describeReq(reqs[i]!)}) was not granted`);
        leases.set(i, lease);
      }
      heldIdx = [...heldIdx, ...granted];
      waiting = waiting.filter((i) => !granted.includes(i));
      // Redis agrees: exactly these hold, exactly these wait, in order.
      const info = await locks.inspect(name);
      t.deepEqual(info.holders.map((h) => h.id).sort(), heldIdx.map((i) => leases.get(i)!.id).sort(), `${why}: holders`);
      t.is(info.queue.length, waiting.length, `${why}: ${waiting.length} still queued`);
      t.true(allowedNow(subject, heldIdx.map((i) => reqs[i]!)), `${why}: the held set is allowed`);
    };
    await blocker.release();
    await step('after the blocker released');
    const tokens: number[] = [];
    for (let round = 0; heldIdx.length > 0 && round < 50; round++) {
      const first = heldIdx[0]!;
      const lease = leases.get(first)!;
      tokens.push(lease.token);
      await lease.release();
      heldIdx = heldIdx.slice(1);
      await step(`after request ${first} released`);
    }
    t.is(waiting.length, 0, 'everybody was served');
    // Tokens follow the queue order, which is the grant order.
    const all = reqs.map((_, i) => leases.get(i)!.token);
    for (let i = 1; i < all.length; i++) t.true(all[i]! > all[i - 1]!, `token ${i} above token ${i - 1}`);
    t.true(all[0]! > blocker.token);
  });

  test(title('never more than allowed at once, under contention from 3 sessions'), async (t) => {
    const prefix = newPrefix();
    const name = n('excl');
    const instances = [0, 1, 2].map(() => newLocks(t, target.client, { prefix, ...opts }));
    const held: Req[] = [];
    let violations = 0;
    let grants = 0;
    const tokens = new Set<number>();
    const worker = async (w: number) => {
      for (let round = 0; round < 6; round++) {
        const r = subject.request(w * 7 + round);
        const lease = await handleFor(instances[w % 3]!, name, r).acquire({ timeoutMs: 60_000 });
        held.push(r);
        grants++;
        tokens.add(lease.token);
        if (!subject.allowed(held)) violations++;
        await sleep(3 + ((w * 5 + round) % 7));
        held.splice(held.indexOf(r), 1); // before the release is sent: this interval lies inside Redis's
        await lease.release();
      }
    };
    await Promise.all(Array.from({ length: 9 }, (_, w) => worker(w)));
    t.is(violations, 0);
    t.is(tokens.size, grants, 'every grant has its own token');
    t.is((await instances[0]!.inspect(name)).holders.length, 0);
  });

  test(title('tryAcquire and timeoutMs 0 never pass a queued waiter, even when they would fit'), async (t) => {
    const prefix = newPrefix();
    const locks = newLocks(t, target.client, { prefix, ...opts });
    const other = newLocks(t, target.client, { prefix, ...opts });
    const [heldReq, headReq, tryReq] = subject.bargeCase;
    const b = n('b');
    const holder = await handleFor(locks, b, heldReq).acquire();
    const [head] = await queueUp(locks, b, [headReq], { timeoutMs: 60_000 });
    t.is(await handleFor(other, b, tryReq).tryAcquire(), null);
    await t.throwsAsync(handleFor(other, b, tryReq).acquire({ timeoutMs: 0 }), { instanceOf: LockTimeoutError });
    const info = await locks.inspect(b);
    t.is(info.queue.length, 1, 'only the head is queued');
    t.is(info.holders.length, 1);
    await holder.release();
    const lease = await head!;
    t.true(lease.token > holder.token);
    await lease.release();
  });

  test(title('a waiter that times out or is aborted leaves no ghost, and one that held others back lets them in'), async (t) => {
    const prefix = newPrefix();
    const locks = newLocks(t, target.client, { prefix, ...opts });
    const [heldReq, headReq, behindReq] = subject.bargeCase;
    const g = n('g');
    const holder = await handleFor(locks, g, heldReq).acquire();
    const abort = new AbortController();
    const [timingOut] = await queueUp(locks, g, [headReq], { timeoutMs: 600 });
    const [aborted] = await queueUp(locks, g, [headReq], { signal: abort.signal });
    const [behind] = await queueUp(locks, g, [behindReq], { timeoutMs: 60_000 });
    await t.throwsAsync(timingOut!, { instanceOf: LockTimeoutError });
    abort.abort(new Error('changed my mind'));
    await t.throwsAsync(aborted!, { instanceOf: LockAbortedError });
    // With the two heads gone, the one behind fits now if it fits beside the holder.
    const fitsBeside = subject.allowed([heldReq, behindReq]);
    const got = await within(behind!, fitsBeside ? 15_000 : 500);
    if (fitsBeside) t.not(got, 'pending', 'granted once the heads that held it back left');
    else t.is(got, 'pending');
    const info = await locks.inspect(g);
    t.deepEqual(info.queue.map((q) => q.id).length, fitsBeside ? 0 : 1, 'no ghost of the two that gave up');
    await holder.release();
    const lease = got === 'pending' ? await behind! : got;
    await lease.release();
    t.is((await locks.inspect(g)).holders.length, 0);
    const again = await handleFor(locks, g, subject.blocker).tryAcquire();
    t.truthy(again, 'free for anyone afterwards');
    await again?.release();
  });

  test(title('a repeated release frees nothing twice'), async (t) => {
    const prefix = newPrefix();
    const locks = newLocks(t, target.client, { prefix, ...opts });
    const scripts = new Scripts(adaptClient(target.client), prefix);
    const r = n('r');
    const keys = lockKeys(prefix, r);
    const [heldReq, headReq] = subject.bargeCase;
    const a = await handleFor(locks, r, heldReq).acquire();
    const b = subject.allowed([heldReq, heldReq]) ? await handleFor(locks, r, heldReq).acquire() : undefined;
    const queued = await queueUp(locks, r, [headReq, headReq, headReq], { timeoutMs: 60_000 });
    await a.release();
    for (let i = 0; i < 3; i++) t.is((await scripts.release(keys, a.id)).kind, 'already');
    t.is((await scripts.cancel(keys, a.id)).kind, 'already');
    const held = [...(b ? [heldReq] : [])];
    const expected = grantReady(held, [headReq, headReq, headReq]).length;
    const info = await locks.inspect(r);
    t.is(info.holders.length, held.length + expected, 'only what one release frees was granted');
    t.is(info.queue.length, 3 - expected);
    await b?.release();
    for (const p of queued) await (await p).release();
  });

  test(title('tokens strictly increase in grant order, whatever the request'), async (t) => {
    const prefix = newPrefix();
    const locks = newLocks(t, target.client, { prefix, ...opts });
    let last = 0;
    for (let i = 0; i < 12; i++) {
      const lease = await handleFor(locks, n('tok'), subject.request(i)).acquire();
      t.true(lease.token > last, `grant ${i} (${describeReq(subject.request(i))})`);
      last = lease.token;
      await lease.release();
    }
  });

  test(title('a lost wake-up (subscriber killed at the hand-off) is recovered by the heartbeat'), async (t) => {
    const prefix = newPrefix();
    const w = n('w');
    const locks = newLocks(t, target.client, { prefix, ...opts });
    const waiterSide = newLocks(t, await target.open(t), { prefix, ...opts });
    const holder = await handleFor(locks, w, subject.blocker).acquire();
    const [waiting] = await queueUp(waiterSide, w, [subject.request(0)], { timeoutMs: 60_000 });
    await target.killSubscribers(t);
    await holder.release();
    const lease = await within(waiting!, 20_000);
    t.not(lease, 'pending');
    if (lease !== 'pending') await lease.release();
  });

  test(title('no polling: Redis work while waiters wait does not grow with their number'), async (t) => {
    const prefix = newPrefix();
    const own = await target.own(t); // its own server: the other tests' calls would count
    const locks = newLocks(t, own.client, { prefix, ...opts });
    const count = async (waiters: 2 | 20) => {
      const name = n(`np${waiters}`);
      const h = await handleFor(locks, name, subject.blocker).acquire();
      const abort = new AbortController();
      setMaxListeners(waiters + 5, abort.signal); // one signal for all the waiters of this test
      const queued = await queueUp(locks, name, Array.from({ length: waiters }, (_, i) => subject.request(i)), { signal: abort.signal });
      await sleep(2 * opts.heartbeatMs);
      const before = await own.evalCalls();
      await sleep(1_200);
      const calls = (await own.evalCalls()) - before;
      abort.abort();
      await Promise.allSettled(queued);
      await h.release();
      return calls;
    };
    const few = await count(2);
    const many = await count(20);
    t.log(`script calls in 1.2 s: ${few} with 2 waiters, ${many} with 20`);
    // One heartbeat per name per session (plus the holder's own renewals), not one per waiter.
    t.true(many <= few + 4, `${many} calls with 20 waiters vs ${few} with 2`);
  });

  test(title('liveness: SIGKILL of the holder and of the head waiter; the next waiter is granted'), async (t) => {
    const prefix = newPrefix();
    const childOpts = { heartbeatMs: 200, livenessMs: 1_000, leaseMs: 1_500 };
    const live = n('live');
    const [c0, c1, c2] = await Promise.all([0, 1, 2].map(() => spawnChild(t, target.url, prefix, childOpts)));
    c0!.send({ op: 'acquire', req: 'h', name: live, request: subject.blocker, timeoutMs: 60_000 });
    await c0!.expect('h', 'granted', 30_000);
    c1!.send({ op: 'acquire', req: 'head', name: live, request: subject.blocker, timeoutMs: 60_000 });
    await c1!.expect('head', 'queued', 30_000);
    c2!.send({ op: 'acquire', req: 'next', name: live, request: subject.request(1), timeoutMs: 60_000 });
    await c2!.expect('next', 'queued', 30_000);
    await Promise.all([c0!.stop(), c1!.stop()]);
    const g = await c2!.expect('next', 'granted', 30_000);
    t.is(g.ev, 'granted');
    const h = c0!.events.find((e) => e.ev === 'granted');
    if (g.ev === 'granted' && h?.ev === 'granted') t.true(g.token > h.token, 'the token rises past the dead holder\'s');
  });
}

function allowedNow(subject: Subject, held: Req[]): boolean {
  return subject.allowed(held);
}

/** A seeded generator (mulberry32): the same seed makes the same sequence. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The client the in-process group suites lock through: on one Redis, the family FAIRLOCK_TEST_CLIENT
 * names (`npm test`: node-redis 4 on its first Node, ioredis 5 on the second), else the target's own.
 */
export async function familyClient(t: ExecutionContext, target: Target): Promise<{ client: RedisClientLike; family: string }> {
  const id = process.env.FAIRLOCK_TEST_CLIENT ?? 'redis4';
  if (!target.url.startsWith('redis://') || id === 'redis4') return { client: target.client, family: 'node-redis 4' };
  const { clientFamilies } = await import('../helpers/clients.js'); // only then: it loads every client library
  const family = clientFamilies(target.url).find((f) => f.id === id);
  if (!family) throw new Error(`FAIRLOCK_TEST_CLIENT=${id}: no such client family`);
  const c = await family.connect();
  scopeOf(t).add(() => c.close());
  return { client: c.client, family: c.family };
}

/** Base of the leaseMs of the group suites' requests: the lease names the request in its id. */
export const LEASE_BASE = 600_000;
/** The request label a waiter or holder id carries ("session:seq:leaseMs:renew:weight:mode"). */
export const labelOf = (id: string): number => Number(id.split(':')[2]) - LEASE_BASE;

/** inspect() as the model's view (groups as strings, '' the default group; a name Redis does not know has all `permits` free). */
export function viewOf(info: LockInfo, permits: number): ModelView {
  return {
    holders: info.holders.map((h) => ({ label: labelOf(h.id), group: h.group ?? '', weight: h.weight })),
    queue: info.queue.map((w) => ({ label: labelOf(w.id), group: w.group ?? '', weight: w.weight })),
    groups: info.groups.map((g) => ({ group: g.group ?? '', held: g.held, waiting: g.waiting, capped: g.capped })),
    available: info.available ?? permits,
  };
}

/**
 * DESIGN §7's limits and "a group at its cap never stalls another eligible group", read from one
 * inspect() of a settled name (no call in flight): weights held within the permits and each group
 * within perGroup; a group reported capped really is (its head would pass perGroup); and in rotation
 * order, the first group whose head is not held back by its cap does not fit the free permits (else
 * the rule would have granted it: nothing that is only capped stands in its way). Returns what broke.
 */
export function groupInvariants(v: ModelView, permits: number, perGroup: number | undefined): string[] {
  const broken: string[] = [];
  const used = v.holders.reduce((s, h) => s + h.weight, 0);
  if (used > permits) broken.push(`${used} permits held of ${permits}`);
  const held = new Map<string, number>();
  for (const h of v.holders) held.set(h.group, (held.get(h.group) ?? 0) + h.weight);
  for (const [g, n] of held) if (perGroup !== undefined && n > perGroup) broken.push(`group "${g}" holds ${n} > perGroup ${perGroup}`);
  const heads = new Map<string, number>(); // group -> its head's weight, in rotation order
  for (const w of v.queue) if (!heads.has(w.group)) heads.set(w.group, w.weight);
  for (const [g, w] of heads) {
    const capped = perGroup !== undefined && (held.get(g) ?? 0) + w > perGroup;
    if (v.groups.find((x) => x.group === g)?.capped && !capped) broken.push(`group "${g}" is reported capped, but its head (weight ${w}) fits under perGroup`);
    if (capped) continue;
    if (w <= v.available) broken.push(`group "${g}"'s head (weight ${w}) fits the ${v.available} free permits but waits behind capped groups`);
    break;
  }
  return broken;
}

/**
 * The group rule's model check: randomized sequences of arrivals (acquire, tryAcquire, acquire with a
 * short timeout), releases and aborts in the default group and three named ones, on `subject`; after
 * every step inspect() must be what GroupRule (subjects.ts) says: the holders with their groups in
 * token order, the queue group by group in rotation order, the groups with their capped flags. Each
 * step also checks groupInvariants, that a tryAcquire while anybody is queued is null, and at the end
 * that grants inside each group came in arrival order (tokens). Steps run one after another, each
 * settled in Redis before the next (no step races another); `FAIRLOCK_GROUP_SEED` replays a sequence.
 */
export function groupModelSuite(subject: GroupSubject, options: { sequences: number; steps: number }, target: Target = standaloneTarget()): void {
  const test = target.test ?? avaTest;
  const opts = { heartbeatMs: 200, livenessMs: 2_000, leaseMs: 60_000 };
  test(`${subject.title}${target.label}: every step leaves Redis as the group model says`, async (t) => {
    const { client, family } = await familyClient(t, target);
    const locks = newLocks(t, client, { prefix: newPrefix(), ...opts });
    const fixed = Number(process.env.FAIRLOCK_GROUP_SEED);
    const seeds = Number.isInteger(fixed) && fixed > 0 ? [fixed] : Array.from({ length: options.sequences }, () => 1 + Math.floor(Math.random() * 2 ** 31));
    let steps = 0;
    for (const seed of seeds) steps += await runGroupSequence(t, locks, subject, seed, options.steps, target.name(`gm${seed}`));
    t.log(`${family}: ${seeds.length} sequences (seeds ${seeds.join(', ')}), ${steps} steps checked`);
  });
}

async function runGroupSequence(t: ExecutionContext, locks: FairLocks, subject: GroupSubject, seed: number, count: number, name: string): Promise<number> {
  const rnd = seeded(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const handle = groupHandle(locks, name, subject);
  const model = new GroupRule(subject.permits, subject.perGroup);
  const waiting = new Map<number, { lease: Promise<Lease>; abort: AbortController }>();
  const leases = new Map<number, Lease>();
  const groupOf = new Map<number, string>();
  const history: string[] = [];
  let next = 0;
  let checked = 0;
  let lastQueued = 0;
  const fail = (why: string): never => {
    throw new Error(`${subject.title}, seed ${seed} (FAIRLOCK_GROUP_SEED=${seed} replays it), after ${history.join(' ')}: ${why}`);
  };
  const settle = async <T>(p: Promise<T>, what: string): Promise<T> => {
    const r = await within(p, 15_000);
    if (r === 'pending') fail(`${what} did not settle within 15 s`);
    return r as T;
  };
  const check = async () => {
    const actual = viewOf(await locks.inspect(name), subject.permits);
    const expected = model.view();
    if (!t.deepEqual(actual, expected, `seed ${seed}, after ${history.slice(-6).join(' ')}`)) fail('inspect() is not what the model says');
    const broken = groupInvariants(actual, subject.permits, subject.perGroup);
    if (!t.deepEqual(broken, [], `seed ${seed}: DESIGN §7 invariants`)) fail(broken.join('; '));
    lastQueued = actual.queue.length;
    checked++;
  };
  const leaseOf = async (label: number) => leases.get(label) ?? (await settle(waiting.get(label)!.lease, `the grant of ${label}`));
  const arrive = async (how: 'wait' | 'timeout') => {
    const label = next++;
    const group = pick(['', '', 'a', 'a', 'b', 'c']);
    const weight = pick(subject.weights);
    groupOf.set(label, group);
    const w = { label, group, weight };
    const expected = model.acquire(w);
    history.push(`+${label}${group || '_'}${weight > 1 ? `x${weight}` : ''}${how === 'timeout' ? '(t)' : ''}`);
    const q = whenQueued();
    const abort = new AbortController();
    const timeoutMs = how === 'timeout' && expected === 'queued' ? 150 : undefined;
    const lease = handle.acquire(weight, { group: group || undefined, leaseMs: LEASE_BASE + label, onQueued: q.onQueued, signal: abort.signal, timeoutMs });
    lease.catch(() => undefined);
    const first = await settle(Promise.race([q.queued.then(() => 'queued' as const), lease.then(() => 'granted' as const)]), `the arrival of ${label}`);
    if (first !== expected) fail(`${label} was ${first}, the model says ${expected}`);
    if (first === 'granted') leases.set(label, await lease);
    else if (timeoutMs === undefined) waiting.set(label, { lease, abort });
    else {
      await check(); // queued: Redis shows it before it times out
      const err = await settle(lease.then(() => undefined, (e: unknown) => e), `the timeout of ${label}`);
      if (!(err instanceof LockTimeoutError)) fail(`${label} ended with ${String(err)} instead of timing out`);
      model.cancel(label);
      history.push(`t${label}`);
    }
  };
  const tryArrive = async () => {
    const label = next++;
    const group = pick(['', 'a', 'b', 'c']);
    const weight = pick(subject.weights);
    groupOf.set(label, group);
    const queuedBefore = lastQueued;
    const expected = model.acquire({ label, group, weight }, 'try');
    history.push(`?${label}${group || '_'}${weight > 1 ? `x${weight}` : ''}`);
    const got = await settle(handle.tryAcquire(weight, { group: group || undefined, leaseMs: LEASE_BASE + label }), `tryAcquire ${label}`);
    if (queuedBefore > 0 && got) fail(`tryAcquire (${label}) was granted while ${queuedBefore} waited: it barged`);
    if ((got ? 'granted' : 'busy') !== expected) fail(`tryAcquire ${label} was ${got ? 'granted' : 'null'}, the model says ${expected}`);
    if (got) leases.set(label, got);
  };
  const release = async (label: number) => {
    const lease = await leaseOf(label);
    model.release(label);
    history.push(`-${label}`);
    await settle(lease.release(), `the release of ${label}`);
    waiting.delete(label);
    leases.set(label, lease);
  };

  await check();
  for (let step = 0; step < count; step++) {
    const held = model.holders.map((h) => h.label);
    const queued = model.waiting().map((w) => w.label);
    const r = rnd();
    if (held.length > 0 && (r < 0.3 || queued.length >= 10)) {
      const label = pick(held);
      await release(label);
    } else if (queued.length > 0 && r < 0.42) {
      const label = pick(queued);
      const w = waiting.get(label)!;
      model.cancel(label);
      history.push(`x${label}`);
      w.abort.abort(new Error('gave up'));
      const err = await settle(w.lease.then(() => undefined, (e: unknown) => e), `the abort of ${label}`);
      if (!(err instanceof LockAbortedError)) fail(`${label} ended with ${String(err)} instead of an abort`);
      waiting.delete(label);
    } else if (r < 0.52) {
      await tryArrive();
    } else if (r < 0.6) {
      await arrive('timeout');
    } else {
      await arrive('wait');
    }
    await check();
  }
  // Drain: the oldest holder releases until nobody holds or waits.
  for (let i = 0; model.holders.length > 0 && i < 200; i++) {
    const label = model.holders[0]!.label;
    await release(label);
    await check();
  }
  if (model.waiting().length > 0) fail('waiters left after every holder released');
  // FIFO inside each group: tokens rise in arrival (label) order.
  const byGroup = new Map<string, { label: number; token: number }[]>();
  for (const [label, lease] of leases) {
    const g = groupOf.get(label)!;
    if (!byGroup.has(g)) byGroup.set(g, []);
    byGroup.get(g)!.push({ label, token: lease.token });
  }
  for (const [g, grants] of byGroup) {
    grants.sort((a, b) => a.label - b.label);
    for (let i = 1; i < grants.length; i++) {
      if (grants[i]!.token <= grants[i - 1]!.token) fail(`group "${g}": ${grants[i]!.label} was granted before ${grants[i - 1]!.label}, which arrived first`);
    }
  }
  return checked;
}
