/**
 * Beat until released: a release (or a cancel) that could not reach Redis is retried by the
 * session's next heartbeat, which hands the lock on at once. Without it, a lease whose release failed
 * kept the lock until its lease ran out, and a wait given up while Redis was unreachable could be
 * granted later and hold the lock for a lease nobody wanted.
 */
import { isEngineCall } from '../../src/protocol/scripts.js';
import test, { type ExecutionContext } from 'ava';
import { FairLocks } from '../../src/index.js';
import type { RedisClient } from '../helpers/redis-client.js';
import { useRedis } from '../helpers/fixture.js';
import { connect, newPrefix } from '../helpers/redis.js';
import { whenQueued } from '../helpers/queued.js';

const fx = useRedis();
const OPTS = { leaseMs: 5_000, livenessMs: 1_000, heartbeatMs: 100 };

/** A client whose next script call for `id` fails as if its connection had dropped before Redis ran it. */
async function flakyClient(t: ExecutionContext): Promise<{ client: RedisClient; failNext(id: string): void }> {
  const client = await connect(fx.server.url);
  t.teardown(() => client.quit().then(() => undefined, () => undefined));
  const orig = client.sendCommand.bind(client);
  let failFor: string | undefined;
  (client as unknown as { sendCommand: unknown }).sendCommand = (args: string[], ...rest: unknown[]) => {
    if (failFor !== undefined && isEngineCall(args, 'release') && args.includes(failFor)) {
      failFor = undefined;
      return Promise.reject(new Error('simulated: the command was lost with its connection'));
    }
    return (orig as (...a: unknown[]) => unknown)(args, ...rest);
  };
  return { client, failNext: (id) => (failFor = id) };
}

test.serial('a release that did not reach Redis is retried by the next heartbeat: the next waiter gets the lock long before the lease ends', async (t) => {
  const prefix = newPrefix();
  const flaky = await flakyClient(t);
  const a = new FairLocks(flaky.client, { prefix, ...OPTS });
  const b = new FairLocks(fx.client, { prefix, ...OPTS });
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const lease = await a.lock('r').acquire();
  const q = whenQueued();
  const waiting = b.lock('r').acquire({ timeoutMs: 20_000, onQueued: q.onQueued });
  await q.queued;
  flaky.failNext(lease.id);
  const t0 = performance.now();
  await t.throwsAsync(lease.release(), { message: /simulated/ });
  const next = await waiting;
  const waited = performance.now() - t0;
  t.log(`granted ${waited.toFixed(0)} ms after the failed release`);
  t.true(waited < OPTS.leaseMs / 2, `handed on by a heartbeat, not when the 5 s lease ran out (${waited.toFixed(0)} ms)`);
  t.true(next.token > lease.token);
  await next.release();
});

test.serial('a wait given up whose cancel did not reach Redis leaves the queue at the next heartbeat', async (t) => {
  const prefix = newPrefix();
  const flaky = await flakyClient(t);
  const a = new FairLocks(fx.client, { prefix, ...OPTS });
  const b = new FairLocks(flaky.client, { prefix, ...OPTS });
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const lease = await a.lock('c').acquire();
  const q = whenQueued();
  const controller = new AbortController();
  const waiting = b.lock('c').acquire({ signal: controller.signal, onQueued: q.onQueued });
  await q.queued;
  const [entry] = (await a.inspect('c')).queue;
  flaky.failNext(entry!.id);
  controller.abort();
  await t.throwsAsync(waiting);
  // Keep b's session beating on the lock for another, later waiter of its own.
  const q2 = whenQueued();
  const later = b.lock('c').acquire({ timeoutMs: 20_000, onQueued: q2.onQueued });
  await q2.queued;
  for (let i = 0; i < 50 && (await a.inspect('c')).queue.some((e) => e.id === entry!.id); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  t.false((await a.inspect('c')).queue.some((e) => e.id === entry!.id), 'the abandoned wait left the queue');
  await lease.release();
  const next = await later;
  t.true(next.token > lease.token);
  await next.release();
});
