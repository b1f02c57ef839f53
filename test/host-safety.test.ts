/**
 * The library never crashes its host: a client it cannot work with is refused in the constructor,
 * anything that arrives on the wake-up channel is either a well-formed grant for a waiting waiter or
 * ignored, and a throwing `lost` listener becomes a process warning. ava fails a file on any uncaught
 * exception, so each test here also proves that nothing escaped.
 */
import test, { type ExecutionContext } from 'ava';
import { createClient } from 'redis';
import { FairLocks, InvalidArgumentError } from '../src/index.js';
import type { RedisClient } from './helpers/redis-client.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();

/** The messages of the process warnings emitted while the test runs. */
function captureWarnings(t: ExecutionContext): string[] {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  return warnings;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a node-redis client made with legacyMode: true is refused with a clear InvalidArgumentError', async (t) => {
  const legacy = createClient({ url: fx.server.url, legacyMode: true }) as unknown as RedisClient;
  legacy.on('error', () => undefined);
  await legacy.connect();
  t.teardown(() => legacy.disconnect().then(() => undefined, () => undefined));
  t.throws(() => new FairLocks(legacy), { instanceOf: InvalidArgumentError, message: /legacyMode/ });
});

test('objects that are not a node-redis client are refused, naming what was given', (t) => {
  for (const bad of [undefined, null, 42, 'redis://x', {}, { sendCommand: 1 }, { sendCommand() {} }]) {
    t.throws(() => new FairLocks(bad as never), { instanceOf: InvalidArgumentError, message: /client must be a node-redis 4, 5 or 6 client .* or an ioredis 5 or 6 client/ });
  }
  const unconnected = createClient({ url: fx.server.url }) as RedisClient;
  t.throws(() => new FairLocks(unconnected), { instanceOf: InvalidArgumentError, message: /is not connected: await client.connect\(\) first/ });
});

test('malformed wake-up messages are ignored; the waiter is granted by the real hand-off later', async (t) => {
  const prefix = newPrefix();
  const a = new FairLocks(fx.client, { prefix });
  const b = new FairLocks(fx.client, { prefix });
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const holder = await a.lock('w').acquire();
  const q = whenQueued();
  let granted = false;
  const waiting = b.lock('w').acquire({ onQueued: q.onQueued });
  void waiting.then(() => (granted = true), () => undefined);
  await q.queued;
  const [entry] = (await a.inspect('w')).queue;
  const id = entry!.id;
  const ticket = holder.token + 1; // a token the next grant could carry
  const channel = `${prefix}:wake:${b.sessionId}`;
  const junk = [
    '', ' ', 'x', id, `${id} ${ticket}`, `${id} ${ticket} NaN`, `${id} ${ticket} -5`, `${id} ${ticket} 1e99`,
    `${id} abc def`, `${id} ${ticket} 1 extra`, '\u0000\uFFFF', 'x'.repeat(100_000), `${id}  ${ticket}  1`,
  ];
  for (const message of junk) await fx.client.publish(channel, message);
  await fx.client.publish(Buffer.from(channel), Buffer.from([0xff, 0xfe, 0x00]));
  await sleep(200);
  t.false(granted, 'no malformed message was taken as a grant');
  await holder.release();
  const lease = await waiting;
  t.true(lease.token > holder.token);
  t.false(lease.signal.aborted);
  await lease.release();
});

test('a throwing lost listener becomes a warning, not an uncaught exception', async (t) => {
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  t.teardown(() => locks.close());
  const warnings = captureWarnings(t);
  let calls = 0;
  locks.on('lost', () => {
    calls++;
    throw new Error('listener bug');
  });
  const lease = await locks.lock('l').acquire({ leaseMs: 50, autoRenew: false });
  await sleep(150);
  t.true(lease.signal.aborted);
  await sleep(50); // warnings are emitted on the next tick
  t.is(calls, 1);
  t.true(warnings.some((w) => w.includes('listener bug')), warnings.join('; '));
});

test('an async onQueued and an async lost listener that reject become nothing worse than a warning', async (t) => {
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  t.teardown(() => locks.close());
  const warnings = captureWarnings(t);
  locks.on('lost', async () => {
    throw new Error('async listener bug');
  });
  const holder = await locks.lock('q').acquire();
  const q = whenQueued();
  const waiting = locks.lock('q').acquire({
    timeoutMs: 10_000,
    onQueued: async (position) => {
      q.onQueued(position);
      throw new Error('async onQueued bug');
    },
  });
  await q.queued;
  const short = await locks.lock('l').acquire({ leaseMs: 50, autoRenew: false });
  await sleep(200);
  t.true(short.signal.aborted);
  await holder.release();
  await (await waiting).release();
  await sleep(50);
  t.true(warnings.some((w) => w.includes('async listener bug')), warnings.join('; '));
});
