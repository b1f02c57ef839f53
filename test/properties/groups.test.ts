/**
 * Fair share across groups (DESIGN §7) as properties, on one real Redis, through the client family
 * FAIRLOCK_TEST_CLIENT names (node-redis 4 on `npm test`'s first Node, ioredis 5 on its second):
 * - the group model check of the shared suite (suite.ts groupModelSuite): every step of randomized
 *   sequences against GroupRule (subjects.ts), on the lock and the semaphore with and without perGroup;
 *   each step also checks the limits, that a capped group stalls nobody and that tryAcquire never barges;
 * - the limits under contention from three sessions; round robin and bounded wait with equal weights
 *   (late arrivals included, and groups at their cap); equal permit shares with weights; one group, or
 *   none, is exactly the FIFO of the rule before groups (grantReady).
 * test/groups.test.ts has the worked examples (rotation order, the default group's turn, a capped group
 * passed over, a big head that stops all, tryAcquire with a parked waiter). Order comes from fencing
 * tokens and inspect(), never from clocks; every wait is bounded.
 */
import test, { type ExecutionContext } from 'ava';
import type { FairLocks, Lease } from '../../src/index.js';
import { newLocks } from '../helpers/cleanup.js';
import { whenQueued } from '../helpers/queued.js';
import { newPrefix } from '../helpers/redis.js';
import { familyClient, groupModelSuite, LEASE_BASE, labelOf, seeded } from './suite.js';
import { GROUP_SUBJECTS, groupHandle, grantReady, type GroupSubject, type Req } from './subjects.js';
import { standaloneTarget } from './target.js';

const target = standaloneTarget();
for (const subject of GROUP_SUBJECTS) groupModelSuite(subject, { sequences: 3, steps: 50 }, target);

const opts = { heartbeatMs: 200, livenessMs: 2_000, leaseMs: 60_000 };
const lockOf: GroupSubject = GROUP_SUBJECTS[0]!;
const semaphore = (permits: number, perGroup?: number): GroupSubject => ({ title: `semaphore(${permits})`, kind: 'semaphore', permits, perGroup, weights: [1] });

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p, new Promise<'pending'>((res) => (timer = setTimeout(() => res('pending'), ms)))]);
  clearTimeout(timer);
  if (r === 'pending') throw new Error(`${what} did not settle within ${ms} ms`);
  return r;
}

async function newGroupLocks(t: ExecutionContext): Promise<FairLocks> {
  const { client } = await familyClient(t, target);
  return newLocks(t, client, { prefix: newPrefix(), ...opts });
}

interface Grant {
  label: number;
  group: string;
  weight: number;
  token: number;
  /** Grants with a token above this one came after the request arrived. */
  after: number;
}

/**
 * Requests made one at a time on one name, each labelled by its leaseMs (LEASE_BASE + label), and
 * releases chosen from what inspect() shows. With `watch`, every release records the grants it caused
 * against each group head that was eligible and fitted the permits it freed (DESIGN §7's bounded wait).
 */
class Scenario {
  private next = 0;
  private readonly requests = new Map<number, { group: string; weight: number; lease: Promise<Lease>; after: number }>();
  private readonly leases = new Map<number, Lease>();
  private maxToken = 0;
  /** head label -> other group -> grants it saw while eligible and fitting */
  readonly waitedFor = new Map<number, Map<string, number>>();
  readonly overWaits: string[] = [];

  constructor(
    private readonly locks: FairLocks,
    private readonly subject: GroupSubject,
    private readonly name: string,
  ) {}

  private async inspect() {
    const info = await this.locks.inspect(this.name);
    for (const h of info.holders) this.maxToken = Math.max(this.maxToken, h.token);
    return info;
  }

  /** One request; resolves once Redis has it queued (or granted, when `expect` says so). */
  async arrive(group: string | undefined, weight = 1, expect: 'queued' | 'granted' = 'queued'): Promise<number> {
    await this.inspect();
    const label = this.next++;
    const q = whenQueued();
    const lease = groupHandle(this.locks, this.name, this.subject).acquire(weight, { group, leaseMs: LEASE_BASE + label, onQueued: q.onQueued, timeoutMs: 60_000 });
    lease.catch(() => undefined);
    this.requests.set(label, { group: group ?? '', weight, lease, after: this.maxToken });
    const first = await within(Promise.race([q.queued.then(() => 'queued' as const), lease.then(() => 'granted' as const)]), 15_000, `request ${label}`);
    if (first !== expect) throw new Error(`request ${label} (${group ?? 'default'}) was ${first}, expected ${expect}`);
    return label;
  }

  async burst(group: string | undefined, n: number, weight = 1): Promise<void> {
    for (let i = 0; i < n; i++) await this.arrive(group, weight);
  }

  private async leaseOf(label: number): Promise<Lease> {
    const lease = this.leases.get(label) ?? (await within(this.requests.get(label)!.lease, 15_000, `the grant of ${label}`));
    this.leases.set(label, lease);
    this.maxToken = Math.max(this.maxToken, lease.token);
    return lease;
  }

  /** Releases the oldest holder (of `group` when given); false when there is none. */
  async releaseOldest(watch = false, group?: string): Promise<boolean> {
    const before = await this.inspect();
    const victim = before.holders.find((h) => group === undefined || (h.group ?? '') === group);
    if (!victim) return false;
    await (await this.leaseOf(labelOf(victim.id))).release();
    if (!watch) return true;
    const after = await this.inspect();
    const granted = after.holders.filter((h) => !before.holders.some((b) => b.id === h.id)).map((h) => ({ label: labelOf(h.id), group: h.group ?? '' }));
    const held = new Map<string, number>();
    for (const h of before.holders) if (h.id !== victim.id) held.set(h.group ?? '', (held.get(h.group ?? '') ?? 0) + h.weight);
    const free = this.subject.permits - [...held.values()].reduce((s, n) => s + n, 0);
    const cap = this.subject.perGroup;
    const seen = new Set<string>();
    for (const w of before.queue) {
      const g = w.group ?? '';
      if (seen.has(g)) continue; // heads only
      seen.add(g);
      const label = labelOf(w.id);
      if (granted.some((x) => x.label === label)) continue;
      const eligible = (cap === undefined || (held.get(g) ?? 0) + w.weight <= cap) && w.weight <= free;
      if (!eligible) continue;
      const counts = this.waitedFor.get(label) ?? new Map<string, number>();
      this.waitedFor.set(label, counts);
      for (const x of granted) {
        if (x.group === g) continue;
        const n = (counts.get(x.group) ?? 0) + 1;
        counts.set(x.group, n);
        if (n > 1) this.overWaits.push(`request ${label} (group "${g}"), at the head of its group and fitting, saw grant ${n} of group "${x.group}" (request ${x.label})`);
      }
    }
    return true;
  }

  async drain(watch = false): Promise<void> {
    for (let i = 0; i < 500 && (await this.releaseOldest(watch)); i++);
    const info = await this.inspect();
    if (info.queue.length > 0 || info.holders.length > 0) throw new Error('the scenario did not drain');
  }

  /** Every request's grant, in token (grant) order. */
  async grants(): Promise<Grant[]> {
    const out: Grant[] = [];
    for (const [label, r] of this.requests) out.push({ label, group: r.group, weight: r.weight, after: r.after, token: (await this.leaseOf(label)).token });
    return out.sort((a, b) => a.token - b.token);
  }
}

/**
 * Round robin (DESIGN §7): for each pair of groups, over the grants made while both had requests
 * queued (from the later one's first arrival to the earlier one's last grant), the two counts never
 * differ by more than one. Each group's requests arrive in one burst, so it is backlogged from its
 * first arrival to its last grant.
 */
function roundRobinBreaks(grants: Grant[], skip: ReadonlySet<string>): string[] {
  const groups = [...new Set(grants.map((g) => g.group))].filter((g) => !skip.has(g));
  const out: string[] = [];
  for (const x of groups) {
    for (const y of groups) {
      if (x >= y) continue;
      const of = (g: string) => grants.filter((r) => r.group === g);
      const start = Math.max(Math.min(...of(x).map((r) => r.after)), Math.min(...of(y).map((r) => r.after)));
      const end = Math.min(Math.max(...of(x).map((r) => r.token)), Math.max(...of(y).map((r) => r.token)));
      let nx = 0;
      let ny = 0;
      for (const r of grants) {
        if (r.token <= start || r.token > end) continue;
        if (r.group === x) nx++;
        if (r.group === y) ny++;
        if (Math.abs(nx - ny) > 1) {
          out.push(`"${x}" ${nx} and "${y}" ${ny} grants at token ${r.token}`);
          break;
        }
      }
    }
  }
  return out;
}

for (const subject of [lockOf, semaphore(2)]) {
  test(`${subject.title}: round robin, equal weights: while groups stay backlogged no one gets two grants more than another; late groups join the turns`, async (t) => {
    const locks = await newGroupLocks(t);
    const s = new Scenario(locks, subject, 'rr');
    for (let i = 0; i < subject.permits; i++) await s.arrive(undefined, 1, 'granted');
    await s.burst('a', 7);
    await s.burst('b', 5);
    await s.burst('c', 2);
    await s.burst(undefined, 3);
    for (let i = 0; i < 4; i++) await s.releaseOldest();
    await s.burst('d', 6); // joins while the others take turns
    for (let i = 0; i < 3; i++) await s.releaseOldest();
    await s.burst('e', 3);
    await s.drain();
    const grants = await s.grants();
    t.log(grants.map((g) => g.group || '_').join(''));
    t.deepEqual(roundRobinBreaks(grants.slice(subject.permits), new Set()), []);
  });

  test(`${subject.title}: bounded wait, equal weights: a head of its group waits for at most one grant of each other group`, async (t) => {
    const locks = await newGroupLocks(t);
    const s = new Scenario(locks, subject, 'bw');
    for (let i = 0; i < subject.permits; i++) await s.arrive(undefined, 1, 'granted');
    await s.burst('a', 5);
    await s.burst('b', 4);
    await s.burst('c', 1);
    for (let i = 0; i < 3; i++) await s.releaseOldest(true);
    await s.burst('d', 4);
    await s.burst(undefined, 2);
    for (let i = 0; i < 3; i++) await s.releaseOldest(true);
    await s.burst('c', 2); // active again
    await s.drain(true);
    t.true(s.waitedFor.size > 10, 'heads were watched');
    t.deepEqual(s.overWaits, []);
  });
}

test('semaphore(3, perGroup 2): bounded wait when a capped group comes back: it takes one turn, not the turns it missed', async (t) => {
  const subject = semaphore(3, 2);
  const locks = await newGroupLocks(t);
  const s = new Scenario(locks, subject, 'cap');
  await s.arrive('a', 1, 'granted');
  await s.arrive('a', 1, 'granted');
  await s.burst('a', 4); // a at its cap: parked
  await s.arrive('b', 1, 'granted');
  await s.burst('b', 5);
  await s.burst('c', 6);
  // b and c take turns on the permit a leaves free; a keeps its place meanwhile
  for (let i = 0; i < 6; i++) await s.releaseOldest(true, 'b') || (await s.releaseOldest(true, 'c'));
  // a's grants end one by one: each time a is served once, then c and b have their turns
  for (let i = 0; i < 3; i++) await s.releaseOldest(true, 'a');
  await s.drain(true);
  t.deepEqual(s.overWaits, []);
});

test('semaphore(3), weights: a group asking 3 permits at a time and two asking 1 get equal permit shares (within 10%) while all are backlogged', async (t) => {
  const subject = semaphore(3);
  const locks = await newGroupLocks(t);
  const s = new Scenario(locks, subject, 'w');
  await s.arrive(undefined, 3, 'granted');
  await s.burst('a', 12, 3);
  await s.burst('b', 36);
  await s.burst('c', 36);
  await s.drain(); // the oldest grant ends first: every grant is held for the same number of releases
  const grants = (await s.grants()).slice(1);
  // the window: until the first group has nothing more queued (its last grant)
  const end = Math.min(...['a', 'b', 'c'].map((g) => Math.max(...grants.filter((r) => r.group === g).map((r) => r.token))));
  const permits = new Map<string, number>();
  for (const r of grants) if (r.token <= end) permits.set(r.group, (permits.get(r.group) ?? 0) + r.weight);
  const total = [...permits.values()].reduce((x, y) => x + y, 0);
  t.log(`permits granted while all three were backlogged: ${JSON.stringify(Object.fromEntries(permits))} of ${total}`);
  t.true(total >= 90, 'a long enough run');
  for (const g of ['a', 'b', 'c']) {
    const share = (permits.get(g) ?? 0) / total;
    t.true(Math.abs(share - 1 / 3) <= 0.1 / 3, `group ${g}: ${(share * 100).toFixed(1)}% of the permits, not within 10% of a third`);
  }
});

/**
 * With one named group, or none, the grants are exactly those of the rule before groups: the model
 * of the property suites (grantReady: from the head while the head fits), step by step.
 */
for (const group of [undefined, 'solo']) {
  test(`semaphore(3) with weights 1-3, ${group ? 'one named group' : 'no group'}: exactly the FIFO of the rule before groups, at every step`, async (t) => {
    const subject: GroupSubject = { title: 'semaphore(3)', kind: 'semaphore', permits: 3, weights: [1, 2, 1, 3] };
    const locks = await newGroupLocks(t);
    const name = `fifo-${group ?? 'none'}`;
    const handle = groupHandle(locks, name, subject);
    const seed = 1 + Math.floor(Math.random() * 2 ** 31);
    const rnd = seeded(seed);
    const req = (weight: number): Req => ({ kind: 'semaphore', permits: 3, weight });
    const weights = new Map<number, number>();
    let held: number[] = [];
    let queue: number[] = [];
    const pending = new Map<number, { lease: Promise<Lease>; abort: AbortController }>();
    const leases = new Map<number, Lease>();
    const settle = () => {
      const n = grantReady(held.map((l) => req(weights.get(l)!)), queue.map((l) => req(weights.get(l)!))).length;
      held = [...held, ...queue.slice(0, n)];
      queue = queue.slice(n);
    };
    for (let step = 0, label = 0; step < 40; step++) {
      const r = rnd();
      if (held.length > 0 && (r < 0.35 || queue.length >= 8)) {
        const l = held[Math.floor(rnd() * held.length)]!;
        const lease = leases.get(l) ?? (await within(pending.get(l)!.lease, 15_000, `the grant of ${l}`));
        await lease.release();
        held = held.filter((x) => x !== l);
        settle();
      } else if (queue.length > 0 && r < 0.45) {
        const l = queue[Math.floor(rnd() * queue.length)]!;
        pending.get(l)!.abort.abort();
        await within(pending.get(l)!.lease.catch(() => undefined), 15_000, `the abort of ${l}`);
        queue = queue.filter((x) => x !== l);
        settle();
      } else {
        const l = label++;
        const weight = subject.weights[Math.floor(rnd() * subject.weights.length)]!;
        weights.set(l, weight);
        queue.push(l);
        settle();
        const expect = held.includes(l) ? 'granted' : 'queued';
        const q = whenQueued();
        const abort = new AbortController();
        const lease = handle.acquire(weight, { group, leaseMs: LEASE_BASE + l, onQueued: q.onQueued, signal: abort.signal });
        lease.catch(() => undefined);
        const first = await within(Promise.race([q.queued.then(() => 'queued' as const), lease.then(() => 'granted' as const)]), 15_000, `request ${l}`);
        t.is(first, expect, `seed ${seed}: request ${l}`);
        if (first === 'granted') leases.set(l, await lease);
        else pending.set(l, { lease, abort });
      }
      const info = await locks.inspect(name);
      const ok = t.deepEqual(
        { held: info.holders.map((h) => labelOf(h.id)), queue: info.queue.map((w) => labelOf(w.id)) },
        { held, queue },
        `seed ${seed}, step ${step}`,
      );
      if (!ok) return;
    }
    // Only the ones still queued give up: one the model holds may have been granted in Redis with its
    // wake-up still on the way, and an abort then releases it and rejects the lease awaited below
    // (Node 24 beside the soak: LockAbortedError).
    for (const [l, w] of pending) if (!held.includes(l)) w.abort.abort();
    for (const l of held) await (leases.get(l) ?? (await within(pending.get(l)!.lease, 15_000, `the grant of ${l}`))).release();
  });
}

test('limits under contention from three sessions: weights held ≤ permits and per group ≤ perGroup at every moment', async (t) => {
  const { client } = await familyClient(t, target);
  const prefix = newPrefix();
  const sessions = [0, 1, 2].map(() => newLocks(t, client, { prefix, ...opts }));
  const permits = 4;
  const perGroup = 2;
  const groups = [undefined, 'a', 'b', 'c'];
  const held = new Map<string, number>();
  let total = 0;
  const broken: string[] = [];
  const tokens = new Set<number>();
  let grants = 0;
  const worker = async (w: number) => {
    const sem = sessions[w % 3]!.semaphore('limits', { permits, perGroup });
    for (let round = 0; round < 5; round++) {
      const group = groups[(w + round) % groups.length];
      const weight = 1 + ((w * 3 + round) % 2);
      const lease = await sem.acquire({ group, weight, timeoutMs: 60_000 });
      const g = group ?? '';
      // counted from its grant to before its release is sent: inside the interval Redis holds it
      total += weight;
      held.set(g, (held.get(g) ?? 0) + weight);
      if (total > permits) broken.push(`${total} permits held`);
      if (held.get(g)! > perGroup) broken.push(`group "${g}" holds ${held.get(g)}`);
      tokens.add(lease.token);
      grants++;
      await new Promise((r) => setTimeout(r, 2 + ((w * 5 + round) % 6)));
      total -= weight;
      held.set(g, held.get(g)! - weight);
      await lease.release();
    }
  };
  await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
  t.deepEqual(broken, []);
  t.is(tokens.size, grants, 'every grant has its own token');
  const info = await sessions[0]!.inspect('limits');
  t.is(info.holders.length + info.queue.length, 0);
});

/**
 * A group whose list empties after a grant stays a member of the rotation with the pass it reached
 * until it comes to the front (engine.lua activate): were it to leave at once and join again at the
 * virtual time, below that pass, it would come back ahead of groups it already passed, and a tenant
 * with two workers re-queueing while the other holds would take every turn of a lock.
 */
test('lock: a group that empties and queues again does not overtake the groups it already passed (a tenant re-queuing between its grants starves no one)', async (t) => {
  const locks = await newGroupLocks(t);
  const s = new Scenario(locks, lockOf, 'requeue');
  await s.arrive('b', 1, 'granted');
  await s.burst('c', 3);
  await s.arrive('b'); // b and c active, c first
  await s.releaseOldest(true); // c's first turn; c counts on from pass 1
  await s.releaseOldest(true); // b's turn (pass 0): b's list is empty, b leaves the rotation
  for (let i = 0; i < 4; i++) {
    await s.arrive('b'); // b's other worker queues again, while b holds
    await s.releaseOldest(true); // must be c's turn now
  }
  await s.drain(true);
  t.deepEqual(s.overWaits, []);
});
