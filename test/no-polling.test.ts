/**
 * Waiting does not poll: while 200 waiters wait, Redis runs only the per-process heartbeats, the same
 * whatever the number of waiters (counted from INFO commandstats on a server of the file's own).
 */
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import type { RedisClient } from './helpers/redis-client.js';
import { spawnChild, stopAll, type Child } from './helpers/children.js';
import { newLocks, openClient } from './helpers/cleanup.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';

const fx = useRedis({ owned: true }); // counts every command the server runs: no other tenants

const OPTS = { heartbeatMs: 250, livenessMs: 1_000, leaseMs: 1_000 };
const PROCS = 4;

/** Calls per command since the server started, without the INFO calls this test makes. */
async function commandCalls(client: RedisClient): Promise<{ total: number; scripts: number }> {
  const info = await client.info('commandstats');
  let total = 0;
  let scripts = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const [name, calls] = [m[1]!, Number(m[2])];
    if (name === 'info') continue;
    total += calls;
    if (name === 'evalsha' || name === 'eval') scripts += calls;
  }
  return { total, scripts };
}

/** W waiters spread over PROCS processes wait on a held lock; count what Redis runs meanwhile. */
async function measure(t: ExecutionContext, client: RedisClient, waiters: number, windowMs: number) {
  const prefix = newPrefix();
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const holder = await locks.lock('busy').acquire();
  const procs: Child[] = [];
  for (let i = 0; i < PROCS; i++) procs.push(await spawnChild(t, fx.server.url, prefix, OPTS));
  for (let w = 0; w < waiters; w++) procs[w % PROCS]!.send({ op: 'acquire', req: `w${w}`, name: 'busy', timeoutMs: 120_000 });
  for (let w = 0; w < waiters; w++) await procs[w % PROCS]!.expect(`w${w}`, 'queued', 30_000);
  {
    await new Promise((r) => setTimeout(r, 2 * OPTS.heartbeatMs)); // let heartbeats settle into their period
  }
  const before = await commandCalls(client);
  const started = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const after = await commandCalls(client);
  const elapsed = performance.now() - started;
  const queue = (await locks.inspect('busy')).queue.length;
  await stopAll(procs);
  await holder.release().catch(() => undefined);
  await locks.close();
  return { total: after.total - before.total, scripts: after.scripts - before.scripts, elapsed, queue };
}

test('while 200 waiters wait, Redis runs only the per-process heartbeats, not work per waiter', async (t) => {
  const client = await openClient(t, fx.server.url);
  const few = await measure(t, client, 20, 2_000);
  const many = await measure(t, client, 200, 2_000);
  t.is(few.queue, 20);
  t.is(many.queue, 200);
  // One heartbeat script per process per lock per period; the holder's process beats too.
  const beats = (elapsed: number) => (PROCS + 1) * (Math.ceil(elapsed / OPTS.heartbeatMs) + 2);
  t.true(many.scripts <= beats(many.elapsed), `${many.scripts} scripts in ${many.elapsed.toFixed(0)} ms with 200 waiters`);
  t.true(few.scripts <= beats(few.elapsed), `${few.scripts} scripts in ${few.elapsed.toFixed(0)} ms with 20 waiters`);
  // Ten times the waiters must not mean more commands (slack for a heartbeat or two more in the window).
  t.true(many.total <= few.total * 1.5 + 20, `20 waiters: ${few.total} commands; 200 waiters: ${many.total}`);
  t.log(`commands in ~2 s: 20 waiters ${few.total} (${few.scripts} scripts), 200 waiters ${many.total} (${many.scripts} scripts)`);
  await client.quit();
});
