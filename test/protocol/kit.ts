/**
 * What the per-script tests share: a fresh prefix and Scripts per test, reply narrowing, and reads
 * of the queue and the holder entries. Reads go through `fx.client` when called (the fixture
 * connects it in its before hook).
 */
import { lockKeys } from '../../src/protocol/keys.js';
import { Scripts, type AcquireReply } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import type { Fixture } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { holdersAt } from '../helpers/state.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const LIVENESS = 10_000;

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
    async queued(key: string): Promise<string[]> {
      return fx.client.zRange(key, 0, -1);
    },
  };
}
