/**
 * Tokens across the chain (DESIGN §8 rules 2 and 4) on three real independent masters, with one
 * master's last token far ahead of the others (as a master whose clock ran an hour ahead leaves it):
 *   - floor: each next master grants at least the highest token the acquire got so far, so every
 *     held master names the lease's token T and no commit round is needed;
 *   - commit: a held master whose token is below T gets last = T, so an acquire that skips the master
 *     that was ahead (down) still takes a token above T (without the commit, tokens go back down).
 * The last token is set on the master's state hash (field t, lua/engine.lua's header) before the
 * name is used.
 */
import test from 'ava';
import { DEFAULTS } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { openClient } from '../helpers/cleanup.js';
import { startMasters } from '../helpers/masters.js';
import type { QuorumLease } from './kit.js';

/** A token an hour ahead of Redis time in µs. */
const ahead = () => (Date.now() + 3_600_000) * 1000;

test('floor: after a master that is ahead, the next master grants the same high token; every held master names T', async (t) => {
  const m = await startMasters(t, 3);
  const high = ahead();
  const c0 = await openClient(t, m.servers[0]!.url);
  await c0.hSet(lockKeys(DEFAULTS.prefix, 'f').state, 't', String(high));
  const q = await m.quorum();
  const lease = (await q.lock('f').acquire()) as QuorumLease;
  t.deepEqual(lease.masters, [0, 1]);
  t.is(lease.token, high + 1, 'T is the ahead master\'s next token');
  const info = await q.inspect('f');
  t.deepEqual(info.masters.slice(0, 2).map((x) => x.info!.holders.map((h) => h.token)), [[high + 1], [high + 1]], 'master 1 granted at the floor: both name T');
  await lease.release();
});

test('commit: a held master below T is raised to T, so an acquire that skips the master that was ahead still rises', async (t) => {
  const m = await startMasters(t, 3);
  const high = ahead();
  const c1 = await openClient(t, m.servers[1]!.url);
  await c1.hSet(lockKeys(DEFAULTS.prefix, 'c').state, 't', String(high));
  const [a, b] = await Promise.all([m.quorum(), m.quorum()]);
  const first = (await a!.lock('c').acquire()) as QuorumLease;
  t.deepEqual(first.masters, [0, 1]);
  t.is(first.token, high + 1, 'T comes from master 1');
  const c0 = await openClient(t, m.servers[0]!.url);
  t.is(Number(await c0.hGet(lockKeys(DEFAULTS.prefix, 'c').state, 't')), high + 1, 'the commit raised master 0\'s last token to T');
  await first.release();
  await m.kill(1); // the master that was ahead: skipped from now on
  const next = (await b!.lock('c').acquire({ timeoutMs: 10_000 })) as QuorumLease;
  t.deepEqual(next.masters, [0, 2], 'master 1 skipped');
  t.true(next.token > first.token, `tokens rise across the skipped master (${next.token} > ${first.token})`);
  await next.release();
});
