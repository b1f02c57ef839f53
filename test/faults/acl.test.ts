/**
 * Under an ACL user, README's rule (read from README) is enough for every operation; a missing publish
 * right costs only speed (the heartbeat finds the grant); a missing command is NO_PERMISSION, not BAD_KEY.
 */
import test, { type ExecutionContext } from 'ava';
import { FairLocks, FairLockError } from '../../src/index.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { whenQueued } from '../helpers/queued.js';
import { connectAs, readmeRule } from '../helpers/acl-user.js';

const fx = useRedis({ owned: true }); // ACL SETUSER changes the server: never a user's own Redis
const OPTS = { leaseMs: 2_000, livenessMs: 1_000, heartbeatMs: 200 };

const asUser = (t: ExecutionContext, rule: string[]) => connectAs(t, fx.client, fx.server.url, rule);

function track(t: ExecutionContext, ...all: FairLocks[]): void {
  t.teardown(async () => {
    await Promise.all(all.map((l) => l.close().catch(() => undefined)));
  });
}

test.serial('every operation works under exactly the rule README gives', async (t) => {
  const prefix = newPrefix();
  const client = await asUser(t, readmeRule(prefix, 'locker'));
  t.is(await client.sendCommand(['ACL', 'WHOAMI']).catch(() => 'denied'), 'denied', 'the user is really limited');
  // Slow heartbeats: a hand-off well under one of them was woken by the message.
  const opts = { ...OPTS, heartbeatMs: 1_500, livenessMs: 4_000 };
  const a = new FairLocks(client, { prefix, ...opts });
  const b = new FairLocks(client, { prefix, ...opts });
  track(t, a, b);
  const lease = await a.lock('x').acquire();
  const q = whenQueued();
  const waiting = b.lock('x').acquire({ onQueued: q.onQueued });
  await q.queued;
  t.is((await a.inspect('x')).queue.length, 1);
  t.is(await b.lock('x').tryAcquire(), null);
  await lease.extend(3_000);
  await new Promise((r) => setTimeout(r, opts.heartbeatMs + 500)); // heartbeats run under the user too
  const t0 = performance.now();
  await lease.release();
  const next = await waiting;
  t.true(performance.now() - t0 < opts.heartbeatMs, 'woken by the wake-up message, not a heartbeat');
  t.true(next.token > lease.token);
  await next.release();
  const timedOut = await b.lock('x').acquire({ timeoutMs: 0 });
  await timedOut.release();
  await a.close();
  await b.close();
  // An empty queue list is deleted by Redis: the name is its state hash alone.
  const left = () => fx.client.keys(`${prefix}:*`);
  for (let i = 0; i < 2 * opts.livenessMs / 100 + 30 && (await left()).length > 1; i++) await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(await left(), [`${prefix}:{x}:state`], 'nothing left but the :state hash');
});

test.serial('groups take turns under exactly the rule README gives: caps, a cancel, inspect', async (t) => {
  const prefix = newPrefix();
  const client = await asUser(t, readmeRule(prefix, 'locker'));
  const a = new FairLocks(client, { prefix, ...OPTS });
  track(t, a);
  const sem = a.semaphore('g', { permits: 2, perGroup: 1 });
  const x1 = await sem.acquire({ group: 'x' });
  const qx = whenQueued();
  const x2 = sem.acquire({ group: 'x', onQueued: qx.onQueued }); // parked at x's cap
  x2.catch(() => undefined); // a failed assertion closes it in teardown
  await qx.queued;
  const y1 = await sem.acquire({ group: 'y', timeoutMs: 5_000 }); // not held back by x
  const gone = new AbortController();
  const qy = whenQueued();
  const y2 = sem.acquire({ group: 'y', signal: gone.signal, onQueued: qy.onQueued });
  y2.catch(() => undefined);
  await qy.queued;
  const info = await a.inspect('g');
  t.deepEqual(info.groups.map((g) => [g.group, g.held, g.waiting, g.capped]), [['x', 1, 1, true], ['y', 1, 1, true]]);
  gone.abort();
  await t.throwsAsync(y2, { code: 'LOCK_ABORTED' });
  await x1.release();
  const l2 = await x2;
  await Promise.all([l2.release(), y1.release()]);
  await a.close();
  t.deepEqual(await fx.client.keys(`${prefix}:*`), [`${prefix}:{g}:state`], 'no group key left');
});

test.serial('without the publish right a release still hands on and resolves; the heartbeat wakes the waiter', async (t) => {
  const prefix = newPrefix();
  const rule = readmeRule(prefix, 'nopub').filter((w) => w !== '+publish');
  const client = await asUser(t, rule);
  const a = new FairLocks(client, { prefix, ...OPTS });
  const b = new FairLocks(client, { prefix, ...OPTS });
  track(t, a, b);
  const lease = await a.lock('p').acquire();
  const q = whenQueued();
  const waiting = b.lock('p').acquire({ timeoutMs: 10_000, onQueued: q.onQueued });
  await q.queued;
  await t.notThrowsAsync(lease.release(), 'the lock was handed on, so the release succeeded');
  const next = await waiting;
  t.true(next.token > lease.token);
  await next.release();
});

test.serial('a command the user lacks is NO_PERMISSION quoting Redis, not BAD_KEY', async (t) => {
  const prefix = newPrefix();
  const rule = readmeRule(prefix, 'norpush').filter((w) => w !== '+rpush'); // a waiter joins the queue with RPUSH
  const client = await asUser(t, rule);
  const a = new FairLocks(client, { prefix, ...OPTS });
  const b = new FairLocks(client, { prefix, ...OPTS });
  track(t, a, b);
  const lease = await a.lock('z').acquire(); // an immediate grant pushes nothing
  const err = await t.throwsAsync(b.lock('z').acquire({ timeoutMs: 2_000 }), { instanceOf: FairLockError });
  t.is((err as FairLockError).code, 'NO_PERMISSION', err?.message);
  t.regex(err!.message, /NOPERM|can't run this command/, 'it quotes Redis');
  await lease.release();
});
