import type { Lease } from '../client/lease.js';
import { QuorumLostError } from '../errors.js';
import { GUARD_ID } from '../protocol/codes.js';
import { MasterUnreachable, type Master } from './master.js';

/**
 * A grant on one master that a quorum acquire or lease holds; `undo` ends its probe interest.
 * `queued`: the grant came by a hand-off (the acquire waited in the queue), see QuorumLease's release.
 */
export interface HeldGrant {
  readonly master: Master;
  readonly lease: Lease;
  readonly undo: () => void;
  readonly queued?: boolean;
}

/** A waiter id as the engine takes it ("session:seq:leaseMs:renew:weight:mode"; Lua's %w is [A-Za-z0-9]). */
const WAITER_ID = /^[A-Za-z0-9]+:[A-Za-z0-9]+:\d+:[01]:\d+:[xrw]$/;

/**
 * The previous holder's grants a hand-off grant carried (its handover: "index=id" pairs), by master
 * index, those above master `from` only: the chain's next acquires on them release them first.
 * Anything malformed is left out (the text came through Redis): that grant is released by its
 * holder's heartbeat instead.
 */
export function handedOver(handover: string | undefined, from: number, masters: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const pair of (handover ?? '').split(',')) {
    const at = pair.indexOf('=');
    const index = Number(pair.slice(0, at));
    const id = pair.slice(at + 1);
    if (at > 0 && Number.isInteger(index) && index > from && index < masters && WAITER_ID.test(id) && id !== GUARD_ID) out.set(index, id);
  }
  return out;
}

/** What one climb of the chain needs. */
export interface Climb {
  readonly masters: readonly Master[];
  readonly majority: number;
  readonly name: string;
  readonly leaseMs: number;
  readonly autoRenew: boolean;
  readonly maxRestarts: number;
  /** The pause before each restart after the first. */
  readonly restartPauseMs: number;
  /** The caller gave up (timeout, abort, close): the climb rejects with its reason and gives back what it holds. */
  readonly signal: AbortSignal;
  readonly onQueued?: (master: number, position: number) => void;
}

/** The climb's result: the grants it holds (a majority, each counted) and the token T to enter with. */
export interface Climbed {
  held: HeldGrant[];
  token: number;
  restarts: number;
}

/** The reason a wait ends when what is held plus the masters left fell below a majority (rule 7). */
class Restart extends Error {}

type Pass = { kind: 'done'; token: number } | { kind: 'restart'; why: string } | { kind: 'busy' };

/**
 * The chain of DESIGN §8 (rules 3 to 7): masters in their fixed order, each waited on in turn
 * (FIFO, blocking), a master that cannot be reached skipped, never a lower one while a higher one
 * is held; holding a majority, the highest token T is committed to the held masters whose token is
 * lower, and a master counts only while its lease holds and it acknowledged. When what is held plus
 * the masters left is below a majority: everything is given back and the climb starts again at
 * master 0, at most `maxRestarts` times, then QuorumLostError.
 *
 * `mode` 'try' never waits: a busy master ends it (null), and it never restarts.
 */
export async function climb(c: Climb, mode: 'wait' | 'try'): Promise<Climbed | null> {
  let lastWhy = '';
  for (let restarts = 0; restarts <= (mode === 'try' ? 0 : c.maxRestarts); restarts++) {
    if (restarts > 1) await pause(c.restartPauseMs, c.signal);
    const held: HeldGrant[] = [];
    let outcome: Pass;
    try {
      outcome = await pass(c, mode, held);
    } catch (err) {
      giveBack(held); // the caller gave up or the acquire failed: not awaited, the caller's bound holds
      throw err;
    }
    if (outcome.kind === 'done') return { held, token: outcome.token, restarts };
    await Promise.all(held.splice(0).map(releaseGrant));
    if (outcome.kind === 'busy') return null;
    lastWhy = outcome.why;
  }
  throw new QuorumLostError(
    mode === 'try'
      ? `tryAcquire of "${c.name}" could not reach a majority (${c.majority} of ${c.masters.length}) of the masters: ${lastWhy}`
      : `acquire of "${c.name}" could not hold a majority (${c.majority} of ${c.masters.length}) of the masters after ${c.maxRestarts} restarts: ${lastWhy}`,
  );
}

/** One climb from master 0 up; `held` is filled as it goes (the caller gives it back on a restart). */
async function pass(c: Climb, mode: 'wait' | 'try', held: HeldGrant[]): Promise<Pass> {
  let floor = 0; // the highest token this pass got: the floor of each next enqueue, T once a majority is held
  let handed = new Map<number, string>(); // the previous holder's grants handed over with a hand-off grant
  let i = 0;
  const down: string[] = [];
  // Masters from `from` up that are not known to be down: a down one would only be skipped.
  const left = (from: number) => c.masters.slice(from).filter((m) => !m.isDown).length;
  const prune = () => {
    for (const h of held.filter((g) => !g.lease.held)) dropGrant(held, h);
  };
  for (;;) {
    if (c.signal.aborted) throw c.signal.reason;
    prune();
    if (held.length >= c.majority) {
      const t = floor;
      const lower = held.filter((h) => h.lease.token < t);
      if (lower.length > 0) {
        // Rule 4: one parallel round, only to the held masters whose token is below T (usually none).
        const acks = await Promise.all(lower.map((h) => h.master.commit(h.lease, t)));
        lower.forEach((h, k) => {
          if (!acks[k]) dropGrant(held, h); // rule 5: no acknowledgement, no count
        });
      }
      prune();
      if (held.length >= c.majority) return { kind: 'done', token: t };
      continue; // rule 5: otherwise upward
    }
    if (held.length + left(i) < c.majority) {
      const why = down.length > 0 ? down.join('; ') : `${held.length} held with ${left(i)} masters left`;
      return { kind: 'restart', why };
    }
    const m = c.masters[i++]!;
    if (m.isDown) {
      down.push(`master ${m.index} is down`);
      continue;
    }
    let lease: Lease | null;
    const queued = { seen: false };
    const prev = handed.get(m.index);
    try {
      lease = mode === 'try' ? await m.tryTake(c.name, { floor, prev, leaseMs: c.leaseMs, autoRenew: c.autoRenew }) : await waitOn(c, m, floor, prev, held, i, queued);
    } catch (err) {
      if (c.signal.aborted) throw c.signal.reason;
      if (err instanceof Restart) return { kind: 'restart', why: err.message };
      if (err instanceof MasterUnreachable) {
        down.push(err.message);
        continue; // rule 3: skip it
      }
      throw err; // not a reachability problem (a duplicate master, an ACL refusal, a name of another kind): the caller's to see
    }
    if (lease === null) return { kind: 'busy' };
    held.push({ master: m, lease, undo: m.hold(), queued: queued.seen });
    floor = Math.max(floor, lease.token);
    const handover = (lease as { handover?: string }).handover;
    if (handover !== undefined) handed = handedOver(handover, m.index, c.masters.length);
  }
}

/**
 * Rule 3's wait on master `m` (the chain's next index is `next`), which ends early when the caller
 * gives up or when a held master's lease is lost and what is held plus the masters left (the one
 * waited on included) falls below a majority (rule 7).
 */
async function waitOn(c: Climb, m: Master, floor: number, prev: string | undefined, held: HeldGrant[], next: number, queued: { seen: boolean }): Promise<Lease> {
  const step = new AbortController();
  const forward = () => step.abort(c.signal.reason);
  c.signal.addEventListener('abort', forward, { once: true });
  const recheck = () => {
    const alive = held.filter((h) => h.lease.held).length;
    const left = 1 + c.masters.slice(next).filter((x) => !x.isDown).length;
    if (alive + left < c.majority) step.abort(new Restart(`a held master was lost while waiting on master ${m.index}`));
  };
  const watched = held.map((h) => h.lease.signal);
  for (const s of watched) s.addEventListener('abort', recheck, { once: true });
  try {
    return await m.wait(c.name, {
      floor,
      prev,
      leaseMs: c.leaseMs,
      autoRenew: c.autoRenew,
      signal: step.signal,
      onQueued: (position) => {
        queued.seen = true;
        c.onQueued?.(m.index, position);
      },
    });
  } finally {
    c.signal.removeEventListener('abort', forward);
    for (const s of watched) s.removeEventListener('abort', recheck);
  }
}

function dropGrant(held: HeldGrant[], h: HeldGrant): void {
  const k = held.indexOf(h);
  if (k < 0) return; // dropped already (a lease's abort listener ran first)
  held.splice(k, 1);
  void releaseGrant(h);
}

/** Gives one grant back (bounded), and ends its probe interest. */
export async function releaseGrant(h: HeldGrant): Promise<void> {
  try {
    await h.master.release(h.lease);
  } finally {
    h.undo();
  }
}

/** Gives every grant back in one parallel round, unawaited. */
export function giveBack(held: HeldGrant[]): void {
  for (const h of held.splice(0)) void releaseGrant(h);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal.removeEventListener('abort', stop);
      resolve();
    }
    function stop() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal.addEventListener('abort', stop, { once: true });
  });
}
