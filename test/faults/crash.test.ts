/**
 * After SIGKILL of the holder, the head waiter, a middle waiter, or the holder and head together, every
 * surviving waiter is granted in FIFO order within max(lease, liveness) + one heartbeat (with slack):
 * a dead head waiter's grant lasts only until its session's liveness deadline, not a second full lease.
 */
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { spawnChild, type Child } from '../helpers/children.js';
import { newLocks, openClient } from '../helpers/cleanup.js';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';

// lease > liveness, so that "a second full lease" would be clearly visible in the stall.
const OPTS = { leaseMs: 3000, livenessMs: 600, heartbeatMs: 150 };
const BOUND = Math.max(OPTS.leaseMs, OPTS.livenessMs) + OPTS.heartbeatMs;
const SLACK = 1500; // < leaseMs - livenessMs - heartbeatMs, so the bound still tells a liveness from a full lease

const fx = useRedis();

// Durations use this process's clock at both ends: the kill is stamped here, and a grant is stamped
// here when its event arrives (children.ts `receivedAt`), so a measured delay is an upper bound.
const now = () => performance.now();

interface W {
  child: Child;
  req: string;
}

/** Spawns n children, each queues one waiter on `name` in turn; returns them in queue order. */
async function queue(t: ExecutionContext, prefix: string, name: string, n: number, firstLeaseMs?: number): Promise<W[]> {
  const made = await Promise.all(Array.from({ length: n }, () => spawnChild(t, fx.server.url, prefix, OPTS)));
  const ws: W[] = [];
  for (const [i, child] of made.entries()) {
    const req = `w${i}`;
    // orderKey: each grant INCRs it while holding, so Redis numbers the grants in the order they happened.
    child.send({ op: 'acquire', req, name, timeoutMs: 30_000, leaseMs: i === 0 ? firstLeaseMs : undefined, orderKey: `${prefix}:order` });
    // The first one may find the lock free (it is then the holder).
    const q = await child.waitFor((e) => e.req === req && (e.ev === 'queued' || e.ev === 'granted'), 15_000, `queued ${req}`);
    if (q.ev === 'queued' && q.position > i + 1) throw new Error(`w${i} queued at ${q.position}`);
    ws.push({ child, req });
  }
  return ws;
}

/**
 * Each survivor releases as soon as it is granted; checks FIFO and the bound. Grant order is Redis's
 * count of grants (`order`), never a comparison of two processes' clocks; tokens must rise with it.
 */
async function served(t: ExecutionContext, survivors: W[], killedAt: number, bound = BOUND): Promise<void> {
  const grants = await Promise.all(
    survivors.map(async (w) => {
      const e = await w.child.expect(w.req, 'granted', 15_000);
      w.child.send({ op: 'release', req: w.req });
      await w.child.expect(w.req, 'released');
      return { receivedAt: e.receivedAt, order: e.ev === 'granted' ? (e.order ?? NaN) : NaN, token: e.ev === 'granted' ? e.token : NaN, req: w.req };
    }),
  );
  for (let i = 1; i < grants.length; i++) {
    t.true(grants[i]!.order > grants[i - 1]!.order, `${grants[i]!.req} granted after ${grants[i - 1]!.req} (grant #${grants[i]!.order} vs #${grants[i - 1]!.order})`);
    t.true(grants[i]!.token > grants[i - 1]!.token, `${grants[i]!.req} holds a higher token than ${grants[i - 1]!.req}`);
  }
  // Survivors release at once, so the last one is served within the bound too (parent's clock at both ends).
  const last = Math.max(...grants.map((g) => g.receivedAt)) - killedAt;
  t.log(`last survivor granted ${last.toFixed(0)} ms after the kill (bound ${bound} ms + slack ${SLACK} ms)`);
  t.true(last <= bound + SLACK, `last survivor granted ${last.toFixed(0)} ms after the kill`);
}

test.serial('SIGKILL of the holder: the queue is served in order within lease + one heartbeat', async (t) => {
  const prefix = newPrefix();
  const [holder, ...waiters] = await queue(t, prefix, 'K', 4);
  await holder!.child.expect(holder!.req, 'granted');
  const killedAt = now();
  await holder!.child.stop();
  await served(t, waiters, killedAt);
});

test.serial('SIGKILL of the head waiter: the holder\'s release skips it within its liveness + one heartbeat', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lease = await locks.lock('H').acquire();
  const [head, ...rest] = await queue(t, prefix, 'H', 3);
  const killedAt = now();
  await head!.child.stop();
  await lease.release(); // head still looks alive: it gets a grant that lasts only until its liveness deadline
  await served(t, rest, killedAt, OPTS.livenessMs + OPTS.heartbeatMs);
  await locks.close();
  await client.quit();
});

test.serial('SIGKILL of a middle waiter: the others are served in order, the dead one is skipped', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lease = await locks.lock('M').acquire();
  const ws = await queue(t, prefix, 'M', 4);
  const killedAt = now();
  await ws[1]!.child.stop();
  await lease.release();
  await served(t, [ws[0]!, ws[2]!, ws[3]!], killedAt, OPTS.livenessMs + OPTS.heartbeatMs);
  t.false(ws[1]!.child.events.some((e) => e.ev === 'granted'));
  await locks.close();
  await client.quit();
});

test.serial('SIGKILL of the holder and the head waiter at once: no second full lease is added to the stall', async (t) => {
  const prefix = newPrefix();
  const [holder, head, ...rest] = await queue(t, prefix, 'B', 5);
  await holder!.child.expect(holder!.req, 'granted');
  const killedAt = now();
  await Promise.all([holder!.child.stop(), head!.child.stop()]);
  await served(t, rest, killedAt);
  t.false(head!.child.events.some((e) => e.ev === 'granted'));
});

test.serial('SIGKILL of a short-lease holder and the head waiter at once: the head\'s unconfirmed grant ends at its liveness, not a full lease later', async (t) => {
  const prefix = newPrefix();
  // The holder's lease (300 ms) runs out while the dead head still looks alive (liveness 600 ms): the
  // head is granted, but only until its liveness deadline, not for its 3000 ms lease.
  const [holder, head, ...rest] = await queue(t, prefix, 'S', 5, 300);
  await holder!.child.expect(holder!.req, 'granted');
  const killedAt = now();
  await Promise.all([holder!.child.stop(), head!.child.stop()]);
  await served(t, rest, killedAt, Math.max(300, OPTS.livenessMs) + OPTS.heartbeatMs);
});
