/**
 * The primitives the property suites run against, each described by what its requests are and
 * which sets of grants may be held together. A request is plain data, so that a forked test process
 * (helpers/worker.ts) can make the same one.
 */
import type { AcquireOptions, FairLocks, Lease } from '../../src/index.js';

export type Req =
  | { kind: 'lock' }
  /** perGroup: the semaphore's cap per group (DESIGN §7), when it has one. */
  | { kind: 'semaphore'; permits: number; weight: number; perGroup?: number }
  | { kind: 'rw'; mode: 'read' | 'write' };

export interface Subject {
  title: string;
  /** The i-th request of a deterministic mix (weights or modes vary where the primitive has them). */
  request(i: number): Req;
  /** A request that excludes every other one while held. */
  blocker: Req;
  /** May these grants be held at once? */
  allowed(held: readonly Req[]): boolean;
  /**
   * A state in which a request would fit right now but a queued one does not: [held, queued head,
   * the request that fits]. For the lock nothing fits while it is held (the third one still must not pass).
   */
  bargeCase: [Req, Req, Req];
}

const lock: Req = { kind: 'lock' };
const sem = (permits: number, weight: number): Req => ({ kind: 'semaphore', permits, weight });
const rw = (mode: 'read' | 'write'): Req => ({ kind: 'rw', mode });

function weightOf(r: Req): number {
  return r.kind === 'semaphore' ? r.weight : 1;
}

export const SUBJECTS: Subject[] = [
  {
    title: 'lock',
    request: () => lock,
    blocker: lock,
    allowed: (held) => held.length <= 1,
    bargeCase: [lock, lock, lock],
  },
  {
    title: 'semaphore(1)',
    request: () => sem(1, 1),
    blocker: sem(1, 1),
    allowed: (held) => held.reduce((s, r) => s + weightOf(r), 0) <= 1,
    bargeCase: [sem(1, 1), sem(1, 1), sem(1, 1)],
  },
  {
    title: 'semaphore(3) with weights 1-3',
    request: (i) => sem(3, [1, 2, 1, 3, 2, 1, 1, 2][i % 8]!),
    blocker: sem(3, 3),
    allowed: (held) => held.reduce((s, r) => s + weightOf(r), 0) <= 3,
    bargeCase: [sem(3, 2), sem(3, 2), sem(3, 1)],
  },
  {
    title: 'read-write lock',
    request: (i) => rw((['read', 'read', 'write', 'read', 'write', 'write', 'read', 'read'] as const)[i % 8]!),
    blocker: rw('write'),
    allowed: (held) => !held.some((r) => r.kind === 'rw' && r.mode === 'write') || held.length <= 1,
    bargeCase: [rw('read'), rw('write'), rw('read')],
  },
];

export function describeReq(r: Req): string {
  return r.kind === 'lock' ? 'lock' : r.kind === 'semaphore' ? `${r.weight}/${r.permits}` : r.mode;
}

/** The handle and options that make request `r` on `name`. */
export function handleFor(locks: FairLocks, name: string, r: Req) {
  const h = r.kind === 'lock' ? locks.lock(name) : r.kind === 'semaphore' ? locks.semaphore(name, { permits: r.permits, perGroup: r.perGroup }) : locks.readWrite(name)[r.mode]();
  const extra = r.kind === 'semaphore' ? { weight: r.weight } : {};
  return {
    acquire: (o: AcquireOptions = {}): Promise<Lease> => h.acquire({ ...o, ...extra }),
    tryAcquire: (o: Omit<AcquireOptions, 'timeoutMs' | 'onQueued'> = {}): Promise<Lease | null> => h.tryAcquire({ ...o, ...extra }),
  };
}

/**
 * The engine's grant rule as a model: from the head of the queue, grant while the head fits; stop at
 * the first that does not. Returns the indexes of `queue` granted, given what is held.
 */
export function grantReady(held: readonly Req[], queue: readonly Req[]): number[] {
  const now = [...held];
  const granted: number[] = [];
  for (let i = 0; i < queue.length; i++) {
    if (!fitsModel(now, queue[i]!)) break;
    now.push(queue[i]!);
    granted.push(i);
  }
  return granted;
}

function fitsModel(held: readonly Req[], r: Req): boolean {
  if (r.kind === 'rw') {
    if (r.mode === 'write') return held.length === 0;
    return !held.some((h) => h.kind === 'rw' && h.mode === 'write');
  }
  const limit = r.kind === 'semaphore' ? r.permits : 1;
  return held.reduce((s, h) => s + weightOf(h), 0) + weightOf(r) <= limit;
}

/**
 * The grant rule of DESIGN §7 as the engine runs it (engine.lua: acquire, grant_plain, grant_groups,
 * turn_score, activate, start_groups, unpark, left_group), for a lock or a semaphore, with groups,
 * weights and a perGroup cap. Every waiter's session is alive and no lease runs out: a step is an
 * arrival (acquire or tryAcquire), a release, or a waiter leaving (timeout, abort).
 *
 * "Plain" mode while only the default group ('') queues: one FIFO list. Once a named group has to
 * queue, "group" mode (`seq` set): a list per group and a rotation ordered by score = pass + tie, pass
 * being the permits granted since the group became active counted from the virtual time `vtime`, tie
 * the turn counter (earlier turns first). The front head at its cap parks its group with its score;
 * a head that does not fit the free permits stops everyone. Group mode ends when a grant run finds
 * nothing queued nor parked.
 */
export interface ModelWaiter {
  label: number;
  group: string;
  weight: number;
}

/** A score as the engine writes it (pass + (seq mod 2^20) / 2^20), kept as its two parts. */
interface Score {
  pass: number;
  tie: number;
}

const TIE = 1_048_576;
const below = (a: Score, b: Score) => a.pass < b.pass || (a.pass === b.pass && a.tie < b.tie);

export interface ModelView {
  /** Holders in grant (token) order. */
  holders: { label: number; group: string; weight: number }[];
  /** Waiters, group by group in rotation order (plain mode: the one list). */
  queue: { label: number; group: string; weight: number }[];
  /** As inspect() reports groups: rotation order first, then groups that only hold. */
  groups: { group: string; held: number; waiting: number; capped: boolean }[];
  available: number;
}

export class GroupRule {
  readonly holders: ModelWaiter[] = [];
  private readonly lists = new Map<string, ModelWaiter[]>();
  private readonly rot = new Map<string, Score>();
  private readonly park = new Map<string, Score>();
  private freed = new Set<string>();
  /** Turns given (undefined: plain mode) and the virtual time, as the state's field g. */
  seq: number | undefined;
  vtime = 0;

  constructor(
    readonly permits: number,
    readonly perGroup?: number,
  ) {}

  private list(group: string): ModelWaiter[] {
    let l = this.lists.get(group);
    if (!l) this.lists.set(group, (l = []));
    return l;
  }

  get used(): number {
    return this.holders.reduce((s, h) => s + h.weight, 0);
  }

  heldBy(group: string): number {
    return this.holders.reduce((s, h) => s + (h.group === group ? h.weight : 0), 0);
  }

  private capped(group: string, weight: number): boolean {
    return this.perGroup !== undefined && this.heldBy(group) + weight > this.perGroup;
  }

  private fits(group: string, weight: number): boolean {
    return this.used + weight <= this.permits && !this.capped(group, weight);
  }

  private full(): boolean {
    return this.used >= this.permits;
  }

  waiting(): ModelWaiter[] {
    return [...this.lists.values()].flat();
  }

  /** The waiter `label`, if it is queued. */
  queued(label: number): ModelWaiter | undefined {
    return this.waiting().find((w) => w.label === label);
  }

  private grantPlain(): boolean {
    const q = this.list('');
    while (!this.full()) {
      const head = q[0];
      if (!head) return true;
      if (!this.fits(head.group, head.weight)) return false;
      this.holders.push(q.shift()!);
    }
    return false;
  }

  private turnScore(pass: number): Score {
    this.seq! += 1;
    return { pass, tie: this.seq! % TIE };
  }

  /** engine.lua activate: a group still a member (its list emptied) keeps its pass; a parked one stays parked. */
  private activate(group: string): void {
    if (this.park.has(group) || this.rot.has(group)) return;
    this.rot.set(group, this.turnScore(this.vtime));
  }

  private startGroups(): void {
    this.seq = 0;
    this.vtime = 0;
    if (this.list('').length > 0) this.activate('');
  }

  private unpark(): void {
    if (this.perGroup === undefined) return;
    for (const g of this.freed) {
      const s = this.park.get(g);
      if (s) {
        this.park.delete(g);
        this.rot.set(g, s);
      }
    }
    this.freed = new Set();
  }

  private front(): [string, Score] | undefined {
    let best: [string, Score] | undefined;
    for (const [g, s] of this.rot) if (!best || below(s, best[1])) best = [g, s];
    return best;
  }

  private grantGroups(): boolean {
    this.unpark();
    while (!this.full()) {
      const front = this.front();
      if (!front) {
        if (this.park.size > 0) return false;
        this.seq = undefined;
        return true;
      }
      const [group, score] = front;
      const q = this.list(group);
      const head = q[0];
      if (!head) {
        // a member with nothing queued leaves at the front
        this.rot.delete(group);
        if (score.pass > this.vtime) this.vtime = score.pass;
        continue;
      }
      if (this.capped(group, head.weight)) {
        this.rot.delete(group);
        this.park.set(group, score);
      } else if (!this.fits(group, head.weight)) {
        return false;
      } else {
        this.holders.push(q.shift()!);
        const pass = Math.max(score.pass, this.vtime); // a group back from its cap counts from the virtual time
        if (pass > this.vtime) this.vtime = pass;
        this.rot.set(group, this.turnScore(pass + head.weight));
      }
    }
    return false;
  }

  private grantReady(): boolean {
    return this.seq !== undefined ? this.grantGroups() : this.grantPlain();
  }

  /**
   * An arrival (engine.lua acquire, mode "wait" or "try"): 'granted' in this call, 'queued', or
   * 'busy' (a try that would have had to queue; it leaves nothing).
   */
  acquire(w: ModelWaiter, mode: 'wait' | 'try' = 'wait'): 'granted' | 'queued' | 'busy' {
    this.freed = new Set();
    let empty = false;
    if (this.fits(w.group, w.weight)) empty = this.grantReady();
    if (empty && this.fits(w.group, w.weight)) {
      this.holders.push(w);
      return 'granted';
    }
    if (mode === 'try') return 'busy';
    if (w.group !== '' && this.seq === undefined) this.startGroups();
    const q = this.list(w.group);
    q.push(w);
    if (q.length === 1 && this.seq !== undefined) this.activate(w.group);
    if (this.seq !== undefined) {
      this.grantGroups();
      if (this.holders.includes(w)) return 'granted';
    }
    return 'queued';
  }

  /** A holder gives its grant up. */
  release(label: number): void {
    this.freed = new Set();
    const i = this.holders.findIndex((h) => h.label === label);
    if (i < 0) throw new Error(`model: ${label} holds nothing`);
    const [h] = this.holders.splice(i, 1);
    this.freed.add(h!.group);
    this.grantReady();
  }

  /** A waiter leaves the queue (timeout, abort). */
  cancel(label: number): void {
    this.freed = new Set();
    const w = this.queued(label);
    if (!w) throw new Error(`model: ${label} is not queued`);
    const q = this.list(w.group);
    q.splice(q.indexOf(w), 1);
    if (this.seq !== undefined) this.freed.add(w.group);
    this.grantReady();
  }

  /** What inspect() reports, as the rule says it must be. */
  view(): ModelView {
    const order: [string, Score, boolean][] = [];
    if (this.seq !== undefined) {
      for (const [g, s] of this.rot) order.push([g, s, false]);
      for (const [g, s] of this.park) order.push([g, s, true]);
      order.sort((a, b) => (below(a[1], b[1]) ? -1 : below(b[1], a[1]) ? 1 : 0));
    }
    const queue = this.seq !== undefined ? order.flatMap(([g]) => this.list(g)) : this.list('');
    const queueView = queue.map((w) => ({ label: w.label, group: w.group, weight: w.weight }));
    const groups = new Map<string, { group: string; held: number; waiting: number; capped: boolean }>();
    const entry = (g: string, capped = false) => {
      let e = groups.get(g);
      if (!e) groups.set(g, (e = { group: g, held: 0, waiting: 0, capped }));
      return e;
    };
    for (const [g, , parked] of order) if (this.list(g).length > 0) entry(g, parked);
    for (const w of queue) entry(w.group).waiting++;
    for (const h of this.holders) entry(h.group).held += h.weight;
    // inspect() says capped as soon as a group's head would pass perGroup, parked by the engine or not
    if (this.perGroup !== undefined) {
      for (const e of groups.values()) {
        const head = this.list(e.group)[0];
        if (head && e.held + head.weight > this.perGroup) e.capped = true;
      }
    }
    return {
      holders: this.holders.map((h) => ({ label: h.label, group: h.group, weight: h.weight })),
      queue: queueView,
      groups: [...groups.values()].filter((g) => g.held > 0 || g.waiting > 0 || g.capped),
      available: this.permits - this.used,
    };
  }
}

/** A lock or semaphore the group model (GroupRule) runs against, and the weights its requests ask. */
export interface GroupSubject {
  title: string;
  kind: 'lock' | 'semaphore';
  permits: number;
  perGroup?: number;
  /** Weights a request picks from (all 1 for the lock). */
  weights: readonly number[];
}

export const GROUP_SUBJECTS: GroupSubject[] = [
  { title: 'lock with groups', kind: 'lock', permits: 1, weights: [1] },
  { title: 'semaphore(3) with groups, weights 1-3', kind: 'semaphore', permits: 3, weights: [1, 1, 1, 2, 3] },
  { title: 'semaphore(4, perGroup 2) with groups, weights 1-2', kind: 'semaphore', permits: 4, perGroup: 2, weights: [1, 1, 2] },
];

/** The handle of a GroupSubject on `name`, taking a group and a weight per call. */
export function groupHandle(locks: FairLocks, name: string, s: GroupSubject) {
  const h = s.kind === 'lock' ? locks.lock(name) : locks.semaphore(name, { permits: s.permits, ...(s.perGroup ? { perGroup: s.perGroup } : {}) });
  const extra = (weight: number) => (s.kind === 'semaphore' ? { weight } : {});
  return {
    acquire: (weight: number, o: AcquireOptions = {}): Promise<Lease> => h.acquire({ ...o, ...extra(weight) }),
    tryAcquire: (weight: number, o: Omit<AcquireOptions, 'timeoutMs' | 'onQueued'> = {}): Promise<Lease | null> => h.tryAcquire({ ...o, ...extra(weight) }),
  };
}
