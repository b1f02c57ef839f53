/**
 * What the per-script tests share: a fresh prefix and Scripts per test, reply narrowing, and reads
 * of the queue list and the holder entries (test/helpers/state.ts). Reads go through `fx.client`
 * when called (the fixture connects it in its before hook).
 */
import type { ExecutionContext } from 'ava';
import { lockKeys } from '../../src/protocol/keys.js';
import { Scripts, type AcquireReply } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import type { RedisSeam } from '../../src/redis/seam.js';
import type { Fixture } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { holdersAt, queueAt, sessionDeadlineAt } from '../helpers/state.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const LIVENESS = 10_000;

/** A text with every run of 4 or more digits as N. */
export const numbersOut = (v: string) => v.replace(/\d{4,}/g, 'N');

/** `r` narrowed to the reply kind `kind`; throws (failing the test) on another kind. */
export function expectKind<K extends AcquireReply['kind']>(r: AcquireReply, kind: K): Extract<AcquireReply, { kind: K }> {
  if (r.kind !== kind) throw new Error(`expected a ${kind} reply, got ${JSON.stringify(r)}`);
  return r as Extract<AcquireReply, { kind: K }>;
}

export function kit(fx: Fixture) {
  return {
    setup() {
      const prefix = newPrefix();
      return { prefix, keys: lockKeys(prefix, 'n'), s: new Scripts(adaptClient(fx.client), prefix) };
    },
    async heldIds(stateKey: string): Promise<string[]> {
      return (await holdersAt(fx.client, stateKey)).map((h) => h.id);
    },
    /** The waiter ids in the queue list, head first. */
    async queued(key: string): Promise<string[]> {
      return (await queueAt(fx.client, key)).map((e) => e.id);
    },
    /** The queue list's elements as they are ("id since"), head first. */
    async elements(key: string): Promise<string[]> {
      return fx.client.lRange(key, 0, -1);
    },
    /** A session's deadline in the state hash's `s` field, or null. */
    deadline(stateKey: string, sessionId: string): Promise<number | null> {
      return sessionDeadlineAt(fx.client, stateKey, sessionId);
    },
    /** A subscriber (a duplicate of the fixture's client) on `channels`, closed when the test ends. */
    async subscribe(t: ExecutionContext, channels: string | string[]) {
      const sub = fx.client.duplicate();
      sub.on('error', () => undefined);
      t.teardown(() => (sub.isOpen ? sub.disconnect().catch(() => undefined) : undefined));
      await sub.connect();
      const messages: string[] = [];
      await sub.subscribe(channels, (message) => {
        messages.push(message);
      });
      return {
        /** Resolves once `n` messages came, or after 5 s (the test then sees fewer). */
        async received(n: number) {
          for (let i = 0; i < 250 && messages.length < n; i++) await sleep(20);
          return messages;
        },
      };
    },
    /** The state hash with every run of 4 or more digits (tokens, times) as N: two paths' writes compared, numbers aside. */
    async shapeOf(stateKey: string): Promise<Record<string, string>> {
      return Object.fromEntries(Object.entries(await fx.client.hGetAll(stateKey)).map(([f, v]) => [f, numbersOut(v)]));
    },
  };
}

/**
 * Scripts over a seam that says `cluster: true` (so it runs the engine with EVALSHA, and its wake
 * argument is "S" and the name's shard channel prefix), sending every command to the fixture's
 * standalone server: the real server runs the engine, only the wake-up channel changes. Redis 7 has
 * SSUBSCRIBE and SPUBLISH on a standalone server too.
 */
export function clusterLikeScripts(fx: Fixture, prefix: string): Scripts {
  const seam: RedisSeam = {
    family: 'node-redis',
    cluster: true,
    close: () => Promise.resolve(),
    send: (args) => fx.client.sendCommand([...args]),
    async sendAndWait(args, _key, replicas, timeoutMs) {
      const reply = await fx.client.sendCommand([...args]);
      return { reply, acked: Number(await fx.client.sendCommand(['WAIT', String(replicas), String(timeoutMs)])) };
    },
    droppedConnection: () => false,
    subscribe: () => Promise.reject(new Error('not used here')),
    shardSubscriber: () => Promise.reject(new Error('not used here')),
  };
  return new Scripts(seam, prefix);
}
