/**
 * A partitioned holder (its renewals cut off) has its signal aborted on its local deadline, while Redis
 * still names it the holder: before the lock could have been granted to anyone else.
 */
import test from 'ava';
import { lockKeys } from '../../src/protocol/keys.js';
import { newPrefix, startRedis, type RedisServer } from '../helpers/redis.js';
import { newLocks, openClient } from '../helpers/cleanup.js';
import { cutAllBut } from '../helpers/partition.js';
import { whenAborted } from '../helpers/queued.js';
import { holdersAt, redisNow } from '../helpers/state.js';

// A 20% drift margin (160 ms) leaves room for the admin round trips that read the holder entry after the abort.
const OPTS = { leaseMs: 800, livenessMs: 600, heartbeatMs: 150, driftFactor: 0.2 };
let server: RedisServer;
test.before(async () => {
  server = await startRedis({ owned: true }); // CONFIG SET maxclients: a server of our own
});
test.after.always(async () => {
  await server?.stop();
});

/**
 * Every await of this test is bounded: a hang fails naming its step instead of timing the file out.
 */
async function step<T>(what: string, p: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`step "${what}" took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('a holder cut off from Redis aborts its signal while Redis still names it the holder', async (t) => {
  const prefix = newPrefix();
  const admin = await step('open admin', openClient(t, server.url));
  const client = await step('open client', openClient(t, server.url));
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const keys = lockKeys(prefix, 'p');
  const lease = await step('first acquire', locks.lock('p').acquire());
  await new Promise((r) => setTimeout(r, 2 * OPTS.heartbeatMs)); // a few renewals went through

  // Only the admin connection may stay: cut the others and refuse their reconnects.
  const cut = await cutAllBut(t, admin);
  const cutAt = Date.now();

  const reason = await step('the abort', whenAborted(lease.signal));
  // Right at the abort, Redis must still hold the grant: nobody else can have been granted yet.
  const entries = await step('read the holders', holdersAt(admin, keys.state));
  const left = entries.length > 0 ? entries[0]!.exp - (await step('read TIME', redisNow(admin))) : -2;
  t.log(`aborted ${Date.now() - cutAt} ms after the cut; Redis lease left then: ${left} ms`);
  t.true(left > 0, `the holder entry still lives in Redis (${left} ms left)`);
  t.deepEqual(entries.map((h) => h.id), [lease.id], 'and it is this lease');
  t.is((reason as { code?: string }).code, 'LOCK_LOST');
  t.true(Date.now() - cutAt <= OPTS.leaseMs + 1500, 'aborted within about one lease of the cut');

  await cut.heal();
  await t.throwsAsync(step('the release', lease.release()), { code: 'LOCK_LOST' } as never);
  const next = await step('the next acquire', locks.lock('p').acquire({ timeoutMs: 5_000 }));
  t.true(next.token > lease.token);
  await step('the next release', next.release());
  await step('close', locks.close());
  await step('quit client', client.quit());
  await step('quit admin', admin.quit());
});
