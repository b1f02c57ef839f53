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
