/**
 * No leaks: after 1,000 distinct locks are taken and released (all held at once, contended, and given up
 * by timeout), only the `:state` hashes remain, each with an expiry and no holder; any other key left
 * has an expiry and is soon gone.
 */
import test from 'ava';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';
import { newLocks } from '../helpers/cleanup.js';
import { holdersAt } from '../helpers/state.js';

const OPTS = { leaseMs: 1000, livenessMs: 600, heartbeatMs: 200 };
const N = 1000;
const fx = useRedis();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scan(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of fx.client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(k);
  return keys;
}

/** Every key under the prefix has an expiry; keys other than the `:state` hashes are gone within 2 x liveness + slack. */
async function onlyStates(t: import('ava').ExecutionContext, prefix: string, locks: number): Promise<void> {
  const keys = await scan(prefix);
  for (const k of keys) {
    const ttl = await fx.client.pTTL(k);
    if (!(ttl > 0)) t.fail(`${k} has no expiry (PTTL ${ttl})`);
  }
  const others = () => scan(prefix).then((ks) => ks.filter((k) => !k.endsWith(':state')));
  for (let i = 0; i < 40 && (await others()).length > 0; i++) await sleep(100);
  t.deepEqual(await others(), [], 'only the :state hashes are left');
  const states = (await scan(prefix)).filter((k) => k.endsWith(':state'));
  t.is(states.length, locks);
  for (const k of states.slice(0, 50)) {
    const ttl = await fx.client.pTTL(k);
    t.true(ttl > 0 && ttl <= 86_400_000, `${k} expires within a day`);
    t.deepEqual(await holdersAt(fx.client, k), [], `${k} holds no grant`);
  }
}

test.serial(`${N} distinct locks taken one by one and released`, async (t) => {
  const prefix = newPrefix();
  const locks = newLocks(t, fx.client, { prefix, ...OPTS });
  for (let i = 0; i < N; i++) await (await locks.lock(`seq-${i}`).acquire()).release();
  await onlyStates(t, prefix, N);
  await locks.close();
});

test.serial(`${N} distinct locks held at once while heartbeats run, contended, then released`, async (t) => {
  const prefix = newPrefix();
  const a = newLocks(t, fx.client, { prefix, ...OPTS });
  const b = newLocks(t, fx.client, { prefix, ...OPTS });
  const names = Array.from({ length: N }, (_, i) => `all-${i}`);
  const held = await Promise.all(names.map((n) => a.lock(n).acquire()));
  // Every tenth lock gets a waiter from another instance; every twentieth waiter gives up by timeout.
  const waits = names.map((n, i) =>
    i % 10 === 0 ? b.lock(n).acquire({ timeoutMs: i % 20 === 0 ? 300 : 20_000 }).catch((e: Error) => e) : undefined,
  );
  await sleep(3 * OPTS.heartbeatMs);
  t.true(held.every((l) => !l.signal.aborted), 'heartbeats kept all 1,000 leases');
  await Promise.all(held.map((l) => l.release()));
  const outcomes = await Promise.all(waits.filter((w) => w !== undefined));
  for (const o of outcomes) if (!(o instanceof Error)) await o.release();
  t.is(outcomes.filter((o) => o instanceof Error).length, N / 20, 'the timed-out waiters, and only those, failed');
  await onlyStates(t, prefix, N);
  await a.close();
  await b.close();
});

test.serial('closing instances with waits and leases open leaves only the :state hashes', async (t) => {
  const prefix = newPrefix();
  const a = newLocks(t, fx.client, { prefix, ...OPTS });
  const b = newLocks(t, fx.client, { prefix, ...OPTS });
  const names = Array.from({ length: 100 }, (_, i) => `close-${i}`);
  await Promise.all(names.map((n) => a.lock(n).acquire()));
  const waits = names.map((n) => b.lock(n).acquire().catch((e: Error) => e));
  await sleep(2 * OPTS.heartbeatMs);
  await b.close();
  t.true((await Promise.all(waits)).every((e) => e instanceof Error && (e as { code?: string }).code === 'CLOSED'));
  await a.close();
  await onlyStates(t, prefix, names.length);
});
