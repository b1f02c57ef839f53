import { checkedSignal, HeldLease } from '../client/held-lease.js';
import type { Lease } from '../client/lease.js';
import { atDeadline, monotonic } from '../clock.js';
import { LockLostError, NotHolderError } from '../errors.js';
import { MAX_HANDOVER } from '../protocol/codes.js';
import { checkDuration } from '../options.js';
import { releaseGrant, type HeldGrant } from './chain.js';
import { MasterUnreachable, type Master } from './master.js';
import type { QuorumSink } from './quorum-events.js';

/** What a quorum lease needs from its quorum. */
export interface QuorumLeaseHost {
  readonly masters: readonly Master[];
  readonly majority: number;
  readonly events: QuorumSink;
  /** Calls `fn` when a master goes down; returns the unsubscribe. */
  onMasterDown(fn: (master: Master) => void): () => void;
  leaseGone(lease: QuorumLease): void;
}


/**
 * A quorum lease: grants on a majority of the masters, each a single-node lease that its master's
 * FairLocks renews. A master counts while its own lease holds (its local deadline) and it
 * acknowledged its commit (DESIGN §8, rule 5); the lease is valid while at least a majority counts,
 * so until the majority-th latest deadline of the counted masters (rule 6: the earliest deadline of
 * the majority that lasts longest).
 *
 * Not in the model, so tested: when a counted master goes down (or its lease is lost) and fewer
 * than a majority of healthy masters remain, the lease climbs upward from its highest master, waiting
 * on each in order as an acquire would, bounded by its validity, to count a majority again; its
 * `signal` aborts (LockLostError) only when the count falls below a majority.
 */
export class QuorumLease implements Lease {
  readonly grantedAt = monotonic();
  readonly kind = 'lock' as const;
  readonly weight = 1;
  readonly mode = undefined;
  readonly group = undefined;
  private leaseMs: number;
  private readonly grants: HeldGrant[];
  private controller: AbortController | undefined;
  private signalCache: AbortSignal | undefined;
  private lostError: LockLostError | undefined;
  private releasing: Promise<void> | undefined;
  private restoring: AbortController | undefined;
  /** Something changed while the climb upward ran (a master went down, a lease ended): look again after it. */
  private changedDuringRestore = false;
  private readonly unsubscribe: () => void;
  /** Fires when the proof of a grant Redis no longer names runs out (see proven). */
  private provenTimer: { cancel(): void } | undefined;

  /** @internal */
  constructor(
    private readonly host: QuorumLeaseHost,
    /** The lock's name. */
    readonly name: string,
    /** The quorum acquire's id ("quorum:seq"; each master knows its own grant by its own waiter id). */
    readonly id: string,
    /** The fencing token T: the highest any of its masters granted in its acquire. */
    readonly token: number,
    grants: HeldGrant[],
    leaseMs: number,
    /** Whether each master's FairLocks renews its grant on every heartbeat. */
    readonly autoRenew: boolean,
  ) {
    this.leaseMs = leaseMs;
    this.grants = grants;
    for (const g of grants) this.watch(g);
    this.unsubscribe = host.onMasterDown((m) => {
      if (this.grants.some((g) => g.master === m)) this.changed();
    });
  }

  /** The masters it holds now, by index (a counted one, or one whose lease has not been found lost yet). */
  get masters(): number[] {
    return this.grants.map((g) => g.master.index).sort((a, b) => a - b);
  }

  /** Aborted with a LockLostError once fewer than a majority of its masters count. Read on a resumed process, it looks at the clocks first. */
  get signal(): AbortSignal {
    if (this.signalCache) return this.signalCache;
    this.controller = new AbortController();
    return (this.signalCache = checkedSignal(this.controller, this.lostError, () => this.check()));
  }

  get held(): boolean {
    this.check();
    return !this.releasing && !this.lostError;
  }

  get lengthMs(): number {
    return this.leaseMs;
  }

  /** Until the count falls below a majority: the majority-th longest local remaining time of the counted masters. */
  get remainingMs(): number {
    return this.held ? this.validityMs() : 0;
  }

  release(): Promise<void> {
    this.releasing ??= this.doRelease();
    return this.releasing;
  }

  /** Extends every counted master's lease (one parallel round); a master that does not answer drops out once its own lease ends. */
  async extend(ms: number = this.leaseMs): Promise<void> {
    const value = checkDuration(ms, 'ms');
    this.throwIfGone();
    await Promise.all(this.counted().map((g) => g.master.extend(g.lease, value)));
    this.throwIfGone(' while extend() ran');
    this.leaseMs = value;
  }

  /** `await using`: releases. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /**
   * The majority-th longest local remaining time of the counted masters (0 below a majority).
   *
   * DESIGN §8 rule 6 says "until the earliest local deadline of the counted masters": the same
   * thing when exactly a majority counts, which is what an acquire hands over (the climb stops at M).
   * Kept as the M-th longest because a lease can count more than M for a while: a restore (below)
   * adds a master above while a master that went down still counts until its own deadline. Safety
   * needs only that M masters name this lease their holder until the end of the validity (any other
   * majority then meets one of them, which grants nobody else); the earliest deadline of all counted
   * masters would end the section early for a master that is known down and no longer needed.
   */
  private validityMs(): number {
    const now = monotonic();
    const left = this.grants.map((g) => (g.lease.held ? g.lease.remainingMs : Math.max(0, proven(g) - now))).sort((a, b) => b - a);
    return left[this.host.majority - 1] ?? 0;
  }

  /** A master went down or a lease of one ended: look again now, and once more after a climb upward under way. */
  private changed(): void {
    if (this.restoring) this.changedDuringRestore = true;
    this.check();
  }

  /** The grants whose own lease still holds. */
  private counted(): HeldGrant[] {
    return this.grants.filter((g) => g.lease.held);
  }

  /** Grants whose lease holds, on masters that are not known down: those that will go on counting. */
  private healthy(): number {
    return this.grants.filter((g) => g.lease.held && !g.master.isDown).length;
  }

  private watch(g: HeldGrant): void {
    g.lease.signal.addEventListener('abort', () => this.changed(), { once: true });
  }

  /**
   * Drops the grants whose lease ended and whose proof ran out; below a majority the lease is lost;
   * below a majority of healthy masters (one is down, or restarted empty and no longer names the
   * grant, its proof not run out yet) it climbs upward to count one again.
   *
   * A grant Redis stopped naming before its deadline (the master restarted empty) still counts until
   * that deadline: the master's restart guard grants nothing for a full lease (DESIGN §8 rule 9), so
   * nobody else can count it meanwhile, and the climb upward gets that time to restore a majority.
   */
  private check(): void {
    if (this.releasing || this.lostError) return;
    const now = monotonic();
    let nextProof = Infinity;
    for (const g of this.grants) if (!g.lease.held && proven(g) > now) nextProof = Math.min(nextProof, proven(g));
    this.provenTimer?.cancel();
    this.provenTimer = nextProof < Infinity ? atDeadline(nextProof, () => this.changed(), true) : undefined;
    for (const g of this.grants.filter((x) => !x.lease.held && proven(x) <= now)) {
      // Reading `held` may abort that lease's signal, whose listener runs check() again: only the first removes it.
      const k = this.grants.indexOf(g);
      if (k < 0) continue;
      this.grants.splice(k, 1);
      void releaseGrant(g);
    }
    if (this.grants.length < this.host.majority) {
      this.markLost(`only ${this.grants.length} of its masters still count, fewer than a majority (${this.host.majority} of ${this.host.masters.length})`);
      return;
    }
    if (this.healthy() < this.host.majority && !this.restoring) void this.restore();
  }

  /** Climbs from above its highest master, in order, until a majority of healthy masters counts or its validity ends. */
  private async restore(): Promise<void> {
    const ctl = (this.restoring = new AbortController());
    // Never past the validity: once it ends the count is below a majority anyway.
    const end = atDeadline(monotonic() + this.validityMs(), () => ctl.abort(new Error('validity ended')), true);
    try {
      const from = Math.max(...this.grants.map((g) => g.master.index)) + 1;
      for (let j = from; j < this.host.masters.length; j++) {
        if (ctl.signal.aborted || this.releasing || this.lostError) return;
        if (this.healthy() >= this.host.majority) return;
        const m = this.host.masters[j]!;
        if (m.isDown) continue;
        let lease: Lease;
        try {
          lease = await m.wait(this.name, { floor: this.token, leaseMs: this.leaseMs, autoRenew: this.autoRenew, signal: ctl.signal });
        } catch (err) {
          if (err instanceof MasterUnreachable && !ctl.signal.aborted) continue;
          return;
        }
        const g: HeldGrant = { master: m, lease, undo: m.hold() };
        // Rule 4 and 5 for the master it adds: counted once its token is at least T, or T committed to it.
        const counts = lease.token >= this.token || (await m.commit(lease, this.token));
        if (!counts || this.releasing || this.lostError) {
          await releaseGrant(g);
          if (!counts) continue;
          return;
        }
        this.grants.push(g);
        this.watch(g);
      }
    } finally {
      end.cancel();
      this.restoring = undefined;
      if (this.changedDuringRestore) {
        this.changedDuringRestore = false;
        this.check();
      }
    }
  }

  private markLost(reason: string): void {
    if (this.lostError) return;
    this.lostError = new LockLostError(`lost the quorum lock "${this.name}" (token ${this.token}): ${reason}`);
    this.controller?.abort(this.lostError);
    this.restoring?.abort(this.lostError);
    this.provenTimer?.cancel();
    this.unsubscribe();
    for (const g of this.grants.splice(0)) void releaseGrant(g);
    this.host.leaseGone(this);
    if (this.host.events.wants('lost')) this.host.events.fire('lost', this, this.lostError);
  }

  private throwIfGone(when = ''): void {
    this.check();
    if (this.lostError) throw this.lostError;
    if (this.releasing) throw new NotHolderError(`lease on "${this.name}" was released${when}`);
  }

  /**
   * Rule 8: every held master in one parallel round; a lease lost before rejects with its
   * LockLostError. Except under contention (its lowest grant came by a hand-off, so others likely
   * wait behind it): that master is released first, handing over the ids of its grants on the
   * others; when the release wakes a waiter with them, that waiter's acquire on each of those
   * masters releases this grant first (the engine's prev), as this release arriving just before it
   * would, and the heartbeat here releases whatever no acquire did. One release call fewer per
   * hand-off (README, "Quorum over independent masters"); when nobody was woken, the rest are released
   * then, one round trip later.
   */
  private async doRelease(): Promise<void> {
    const releasedAt = monotonic();
    this.check();
    this.restoring?.abort(new Error('released'));
    this.provenTimer?.cancel();
    this.unsubscribe();
    this.host.leaseGone(this);
    if (this.lostError) throw this.lostError;
    const grants = this.grants.splice(0).sort((a, b) => a.master.index - b.master.index);
    const [first, ...rest] = grants;
    // None when the first master is known down: the others would wait for its release to time out.
    const handsOver = first?.queued === true && !first.master.isDown && rest.every((g) => g.lease instanceof HeldLease);
    const handover = handsOver ? rest.map((g) => `${g.master.index}=${g.lease.id}`).join(',') : '';
    if (!first || handover === '' || handover.length > MAX_HANDOVER) {
      await Promise.all(grants.map(releaseGrant));
    } else {
      let handed = false;
      try {
        handed = await first.master.releaseHandingOver(first.lease, handover);
      } finally {
        first.undo();
      }
      if (handed) {
        for (const g of rest) {
          (g.lease as HeldLease).handOver();
          g.undo();
        }
      } else {
        await Promise.all(rest.map(releaseGrant));
      }
    }
    const events = this.host.events;
    if (events.wants('released')) events.fire('released', { name: this.name, id: this.id, token: this.token, heldMs: releasedAt - this.grantedAt });
  }
}

/** The local time until which Redis's last word proved a grant (see HeldLease.provenUntil); 0 when unknown. */
function proven(g: HeldGrant): number {
  return (g.lease as { provenUntil?: number }).provenUntil ?? 0;
}
