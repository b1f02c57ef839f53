/**
 * types.lua (src/protocol/lua/types.lua states the contract): after a script failed with WRONGTYPE,
 * Scripts runs it to name the key of the wrong type, so that every script touching a key that is
 * not what fairlock expects fails with a FairLockError BAD_KEY naming that key. Each of the three
 * keys is made the wrong type in turn, under each script that touches it; types.lua itself is also
 * run alone. A malformed holder entry in the state hash is a BAD_KEY too (common.lua bad_state).
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { FairLockError } from '../../src/errors.js';
import { lockKeys, waiterId, type LockKeys } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { LIVENESS } from './kit.js';

const fx = useRedis();

type Which = keyof LockKeys;
interface Ctx {
  s: Scripts;
  keys: LockKeys;
}

const H = waiterId('h', 1, 5_000, true, 1, 'x');
const W = waiterId('w', 1, 5_000, true, 1, 'x');
const W2 = waiterId('w', 2, 5_000, true, 2, 'x');

/** Turns `key` into a type fairlock never uses there; returns the type name TYPE reports. */
async function breakKey(which: Which, key: string): Promise<string> {
  await fx.client.del(key);
  if (which === 'state') {
    await fx.client.rPush(key, 'x');
    return 'list';
  }
  if (which === 'queue') {
    await fx.client.set(key, 'x');
    return 'string';
  }
  await fx.client.hSet(key, 'x', '1');
  return 'hash';
}

const holdLock = async ({ s, keys }: Ctx) => {
  await s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1);
};
const holdAndQueue = async (ctx: Ctx) => {
  await holdLock(ctx);
  await ctx.s.acquire(ctx.keys, W, LIVENESS, 'wait', 'lock', 1);
};

interface Case {
  which: Which;
  script: string;
  /** What the name looks like before the key is broken. */
  prepare?: (ctx: Ctx) => Promise<void>;
  run: (ctx: Ctx) => Promise<unknown>;
}

const CASES: Case[] = [
  // state: every script loads it
  { which: 'state', script: 'acquire', run: ({ s, keys }) => s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1) },
  { which: 'state', script: 'acquire (try)', run: ({ s, keys }) => s.acquire(keys, H, LIVENESS, 'try', 'lock', 1) },
  { which: 'state', script: 'release', run: ({ s, keys }) => s.release(keys, H) },
  { which: 'state', script: 'cancel', run: ({ s, keys }) => s.cancel(keys, H) },
  { which: 'state', script: 'heartbeat', run: ({ s, keys }) => s.heartbeat(keys, 'h', LIVENESS, [H]) },
  { which: 'state', script: 'extend', run: ({ s, keys }) => s.extend(keys, H, 5_000) },
  { which: 'state', script: 'inspect', run: ({ s, keys }) => s.inspect(keys, 10) },
  // queue (heartbeat reports it instead: see below)
  { which: 'queue', script: 'acquire (idle name)', run: ({ s, keys }) => s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1) },
  { which: 'queue', script: 'acquire (busy name)', prepare: holdLock, run: ({ s, keys }) => s.acquire(keys, W, LIVENESS, 'wait', 'lock', 1) },
  { which: 'queue', script: 'release', prepare: holdLock, run: ({ s, keys }) => s.release(keys, H) },
  { which: 'queue', script: 'cancel', run: ({ s, keys }) => s.cancel(keys, W) },
  {
    which: 'queue',
    script: 'extend (a permit left free)',
    prepare: ({ s, keys }) => s.acquire(keys, H, LIVENESS, 'wait', 'semaphore', 2).then(() => undefined),
    run: ({ s, keys }) => s.extend(keys, H, 5_000),
  },
  { which: 'queue', script: 'inspect', run: ({ s, keys }) => s.inspect(keys, 10) },
  // sessions: read when a waiter queues, at the head of the queue, and by every beat
  { which: 'sessions', script: 'heartbeat', run: ({ s, keys }) => s.heartbeat(keys, 'w', LIVENESS) },
  { which: 'sessions', script: 'acquire (queues)', prepare: holdLock, run: ({ s, keys }) => s.acquire(keys, W, LIVENESS, 'wait', 'lock', 1) },
  { which: 'sessions', script: 'release (a waiter at the head)', prepare: holdAndQueue, run: ({ s, keys }) => s.release(keys, H) },
  { which: 'sessions', script: 'cancel (a waiter at the head)', prepare: holdAndQueue, run: ({ s, keys }) => s.cancel(keys, H) },
  {
    which: 'sessions',
    script: 'extend (a waiter at the head)',
    prepare: async ({ s, keys }) => {
      await s.acquire(keys, H, LIVENESS, 'wait', 'semaphore', 2);
      await s.acquire(keys, W2, LIVENESS, 'wait', 'semaphore', 2); // 1 + 2 > 2: waits
    },
    run: ({ s, keys }) => s.extend(keys, H, 5_000),
  },
  { which: 'sessions', script: 'inspect (a queue)', prepare: holdAndQueue, run: ({ s, keys }) => s.inspect(keys, 10) },
];

for (const c of CASES) {
  test(`${c.which} of the wrong type: ${c.script} fails with BAD_KEY naming it`, async (t) => {
    const prefix = newPrefix();
    const ctx = { s: new Scripts(adaptClient(fx.client), prefix), keys: lockKeys(prefix, 'n') };
    if (c.prepare) await c.prepare(ctx);
    const key = ctx.keys[c.which];
    const type = await breakKey(c.which, key);
    const err = await t.throwsAsync(c.run(ctx), { instanceOf: FairLockError });
    t.is(err?.code, 'BAD_KEY', err?.message);
    t.true(err?.message.includes(key), `the message names ${key}: ${err?.message}`);
    t.true(err?.message.includes(`it is a ${type}`), err?.message);
    for (const other of (['state', 'queue', 'sessions'] as const).filter((w) => w !== c.which)) {
      t.false(err?.message.includes(ctx.keys[other]), `not ${other}`);
    }
  });
}

test('heartbeat names a queue of the wrong type in its reply instead of failing', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'n');
  await s.acquire(keys, H, LIVENESS, 'wait', 'lock', 1);
  await breakKey('queue', keys.queue);
  const r = await s.heartbeat(keys, 'h', LIVENESS, [H]);
  t.is(r.badQueue, keys.queue);
  t.deepEqual(
    r.holders.map((h) => h.id),
    [H],
  );
});

test('a malformed holder entry in the state hash is a BAD_KEY naming the state key and the entry', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'n');
  for (const [field, value] of [
    ['garbage', '1 2 3 4 1'],
    [H, 'not an entry'],
  ] as const) {
    await fx.client.del(keys.state);
    await fx.client.hSet(keys.state, field, value);
    const err = await t.throwsAsync(s.acquire(keys, W, LIVENESS, 'wait', 'lock', 1), { instanceOf: FairLockError });
    t.is(err?.code, 'BAD_KEY', err?.message);
    t.true(err?.message.includes(keys.state), err?.message);
    t.true(err?.message.includes(`malformed entry ${field}`), err?.message);
  }
});

test('types.lua alone: the first key of the wrong type with its type, or nothing when every key is fine', async (t) => {
  const body = readFileSync(new URL('../../src/protocol/lua/types.lua', import.meta.url), 'utf8');
  const prefix = newPrefix();
  const keys = lockKeys(prefix, 'n');
  const run = async () => (await fx.client.sendCommand(['EVAL', body, '3', keys.state, keys.queue, keys.sessions])) as string[];
  t.deepEqual(await run(), [], 'missing keys are fine');
  await new Scripts(adaptClient(fx.client), prefix).acquire(keys, H, LIVENESS, 'wait', 'lock', 1);
  await new Scripts(adaptClient(fx.client), prefix).acquire(keys, W, LIVENESS, 'wait', 'lock', 1);
  t.is(await fx.client.exists([keys.state, keys.queue, keys.sessions]), 3);
  t.deepEqual(await run(), [], 'hash, zset, zset');
  await breakKey('sessions', keys.sessions);
  t.deepEqual(await run(), [keys.sessions, 'hash']);
  await breakKey('queue', keys.queue);
  t.deepEqual(await run(), [keys.queue, 'string'], 'the first one');
  await breakKey('state', keys.state);
  t.deepEqual(await run(), [keys.state, 'list']);
  await fx.client.del([keys.state, keys.queue]);
  await fx.client.zAdd(keys.state, { score: 1, value: 'x' });
  t.deepEqual(await run(), [keys.state, 'zset'], 'a zset where the hash belongs');
});
