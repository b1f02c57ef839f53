/**
 * Every supported client (node-redis 4, 5, 6 and 6 over RESP3, ioredis 5 and 6, Valkey GLIDE) gives the
 * same behaviour: FIFO hand-offs woken through its own subscriber, no barging, a lost wake-up recovered
 * after CLIENT KILL TYPE pubsub, SCRIPT FLUSH survived, a call killed before Redis ran it sent again,
 * waits that give up while Redis does not answer, and a Redis restarted empty.
 */
import test, { type ExecutionContext } from 'ava';
import { FairLocks, LockLostError, LockTimeoutError, type FairLocksOptions } from '../src/index.js';
import { clientFamilies, type TestClient } from './helpers/clients.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { whenAborted, whenQueued } from './helpers/queued.js';

const fx = useRedis({ owned: true }); // pauses, freezes and restarts the server
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ctx {
  c: TestClient;
  locks(options?: FairLocksOptions): FairLocks;
}

/** A client of `family` and FairLocks on it, all closed when the test ends, whatever happens. */
async function setup(t: ExecutionContext, family: { connect: () => Promise<TestClient> }): Promise<Ctx> {
  const c = await family.connect();
  const made: FairLocks[] = [];
  t.teardown(async () => {
    await Promise.all(made.map((l) => Promise.race([l.close().catch(() => undefined), sleep(3_000)])));
    await c.close();
  });
  return {
    c,
    locks: (options) => {
      const l = new FairLocks(c.client, options);
      made.push(l);
      return l;
    },
  };
}

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(25);
  }
}

for (const family of clientFamilies('redis://placeholder')) {
  const name = family.name;
  const connect = () => clientFamilies(fx.server.url).find((f) => f.name === name)!;

  test.serial(`${name}: hand-off in FIFO order through the wake-up, no barging, timeoutMs 0 never queues`, async (t) => {
    // Heartbeats every 5 s: five hand-offs found by heartbeats would take ~25 s, by wake-ups ms.
    const x = await setup(t, connect());
    const prefix = newPrefix();
    const opts = { prefix, heartbeatMs: 5_000, livenessMs: 10_000 };
    const [a, b] = [x.locks(opts), x.locks(opts)];
    const holder = await a.lock('f').acquire();
    const order: number[] = [];
    const waits = [];
    const ids: string[] = [holder.id];
    for (let i = 0; i < 5; i++) {
      const q = whenQueued();
      const side = i % 2 ? a : b;
      waits.push(side.lock('f').acquire({ timeoutMs: 20_000, onQueued: q.onQueued }).then(async (lease) => {
        order.push(i);
        ids.push(lease.id);
        const token = lease.token;
        await lease.release();
        return token;
      }));
      await q.queued;
    }
    t.is(await a.lock('f').tryAcquire(), null, 'tryAcquire does not barge');
    await t.throwsAsync(b.lock('f').acquire({ timeoutMs: 0 }), { instanceOf: LockTimeoutError });
    const started = performance.now();
    await holder.release();
    const tokens = await Promise.all(waits);
    const took = performance.now() - started;
    t.deepEqual(order, [0, 1, 2, 3, 4], 'granted in queue order');
    t.true(tokens.every((tok, i) => i === 0 || tok > tokens[i - 1]!), 'tokens rise');
    t.true(tokens[0]! > holder.token);
    t.true(took < 10_000, `five hand-offs by wake-up, not by heartbeat (${took.toFixed(0)} ms)`);
    t.deepEqual(await a.inspect('f'), { kind: 'lock', limit: 1, perGroup: undefined, groups: [], available: 1, holders: [], holder: null, queue: [], recentReleases: ids.reverse() });
  });

  test.serial(`${name}: a wake-up lost to CLIENT KILL TYPE pubsub is recovered; the subscriber comes back`, async (t) => {
    const x = await setup(t, connect());
    const prefix = newPrefix();
    const opts = { prefix, heartbeatMs: 200, livenessMs: 1_000 };
    const [a, b] = [x.locks(opts), x.locks(opts)];
    const holder = await a.lock('k').acquire();
    const q = whenQueued();
    const waiting = b.lock('k').acquire({ timeoutMs: 10_000, onQueued: q.onQueued });
    await q.queued;
    const channel = `${prefix}:wake:${b.sessionId}`;
    await fx.client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await holder.release(); // published while b's subscriber is down: lost
    const lease = await waiting;
    t.true(lease.token > holder.token);
    await lease.release();
    await until('the subscriber resubscribed', async () => ((await fx.client.sendCommand(['PUBSUB', 'CHANNELS', channel])) as string[]).length === 1);
    t.pass();
  });

  test.serial(`${name}: SCRIPT FLUSH, then every call reloads its script`, async (t) => {
    const x = await setup(t, connect());
    const locks = x.locks({ prefix: newPrefix() });
    await (await locks.lock('s').acquire()).release();
    await fx.client.sendCommand(['SCRIPT', 'FLUSH']);
    const lease = await locks.lock('s').acquire();
    await lease.extend(2_000);
    await lease.release();
    t.is((await locks.inspect('s')).holder, null);
  });

  test.serial(`${name}: a release whose connection is killed before Redis ran it still hands the lock on`, async (t) => {
    const x = await setup(t, connect());
    const prefix = newPrefix();
    const opts = { prefix, leaseMs: 5_000, heartbeatMs: 200, livenessMs: 1_000 };
    const [a, b] = [x.locks(opts), x.locks(opts)];
    const lease = await a.lock('d').acquire();
    const q = whenQueued();
    const waiting = b.lock('d').acquire({ timeoutMs: 10_000, onQueued: q.onQueued });
    await q.queued;
    const id = await x.c.id();
    await fx.client.sendCommand(['CLIENT', 'PAUSE', '300', 'WRITE']); // holds the release unanswered
    const releasing = lease.release();
    await sleep(100);
    await fx.client.sendCommand(['CLIENT', 'KILL', 'ID', String(id)]);
    await t.notThrowsAsync(releasing, 'sent again on the reconnected client');
    const next = await waiting;
    t.true(next.token > lease.token);
    await next.release();
  });

  test.serial(`${name}: waits give up on time while Redis does not answer`, async (t) => {
    const x = await setup(t, connect());
    const prefix = newPrefix();
    const opts = { prefix, heartbeatMs: 200, livenessMs: 600 };
    const [a, b] = [x.locks(opts), x.locks(opts)];
    const holder = await a.lock('z').acquire();
    const q = whenQueued();
    const waiting = b.lock('z').acquire({ timeoutMs: 400, onQueued: q.onQueued });
    await q.queued;
    process.kill(fx.server.pid!, 'SIGSTOP');
    const started = performance.now();
    try {
      await t.throwsAsync(waiting, { instanceOf: LockTimeoutError });
    } finally {
      process.kill(fx.server.pid!, 'SIGCONT');
    }
    const waited = performance.now() - started;
    t.true(waited < 400 + opts.livenessMs + 5_000, `rejected after ${waited.toFixed(0)} ms`);
    await until('the held-back cancel ran', async () => (await a.inspect('z')).queue.length === 0);
    await holder.release().catch(() => undefined); // may have been lost while Redis was frozen
  });

  test.serial(`${name}: Redis restarted empty: the holder learns the loss, the waiter re-enters and is granted`, async (t) => {
    const x = await setup(t, connect());
    const prefix = newPrefix();
    const opts = { prefix, leaseMs: 1_000, heartbeatMs: 200, livenessMs: 1_000 };
    const [a, b] = [x.locks(opts), x.locks(opts)];
    const holder = await a.lock('r').acquire();
    const lost = whenAborted(holder.signal);
    const q = whenQueued();
    const waiting = b.lock('r').acquire({ timeoutMs: 15_000, onQueued: q.onQueued });
    await q.queued;
    await fx.server.kill();
    await sleep(200);
    await fx.server.restart();
    t.true((await lost) instanceof LockLostError);
    await t.throwsAsync(holder.release(), { instanceOf: LockLostError });
    const lease = await waiting;
    t.true(lease.token > holder.token, 'tokens rise across the data loss');
    await lease.release();
  });
}
