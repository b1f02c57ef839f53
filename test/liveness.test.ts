/**
 * A process killed with SIGKILL blocks nobody for long: a dead waiter is skipped for the next live one,
 * and a dead holder stops blocking the queue once its lease runs out.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { spawnChild } from './helpers/children.js';
import { newLocks, openClient } from './helpers/cleanup.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';

const fx = useRedis();

const FAST = { leaseMs: 800, livenessMs: 800, heartbeatMs: 200 };

test('a waiter killed with SIGKILL is skipped; the next live waiter is granted', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...FAST });
  const holder = await locks.lock('k').acquire({ leaseMs: 10_000 }); // long: spawning children on a loaded machine must not lose it
  const doomed = await spawnChild(t, fx.server.url, prefix, FAST);
  const survivor = await spawnChild(t, fx.server.url, prefix, FAST);
  doomed.send({ op: 'acquire', req: 'd', name: 'k' });
  await doomed.expect('d', 'queued');
  survivor.send({ op: 'acquire', req: 's', name: 'k' });
  await survivor.expect('s', 'queued');
  await doomed.stop(); // SIGKILL
  await new Promise((r) => setTimeout(r, FAST.livenessMs + 300)); // its liveness runs out
  t.deepEqual((await locks.inspect('k')).queue.map((q) => q.id.split(':')[0]), [survivor.sessionId]);
  await holder.release();
  const granted = await survivor.expect('s', 'granted');
  t.is(granted.ev, 'granted');
  survivor.send({ op: 'release', req: 's' });
  await survivor.expect('s', 'released');
  await locks.close();
  await client.quit();
});

test('a holder killed with SIGKILL stops blocking the queue after its lease', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...FAST });
  const dead = await spawnChild(t, fx.server.url, prefix, FAST);
  dead.send({ op: 'acquire', req: 'h', name: 'k' });
  await dead.expect('h', 'granted');
  let queuedAt = 0;
  // In-process waiter: the kill and the grant are both timed on this process's clock.
  const waiting = locks.lock('k').acquire({ onQueued: () => (queuedAt = performance.now()) });
  await new Promise((r) => setTimeout(r, 100));
  const killedAt = performance.now();
  await dead.stop();
  const lease = await waiting;
  const stall = performance.now() - killedAt;
  t.true(queuedAt > 0);
  // Bound: the lease it last renewed + one heartbeat of the waiter (+ generous slack for a noisy machine).
  t.true(stall < FAST.leaseMs + FAST.heartbeatMs + 1_500, `stalled ${stall.toFixed(0)} ms`);
  t.log(`granted ${stall.toFixed(0)} ms after the holder was killed`);
  await lease.release();
  await locks.close();
  await client.quit();
});
