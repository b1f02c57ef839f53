/**
 * Crashes (DESIGN §2.5): SIGKILL of the holder, of the head waiter, of a middle waiter, and of the
 * holder and the head waiter at once. Every surviving waiter is granted, in FIFO order among the
 * survivors, no later than max(lease, liveness) + one heartbeat after the kill (plus generous slack:
 * this is a bound, not a benchmark). A dead head waiter must not add a second full lease to the stall:
 * a grant to an unconfirmed waiter lasts only until its session's liveness deadline.
 */
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { FairLocks } from '../../src/index.js';
import { spawnChild, type Child } from '../helpers/children.js';
import { connect, newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';

// lease > liveness, so that "a second full lease" would be clearly visible in the stall.
const OPTS = { leaseMs: 3000, livenessMs: 600, heartbeatMs: 150 };
const BOUND = Math.max(OPTS.leaseMs, OPTS.livenessMs) + OPTS.heartbeatMs;
const SLACK = 1500; // < leaseMs - livenessMs - heartbeatMs, so the bound still tells a liveness from a full lease

const fx = useRedis();

const wall = () => performance.timeOrigin + performance.now(); // the clock of the children's `at`

interface W {
  child: Child;
  req: string;
}

/** Spawns n fx.children, each queues one waiter on `name` in turn; returns them in queue order. */
async function queue(prefix: string, name: string, n: number, firstLeaseMs?: number): Promise<W[]> {
  const made = await Promise.all(Array.from({ length: n }, () => spawnChild(fx.server.url, prefix, OPTS)));
  fx.children.push(...made);
  const ws: W[] = [];
  for (const [i, child] of made.entries()) {
    const req = `w${i}`;
    child.send({ op: 'acquire', req, name, timeoutMs: 30_000, leaseMs: i === 0 ? firstLeaseMs : undefined });
    // The first one may find the lock free (it is then the holder).
    const q = await child.waitFor((e) => e.req === req && (e.ev === 'queued' || e.ev === 'granted'), 15_000, `queued ${req}`);
    if (q.ev === 'queued' && q.position > i + 1) throw new Error(`w${i} queued at ${q.position}`);
    ws.push({ child, req });
  }
  return ws;
}

/** Each survivor releases as soon as it is granted; checks FIFO (by time and token) and the bound. */
async function served(t: ExecutionContext, survivors: W[], killedAt: number, bound = BOUND): Promise<void> {
  const grants = await Promise.all(
    survivors.map(async (w) => {
      const e = await w.child.expect(w.req, 'granted', 15_000);
      w.child.send({ op: 'release', req: w.req });
      await w.child.expect(w.req, 'released');
      return { at: e.at, token: e.ev === 'granted' ? e.token : NaN, req: w.req };
    }),
  );
  for (let i = 1; i < grants.length; i++) {
    t.true(grants[i]!.at > grants[i - 1]!.at, `${grants[i]!.req} granted after ${grants[i - 1]!.req}`);
    t.true(grants[i]!.token > grants[i - 1]!.token, `${grants[i]!.req} holds a higher token than ${grants[i - 1]!.req}`);
  }
  // Survivors release at once, so the last one is served within the bound too.
  const last = grants[grants.length - 1]!.at - killedAt;
  t.log(`last survivor granted ${last.toFixed(0)} ms after the kill (bound ${bound} ms + slack ${SLACK} ms)`);
  t.true(last <= bound + SLACK, `last survivor granted ${last.toFixed(0)} ms after the kill`);
}

test.serial('SIGKILL of the holder: the queue is served in order within lease + one heartbeat', async (t) => {
  const prefix = newPrefix();
  const [holder, ...waiters] = await queue(prefix, 'K', 4);
  await holder!.child.expect(holder!.req, 'granted');
  const killedAt = wall();
  await holder!.child.stop();
  await served(t, waiters, killedAt);
});

test.serial('SIGKILL of the head waiter: the holder\'s release skips it within its liveness + one heartbeat', async (t) => {
  const prefix = newPrefix();
  const client = await connect(fx.server.url);
  const locks = new FairLocks(client, { prefix, ...OPTS });
  const lease = await locks.lock('H').acquire();
  const [head, ...rest] = await queue(prefix, 'H', 3);
  const killedAt = wall();
  await head!.child.stop();
  await lease.release(); // head still looks alive: it gets a grant that lasts only until its liveness deadline
  await served(t, rest, killedAt, OPTS.livenessMs + OPTS.heartbeatMs);
  await locks.close();
  await client.quit();
});

test.serial('SIGKILL of a middle waiter: the others are served in order, the dead one is skipped', async (t) => {
  const prefix = newPrefix();
  const client = await connect(fx.server.url);
  const locks = new FairLocks(client, { prefix, ...OPTS });
  const lease = await locks.lock('M').acquire();
  const ws = await queue(prefix, 'M', 4);
  const killedAt = wall();
  await ws[1]!.child.stop();
  await lease.release();
  await served(t, [ws[0]!, ws[2]!, ws[3]!], killedAt, OPTS.livenessMs + OPTS.heartbeatMs);
  t.false(ws[1]!.child.events.some((e) => e.ev === 'granted'));
  await locks.close();
  await client.quit();
});

test.serial('SIGKILL of the holder and the head waiter at once: no second full lease is added to the stall', async (t) => {
  const prefix = newPrefix();
  const [holder, head, ...rest] = await queue(prefix, 'B', 5);
  await holder!.child.expect(holder!.req, 'granted');
  const killedAt = wall();
  await Promise.all([holder!.child.stop(), head!.child.stop()]);
  await served(t, rest, killedAt);
  t.false(head!.child.events.some((e) => e.ev === 'granted'));
});

test.serial('SIGKILL of a short-lease holder and the head waiter at once: the head\'s unconfirmed grant ends at its liveness, not a full lease later', async (t) => {
  const prefix = newPrefix();
  // The holder's lease (300 ms) runs out while the dead head still looks alive (liveness 600 ms): the
  // head is granted, but only until its liveness deadline, not for its 3000 ms lease.
  const [holder, head, ...rest] = await queue(prefix, 'S', 5, 300);
  await holder!.child.expect(holder!.req, 'granted');
  const killedAt = wall();
  await Promise.all([holder!.child.stop(), head!.child.stop()]);
  await served(t, rest, killedAt, Math.max(300, OPTS.livenessMs) + OPTS.heartbeatMs);
});
