/**
 * The engine's types entry point (the header of src/protocol/lua/engine.lua is the spec): after a
 * call failed with WRONGTYPE, Scripts runs it to name the key of the wrong type, so that every entry
 * point touching a key that is not what fairlock expects fails with a FairLockError BAD_KEY naming
 * that key. Each of the two keys is made the wrong type in turn, under each entry point that touches
 * it, run both as a Redis Function (FCALL) and as a script (EVALSHA, as on a cluster); types itself
 * is also run alone. A malformed holder entry in the state's `h` field is a BAD_KEY too (bad_state).
 *
 * Against the engine of one file: the sessions key is gone (sessions are the state's `s` field), so
 * its cases went with it; extend touches the queue only when a holder's lease ran out (it grants on),
 * so its queue case is "a holder expired" instead of "a permit left free".
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { FairLockError } from '../../src/errors.js';
import { luaReplyConstants } from '../../src/protocol/codes.js';
import { lockKeys, waiterId, type LockKeys } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { LIVENESS, clusterLikeScripts, sleep } from './kit.js';

const fx = useRedis();

type Which = 'state' | 'queue';
interface Ctx {
  s: Scripts;
  keys: LockKeys;
}

const H = waiterId('h', 1, 5_000, true, 1, 'x');
const SHORT = waiterId('h', 2, 100, false, 1, 'x');
const W = waiterId('w', 1, 5_000, true, 1, 'x');

/** Turns `key` into a type fairlock never uses there; returns the type name TYPE reports. */
async function breakKey(which: Which, key: string): Promise<string> {
  await fx.client.del(key);
  if (which === 'state') {
    await fx.client.rPush(key, 'x');
    return 'list';
  }
  await fx.client.set(key, 'x');
  return 'string';
}

const holdLock = async ({ s, keys }: Ctx) => {
  await s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1);
};

interface Case {
  which: Which;
  script: string;
  /** What the name looks like before the key is broken. */
  prepare?: (ctx: Ctx) => Promise<void>;
  run: (ctx: Ctx) => Promise<unknown>;
}

const CASES: Case[] = [
  // state: every entry point loads it
  { which: 'state', script: 'acquire', run: ({ s, keys }) => s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1) },
  { which: 'state', script: 'acquire (try)', run: ({ s, keys }) => s.acquire(keys, H, LIVENESS, 'try', 'lock', 1) },
  { which: 'state', script: 'release', run: ({ s, keys }) => s.release(keys, H) },
  { which: 'state', script: 'cancel', run: ({ s, keys }) => s.cancel(keys, H) },
  { which: 'state', script: 'heartbeat', run: ({ s, keys }) => s.heartbeat(keys, 'h', LIVENESS, { held: [H] }) },
  { which: 'state', script: 'extend', run: ({ s, keys }) => s.extend(keys, H, 5_000) },
  { which: 'state', script: 'inspect', run: ({ s, keys }) => s.inspect(keys, 10) },
  // queue (heartbeat reports it instead: see below)
  { which: 'queue', script: 'acquire (idle name)', run: ({ s, keys }) => s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1) },
  { which: 'queue', script: 'acquire (busy name)', prepare: holdLock, run: ({ s, keys }) => s.acquire(keys, W, LIVENESS, 'wait', 'lock', 1) },
  { which: 'queue', script: 'acquire (again)', prepare: holdLock, run: ({ s, keys }) => s.acquire(keys, W, LIVENESS, 'wait', 'lock', 1, { since: 1 }) },
  { which: 'queue', script: 'release', prepare: holdLock, run: ({ s, keys }) => s.release(keys, H) },
  { which: 'queue', script: 'cancel', run: ({ s, keys }) => s.cancel(keys, W) },
  { which: 'queue', script: 'cancel (since known)', run: ({ s, keys }) => s.cancel(keys, W, 1) },
  {
    which: 'queue',
    script: 'extend (a holder expired)',
    prepare: async ({ s, keys }) => {
      await s.acquire(keys, SHORT, LIVENESS, 'wait', 'lock', 1);
      await sleep(250); // its 100 ms lease runs out: the next call grants on
    },
    run: ({ s, keys }) => s.extend(keys, H, 5_000),
  },
  { which: 'queue', script: 'inspect', run: ({ s, keys }) => s.inspect(keys, 10) },
];

const ENGINES = {
  function: (prefix: string) => new Scripts(adaptClient(fx.client), prefix),
  script: (prefix: string) => clusterLikeScripts(fx, prefix),
} as const;

for (const [engine, make] of Object.entries(ENGINES)) {
  for (const c of CASES) {
    test(`${c.which} of the wrong type: ${c.script} fails with BAD_KEY naming it (${engine})`, async (t) => {
      const prefix = newPrefix();
      const ctx = { s: make(prefix), keys: lockKeys(prefix, 'n') };
      if (c.prepare) await c.prepare(ctx);
      const key = ctx.keys[c.which];
      const type = await breakKey(c.which, key);
      const err = await t.throwsAsync(c.run(ctx), { instanceOf: FairLockError });
      t.is(err?.code, 'BAD_KEY', err?.message);
      t.true(err?.message.includes(key), `the message names ${key}: ${err?.message}`);
      t.true(err?.message.includes(`it is a ${type}`), err?.message);
      const other = c.which === 'state' ? 'queue' : 'state';
      t.false(err?.message.includes(ctx.keys[other]), `not ${other}`);
    });
  }
}

test('heartbeat names a queue of the wrong type in its reply instead of failing', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'n');
  await s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1);
  await breakKey('queue', keys.queue);
  const r = await s.heartbeat(keys, 'h', LIVENESS, { held: [H] });
  t.is(r.badQueue, keys.queue);
  t.deepEqual(
    r.holders.map((h) => h.id),
    [H],
  );
});

test('a malformed holder entry in the h field is a BAD_KEY naming the state key and the entry', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'n');
  for (const value of ['garbage', `${H} not an entry`, `${H} 1 2 3 4 1;oops 1 2 3 4 1`]) {
    await fx.client.del(keys.state);
    await fx.client.hSet(keys.state, { k: 'lock 1', h: value });
    const bad = value.split(';').find((e) => !e.startsWith(`${H} 1 `))!;
    const err = await t.throwsAsync(s.acquire(keys, W, LIVENESS, 'wait', 'lock', 1), { instanceOf: FairLockError });
    t.is(err?.code, 'BAD_KEY', err?.message);
    t.true(err?.message.includes(keys.state), err?.message);
    t.true(err?.message.includes(`malformed holder entry ${bad}`), err?.message);
  }
});

test('types alone: the first key of the wrong type with its type, or nothing when every key is fine', async (t) => {
  const engine = readFileSync(new URL('../../src/protocol/lua/engine.lua', import.meta.url), 'utf8');
  const body = `${luaReplyConstants()}\n${engine}\nreturn ENTRY.types(KEYS, ARGV)`;
  const prefix = newPrefix();
  const keys = lockKeys(prefix, 'n');
  const run = async () => (await fx.client.sendCommand(['EVAL', body, '2', keys.state, keys.queue])) as string[];
  t.deepEqual(await run(), [], 'missing keys are fine');
  await new Scripts(adaptClient(fx.client), prefix).acquire(keys, H, LIVENESS, 'wait', 'lock', 1);
  await new Scripts(adaptClient(fx.client), prefix).acquire(keys, W, LIVENESS, 'wait', 'lock', 1);
  t.is(await fx.client.exists([keys.state, keys.queue]), 2);
  t.deepEqual(await run(), [], 'hash, list');
  await breakKey('queue', keys.queue);
  t.deepEqual(await run(), [keys.queue, 'string']);
  await breakKey('state', keys.state);
  t.deepEqual(await run(), [keys.state, 'list'], 'the first one');
  await fx.client.del([keys.state, keys.queue]);
  await fx.client.zAdd(keys.state, { score: 1, value: 'x' });
  t.deepEqual(await run(), [keys.state, 'zset'], 'a zset where the hash belongs');
  await fx.client.del(keys.state);
  await fx.client.zAdd(keys.queue, { score: 1, value: 'x' });
  t.deepEqual(await run(), [keys.queue, 'zset'], 'a zset where the list belongs (an older fairlock\'s queue)');
});
