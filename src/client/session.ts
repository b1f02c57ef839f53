import { randomBytes } from 'node:crypto';
import { debug } from '../debug.js';
import type { ResolvedOptions } from '../options.js';
import { waiterId, type Mode } from '../protocol/keys.js';
import { Scripts } from '../protocol/scripts.js';
import type { RedisSeam } from '../redis/seam.js';
import { NO_EVENTS, type EventSink } from './event-map.js';
import { LockState, type SessionHost } from './lock-state.js';
import type { Waiter } from './waiter.js';
import { Wakeups } from './wakeups.js';

/**
 * The session of one FairLocks instance: a random id, the names it waits on or holds, one heartbeat
 * per such name (per name, not per waiter, so Redis load does not grow with waiters), and the
 * wake-up subscriber that brings grants back to its waiters (onWake) and a reconnect to its beats.
 */
export class Session implements SessionHost {
  readonly id = randomBytes(8).toString('hex');
  readonly locks = new Map<string, LockState>();
  readonly waiters = new Map<string, Waiter>();
  readonly cancels = new Set<Promise<void>>();
  readonly scripts: Scripts;
  readonly wakeups: Wakeups;
  stopped = false;
  private seq = 0;

  constructor(
    redis: RedisSeam,
    readonly options: ResolvedOptions,
    /** Where events go (FairLocks); payloads are built only when `events.wants(event)`. */
    readonly events: EventSink = NO_EVENTS,
  ) {
    this.scripts = new Scripts(redis, options.prefix);
    this.wakeups = new Wakeups(redis, options.prefix, this.id, (message) => this.onWake(message), () => this.beatAll());
  }

  nextWaiterId(leaseMs: number, autoRenew: boolean, weight: number, mode: Mode): string {
    return waiterId(this.id, ++this.seq, leaseMs, autoRenew, weight, mode);
  }

  state(name: string): LockState {
    let state = this.locks.get(name);
    if (!state) {
      state = new LockState(this, name);
      this.locks.set(name, state);
    }
    return state;
  }

  /**
   * A wake-up "waiterId token exp[ handover]" from the subscriber (a handover: from a quorum holder's
   * release, see QuorumLease). Unknown ids are stale and ignored, and so is
   * anything malformed: it arrives from the network and must never throw into the subscriber. A
   * grant it carries that never reaches a waiter is found by the next heartbeat.
   */
  onWake(message: unknown): void {
    try {
      const text = typeof message === 'string' ? message : Buffer.isBuffer(message) ? message.toString() : undefined;
      const m = text === undefined ? null : /^(\S+) (\d+) (\d+)(?: (\S+))?$/.exec(text);
      const waiter = m ? this.waiters.get(m[1]!) : undefined;
      debug('wake %s %s', text ?? typeof message, waiter ? '' : '(no such waiter)');
      waiter?.grant({ token: Number(m![2]), exp: Number(m![3]), handover: m![4] });
    } catch (err) {
      debug('wake-up ignored: %s', (err as Error)?.message);
    }
  }

  /** After the subscriber reconnects: a grant published meanwhile was lost, so look now. */
  beatAll(): void {
    for (const state of this.locks.values()) void state.beat();
  }

  stop(): void {
    this.stopped = true;
    for (const state of this.locks.values()) state.stopTimer();
  }
}
