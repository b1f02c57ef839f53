import { performance } from 'node:perf_hooks';
import { settledWithin } from '../bounded.js';

/**
 * The WAIT connections of durable grants. WAIT holds every later command of its connection until it
 * returns, so one shared connection would queue each confirmation behind the WAITs before it (six
 * grants confirmed one after the other against a lagging replica: six timeouts). Here:
 * - **Each connection carries at most one WAIT at a time.** They are made on demand, up to
 *   MAX_WAIT_CONNECTIONS; an idle one beyond the first is closed after IDLE_CLOSE_MS.
 * - **Concurrent confirmations share one WAIT** (coalescing): replication is one stream, so WAIT
 *   after their scripts, on the connection that ran them, covers every grant before those scripts.
 *   On a cluster only confirmations of one key share (other keys may live on another master).
 * - **Each ask is bounded by its own timeout**: the WAIT sent for a batch takes the shortest time any
 *   of its asks has left; an ask with time left and too few acks goes again. An ask that could not be
 *   sent before its time ran out (every connection busy) fails with WaitNotSent at that moment.
 * - **A WAIT nobody waits for delays nobody**: when every ask of a batch gave up (its signal), the
 *   connection is dropped, which ends the WAIT in Redis and frees the place for another.
 * WAIT with timeout 0 would block for ever: it is never sent (every timeout sent is at least 1 ms).
 */
export const MAX_WAIT_CONNECTIONS = 8;
/** How long a WAIT connection beyond the first stays open with nothing to do. */
export const IDLE_CLOSE_MS = 10_000;

/** The WAIT of a durable grant could not be sent before its timeout ran out (every WAIT connection was busy). */
export class WaitNotSent extends Error {
  constructor() {
    super('every WAIT connection stayed busy until the timeout ran out');
  }
}

/** How one seam runs a batch: its scripts, then one WAIT behind them on the same connection. */
export interface WaitDriver<C> {
  open(): Promise<C>;
  /** Drops the connection at once (no QUIT: a WAIT in flight would hold a QUIT for its whole timeout). */
  drop(c: C): Promise<void>;
  run(c: C, scripts: readonly (readonly string[])[], key: string, replicas: number, timeoutMs: number): Promise<BatchResult>;
  /** True when scripts of different keys may share a WAIT: one server (not a cluster). */
  readonly acrossKeys: boolean;
}

export interface BatchResult {
  replies: PromiseSettledResult<unknown>[];
  acked: PromiseSettledResult<number>;
}

/** Settles like Promise.allSettled does, for one promise. */
export async function settle<T>(p: Promise<T>): Promise<PromiseSettledResult<T>> {
  try {
    return { status: 'fulfilled', value: await p };
  } catch (reason) {
    return { status: 'rejected', reason };
  }
}

interface Ask {
  args: readonly string[];
  key: string;
  replicas: number;
  /** Local monotonic time its timeout runs out. */
  deadline: number;
  signal: AbortSignal | undefined;
  /** Handed to a connection: its WAIT's own timeout answers it now. */
  sent: boolean;
  done: boolean;
  /** The last answer of a WAIT it was in (sent again when that one fell short with time left). */
  last: { reply: unknown; acked: number } | undefined;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  resolve(v: { reply: unknown; acked: number }): void;
  reject(err: unknown): void;
}

interface Slot<C> {
  connection: Promise<C>;
  /** The batch on it (busy), or undefined (idle). */
  batch: Ask[] | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

export class WaitPool<C> {
  private readonly slots = new Set<Slot<C>>();
  private pending: Ask[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly driver: WaitDriver<C>) {}

  /**
   * Runs `args` (a script that writes), then WAIT, and resolves the script's reply and how many
   * replicas acked, within `timeoutMs` (plus one round trip) whatever the other asks do. `signal`:
   * the caller gave up; the ask rejects, and a WAIT left to nobody is ended.
   */
  send(args: readonly string[], key: string, replicas: number, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: unknown; acked: number }> {
    if (this.closed) return Promise.reject(new Error('the WAIT connections were closed'));
    if (signal?.aborted) return Promise.reject(new Error('given up before WAIT was sent'));
    return new Promise((resolve, reject) => {
      const ask: Ask = { args, key, replicas, deadline: performance.now() + timeoutMs, signal, sent: false, done: false, last: undefined, timer: undefined, onAbort: undefined, resolve, reject };
      ask.onAbort = () => this.abandon(ask);
      signal?.addEventListener('abort', ask.onAbort, { once: true });
      this.queue(ask);
    });
  }

  /** Drops every connection (bounded by `boundMs`); asks still waiting reject. Never rejects. */
  async close(boundMs: number): Promise<void> {
    this.closed = true;
    clearImmediate(this.scheduled);
    for (const ask of this.pending.splice(0)) this.finish(ask, new Error('the WAIT connections were closed'));
    const slots = [...this.slots];
    this.slots.clear();
    for (const ask of slots.flatMap((s) => s.batch ?? [])) this.finish(ask, new Error('the WAIT connections were closed'));
    await Promise.all(slots.map((s) => this.dropSlot(s, boundMs)));
  }

  /** Waits for a connection; fails at its deadline if none came (or with its last answer, if it had one). */
  private queue(ask: Ask): void {
    clearTimeout(ask.timer);
    ask.sent = false;
    ask.timer = setTimeout(() => {
      if (ask.sent) return;
      const at = this.pending.indexOf(ask);
      if (at >= 0) this.pending.splice(at, 1);
      this.finish(ask, ask.last ? undefined : new WaitNotSent());
    }, Math.max(0, ask.deadline - performance.now()));
    ask.timer.unref();
    this.pending.push(ask);
    // Asks that come in the same turn of the event loop (replies read together) share a batch.
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.pending.length > 0 && !this.closed) {
      const slot = [...this.slots].find((s) => !s.batch) ?? this.newSlot();
      if (!slot) return; // every connection busy: the next one to finish dispatches again
      const group = this.groupOf(this.pending[0]!);
      const batch = this.pending.filter((a) => this.groupOf(a) === group);
      this.pending = this.pending.filter((a) => this.groupOf(a) !== group);
      void this.run(slot, batch);
    }
  }

  private groupOf(ask: Ask): string {
    return this.driver.acrossKeys ? String(ask.replicas) : `${ask.replicas} ${ask.key}`;
  }

  private newSlot(): Slot<C> | undefined {
    if (this.slots.size >= MAX_WAIT_CONNECTIONS) return undefined;
    const slot: Slot<C> = { connection: this.driver.open(), batch: undefined, idleTimer: undefined };
    slot.connection.catch(() => undefined);
    this.slots.add(slot);
    return slot;
  }

  private async run(slot: Slot<C>, batch: Ask[]): Promise<void> {
    clearTimeout(slot.idleTimer);
    slot.batch = batch;
    let c: C;
    try {
      c = await slot.connection;
    } catch (err) {
      // A failed connect is forgotten, so the next ask tries again.
      this.slots.delete(slot);
      for (const ask of batch) this.finish(ask, err);
      this.dispatch();
      return;
    }
    const live = batch.filter((a) => !a.done);
    if (live.length > 0 && !this.slots.has(slot)) {
      for (const ask of live) this.finish(ask, new Error('the WAIT connection was closed'));
    } else if (live.length > 0) {
      for (const ask of live) {
        ask.sent = true;
        clearTimeout(ask.timer);
      }
      // The shortest time left of the batch (never 0: WAIT 0 blocks for ever).
      const shortest = Math.min(...live.map((a) => a.deadline));
      const timeoutMs = Math.max(1, Math.ceil(shortest - performance.now()));
      let result: BatchResult | undefined;
      let failure: unknown;
      try {
        result = await this.driver.run(c, live.map((a) => a.args), live[0]!.key, live[0]!.replicas, timeoutMs);
      } catch (err) {
        failure = err;
      }
      live.forEach((ask, i) => {
        if (ask.done) return;
        const reply = result?.replies[i];
        if (!result || !reply) return this.finish(ask, failure);
        if (reply.status === 'rejected') return this.finish(ask, reply.reason);
        if (result.acked.status === 'rejected') return this.finish(ask, result.acked.reason);
        ask.last = { reply: reply.value, acked: result.acked.value };
        // Too few acks, and the WAIT ran for a batch mate's shorter time: again, with the time left.
        // (Each round ends the asks of the shortest deadline, so this never spins.)
        if (ask.last.acked < ask.replicas && ask.deadline > shortest && ask.deadline - performance.now() >= 1 && !this.closed) this.queue(ask);
        else this.finish(ask, undefined);
      });
    }
    if (!this.slots.has(slot)) return; // dropped meanwhile (abandoned or closed)
    slot.batch = undefined;
    this.idle(slot);
    this.dispatch();
  }

  /** An idle connection beyond the first is closed after IDLE_CLOSE_MS without use. */
  private idle(slot: Slot<C>): void {
    slot.idleTimer = setTimeout(() => {
      const idle = [...this.slots].filter((s) => !s.batch);
      if (slot.batch || idle.length < 2) return;
      this.slots.delete(slot);
      void this.dropSlot(slot, IDLE_CLOSE_MS);
    }, IDLE_CLOSE_MS);
    slot.idleTimer.unref();
  }

  /** The caller gave up: out of the queue, or, when nobody else waits for its WAIT, that connection dropped. */
  private abandon(ask: Ask): void {
    if (ask.done) return;
    const at = this.pending.indexOf(ask);
    if (at >= 0) this.pending.splice(at, 1);
    this.finish(ask, new Error('given up while waiting for replicas'));
    for (const slot of this.slots) {
      if (slot.batch?.includes(ask) && slot.batch.every((a) => a.done)) {
        this.slots.delete(slot);
        void this.dropSlot(slot, IDLE_CLOSE_MS);
        this.dispatch();
      }
    }
  }

  /** Settles `ask`: with `err`, or with its last answer when `err` is undefined. */
  private finish(ask: Ask, err: unknown): void {
    if (ask.done) return;
    ask.done = true;
    clearTimeout(ask.timer);
    if (ask.onAbort) ask.signal?.removeEventListener('abort', ask.onAbort);
    if (err === undefined && ask.last) ask.resolve(ask.last);
    else ask.reject(err ?? new Error('no answer'));
  }

  private async dropSlot(slot: Slot<C>, boundMs: number): Promise<void> {
    clearTimeout(slot.idleTimer);
    await settledWithin(slot.connection.then((c) => this.driver.drop(c)).catch(() => undefined), boundMs);
  }
}
