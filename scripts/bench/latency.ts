/**
 * Latency in one process, one clock: the PING floor, uncontended acquire+release, and hand-off
 * (holder's release() call -> the waiter's acquire() resolving). PINGs are interleaved with the
 * lock calls so that both see the same noise on a busy machine.
 */
import type { Adapter, LockClient } from './adapters/types.js';
import { now, sleep, within } from './clock.js';
import type { Relay } from './relay.js';
import { dist, type Dist } from './stats.js';

export interface LatencyOptions {
  uncontended: number;
  handoffs: number;
  /** How long a waiter is left waiting before the holder releases. */
  settleMs: number;
  /** Bound on each of the two loops. */
  capMs: number;
  warmup: number;
}

export interface LatencyResult {
  ping: Dist;
  acquireRelease: Dist;
  handoff: Dist;
  /** Hand-offs that did not complete before the time bound (slow pollers). */
  handoffTimedOut: boolean;
  /** Client->server chunks per uncontended acquire+release, counted by the relay. */
  roundTripsPerGrant?: number | null;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await f();
  return now() - t0;
}

export async function measureLatency(adapter: Adapter, url: string, prefix: string, o: LatencyOptions, relay?: Relay): Promise<LatencyResult> {
  const pings: number[] = [];
  const acq: number[] = [];
  const hand: number[] = [];
  let handoffTimedOut = false;
  let roundTripsPerGrant: number | null | undefined;
  const a = await adapter.create(url, prefix);
  let b: LockClient | undefined;
  try {
    const name = 'latency';
    for (let i = 0; i < o.warmup; i++) {
      await a.ping();
      await (await a.acquire(name)).release();
    }
    // Uncontended: alternate one PING and one acquire+release.
    const before = relay ? await relay.counts() : undefined;
    let until = now() + o.capMs;
    for (let i = 0; i < o.uncontended && now() < until; i++) {
      pings.push(await timed(() => a.ping()));
      acq.push(await timed(async () => (await a.acquire(name)).release()));
    }
    if (relay && before) {
      const after = await relay.counts();
      // every PING is one chunk of its own; what is left is the lock's round trips
      roundTripsPerGrant = acq.length ? (after.chunksUp - before.chunksUp - pings.length) / acq.length : null;
    }
    // Hand-off: a holds, b waits (its own connection / session), a releases.
    b = await adapter.create(url, prefix);
    await (await b.acquire(name)).release();
    until = now() + o.capMs;
    for (let i = 0; i < o.handoffs && now() < until; i++) {
      pings.push(await timed(() => a.ping()));
      const held = await a.acquire(name);
      let resolvedAt = 0;
      const waiting = b.acquire(name).then((h) => ((resolvedAt = now()), h));
      await sleep(o.settleMs);
      if (resolvedAt) throw new Error(`${adapter.id}: a waiter got the lock while another held it`);
      const t0 = now();
      const releasing = held.release();
      const got = await within(waiting, until - now());
      await releasing;
      if (!got) {
        handoffTimedOut = true;
        break;
      }
      hand.push(resolvedAt - t0);
      await got.release();
    }
  } finally {
    if (handoffTimedOut) await Promise.all([a.destroy(), b?.destroy()]);
    else await Promise.all([a.close(), b?.close()]);
  }
  return { ping: dist(pings), acquireRelease: dist(acq), handoff: dist(hand), handoffTimedOut, roundTripsPerGrant };
}
