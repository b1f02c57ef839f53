/**
 * Bad state: a key of the wrong type under a lock's prefix, or a state hash whose holder field `h`
 * is malformed, surfaces as a FairLockError with code BAD_KEY that names the key, and breaks no
 * other lock. Awkward names (braces, spaces, unicode, 1 KiB) work and keep all their keys (and their
 * shard wake-up channel) in one cluster slot. The engine has two keys (state hash, queue list): the
 * sessions key's case became the malformed `h` field's (sessions are the state's `s` field now).
 */
import test from 'ava';
import { lockKeys } from '../../src/protocol/keys.js';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';
import { newLocks, openClient, ownRedis } from '../helpers/cleanup.js';
import { holdersAt } from '../helpers/state.js';

const OPTS = { leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 };
const fx = useRedis();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const part of ['state', 'queue', 'state h field'] as const) {
  test.serial(`a wrong-type ${part === 'state h field' ? 'state key (a malformed h field)' : `${part} key`}: BAD_KEY naming the key; other locks unaffected`, async (t) => {
    const prefix = newPrefix();
    const locks = newLocks(t, fx.client, { prefix, ...OPTS });
    const keys = lockKeys(prefix, 'bad');
    const key = part === 'queue' ? keys.queue : keys.state;
    // A type none of the scripts expects for this key, or a holder entry the engine cannot read.
    if (part === 'state h field') await fx.client.hSet(key, { k: 'lock 1', h: 'not mine' });
    else await fx.client.set(key, 'not mine');
    const other = await locks.lock('good').acquire();

    // Whatever the script touches first, the error names the bad key and has code BAD_KEY; a lease
    // that was granted anyway is lost (its heartbeat fails) rather than held on false pretences.
    let err: unknown;
    try {
      const lease = await locks.lock('bad').acquire({ timeoutMs: 3_000 });
      await sleep(3 * OPTS.heartbeatMs);
      await lease.extend();
      await lease.release();
    } catch (e) {
      err = e;
    }
    t.truthy(err, 'something failed');
    const e = err as { code?: string; message?: string; name?: string; cause?: { code?: string; message?: string } };
    const bad = e.code === 'BAD_KEY' ? e : e.cause;
    t.is(bad?.code, 'BAD_KEY', `${e.name}: ${e.message}`);
    t.true(bad?.message?.includes(key), `message names ${key}: ${bad?.message}`);

    // The other lock goes on working, and the bad key is left as it was.
    t.false(other.signal.aborted);
    await other.release();
    await (await locks.lock('good').acquire()).release();
    // The bad key is left as it was.
    if (part === 'state h field') t.deepEqual(await fx.client.hGetAll(key), { k: 'lock 1', h: 'not mine' });
    else t.is(await fx.client.type(key), 'string');
    await locks.close();
  });
}

test.serial('a key corrupted while a waiter waits (no timeout): the wait fails with BAD_KEY instead of hanging', async (t) => {
  const prefix = newPrefix();
  const locks = newLocks(t, fx.client, { prefix, ...OPTS });
  const other = newLocks(t, fx.client, { prefix, ...OPTS });
  const keys = lockKeys(prefix, 'rot');
  const lease = await locks.lock('rot').acquire();
  const waiting = other.lock('rot').acquire(); // no timeout: only the library can end this wait
  await sleep(2 * OPTS.heartbeatMs);
  await fx.client.del(keys.queue);
  await fx.client.set(keys.queue, 'garbage');
  // The hand-off meets the bad queue: the release says so, naming the key.
  const relErr = await t.throwsAsync(lease.release());
  t.is((relErr as { code?: string }).code, 'BAD_KEY');
  // Once the old lease runs out, the waiter's heartbeat meets it too and the wait ends with it.
  const err = await t.throwsAsync(waiting);
  t.is((err as { code?: string }).code, 'BAD_KEY');
  t.true(err!.message.includes(keys.queue), err!.message);
  await fx.client.del(keys.queue);
  await (await other.lock('rot').acquire({ timeoutMs: 3_000 })).release();
  await locks.close();
  await other.close();
});

const NAMES = [
  'plain',
  '{braces}',
  'a}b{c',
  '}{',
  '{}',
  '{{',
  'with spaces and\ttabs',
  '%7B encoded-looking %25',
  'ünïcødé – 日本語 – 🔒',
  'x'.repeat(1024),
  '🔒'.repeat(256), // 1 KiB of UTF-8
];

test.serial('awkward names: each lock works and its keys share one cluster slot', async (t) => {
  const cluster = await ownRedis(t, { cluster: true });
  const cc = await openClient(t, cluster.url);
  try {
    const prefix = newPrefix();
    const locks = newLocks(t, fx.client, { prefix, ...OPTS });
    const slots = new Map<number, string>();
    for (const name of NAMES) {
      const keys = lockKeys(prefix, name);
      const slot = await Promise.all(Object.values(keys).map((k) => cc.sendCommand(['CLUSTER', 'KEYSLOT', k])));
      t.is(new Set(slot.map(Number)).size, 1, `all keys of ${JSON.stringify(name.slice(0, 40))} in one slot`);
      slots.set(Number(slot[0]), name);

      const lease = await locks.lock(name).acquire({ timeoutMs: 2_000 });
      const waiting = locks.lock(name).acquire({ timeoutMs: 2_000 });
      const info = await locks.inspect(name);
      t.is(info.holder?.token, lease.token);
      await lease.release();
      const next = await waiting;
      t.true(next.token > lease.token);
      await next.release();
      // Nothing held or queued is left; the state hash stays until it expires.
      t.deepEqual(await holdersAt(fx.client, keys.state), []);
      t.is(await fx.client.exists(keys.queue), 0);
      t.true((await fx.client.pTTL(keys.state)) > 0, `${keys.state} expires`);
    }
    // Distinct names do not collapse into one tag (e.g. "{braces}" and "braces" stay apart).
    t.not(lockKeys(prefix, '{braces}').state, lockKeys(prefix, 'braces').state);
    t.true(slots.size > 1);
    await locks.close();
  } finally {
    await cc.quit();
    await cluster.stop();
  }
});
