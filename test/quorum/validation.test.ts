/**
 * What FairLocks.quorum refuses: fewer than three masters, an even count, a cluster client, a client
 * given twice, two clients of one server (INFO run_id: at first use, or by verify()), options that
 * do not apply to a quorum; every refusal an InvalidArgumentError.
 */
import test from 'ava';
import { Cluster } from 'ioredis';
import { FairLocks, InvalidArgumentError } from '../../src/index.js';
import { openClient } from '../helpers/cleanup.js';
import { startMasters, FAST } from '../helpers/masters.js';

test('an odd number of at least three distinct, non-cluster clients', async (t) => {
  const m = await startMasters(t, 3);
  const c = await Promise.all(m.servers.map((s) => openClient(t, s.url)));
  const invalid = { instanceOf: InvalidArgumentError, code: 'INVALID_ARGUMENT' } as const;
  t.throws(() => FairLocks.quorum([]), invalid);
  t.throws(() => FairLocks.quorum([c[0]!]), invalid);
  t.throws(() => FairLocks.quorum([c[0]!, c[1]!]), invalid);
  t.throws(() => FairLocks.quorum([c[0]!, c[1]!, c[2]!, c[0]!.duplicate()]), { ...invalid, message: /odd number/ });
  t.throws(() => FairLocks.quorum([c[0]!, c[1]!, c[0]!]), { ...invalid, message: /same client twice/ });
  t.throws(() => FairLocks.quorum('x' as never), invalid);
  const cluster = new Cluster([{ host: '127.0.0.1', port: m.servers[0]!.port }], { lazyConnect: true });
  t.throws(() => FairLocks.quorum([c[0]!, c[1]!, cluster]), { ...invalid, message: /cluster client/ });
  t.throws(() => FairLocks.quorum([c[0]!, c[1]!, c[2]!], { durability: { replicas: 1 } } as never), invalid);
  t.throws(() => FairLocks.quorum([c[0]!, c[1]!, c[2]!], { commandTimeoutMs: 0 }), invalid);
  t.throws(() => FairLocks.quorum([c[0]!, c[1]!, c[2]!], { maxRestarts: -1 }), invalid);
  const q = FairLocks.quorum([c[0]!, c[1]!, c[2]!], FAST);
  await t.throwsAsync(q.lock('x').acquire({ group: 'g' } as never), invalid);
  await t.throwsAsync(q.lock('x').acquire({ weight: 2 } as never), invalid);
  t.throws(() => q.lock(''), invalid);
  t.deepEqual(await q.verify(), [0, 1, 2]);
  await q.close();
  t.throws(() => q.lock('x'), { code: 'CLOSED' });
});

test('two clients of one server are refused before either is used (run_id), by verify() and by acquire', async (t) => {
  const m = await startMasters(t, 2);
  const same = await openClient(t, m.servers[0]!.url);
  const c = await Promise.all(m.servers.map((s) => openClient(t, s.url)));
  const q = FairLocks.quorum([c[0]!, same, c[1]!], FAST);
  await t.throwsAsync(q.lock('dup').acquire({ timeoutMs: 5_000 }), { instanceOf: InvalidArgumentError, message: /same Redis server/ });
  await t.throwsAsync(q.verify(), { instanceOf: InvalidArgumentError });
  t.throws(() => q.lock('dup'), { instanceOf: InvalidArgumentError }, 'every later call is refused too');
  const info = await FairLocks.quorum([c[0]!, c[1]!, await openClient(t, m.servers[1]!.url)], FAST).verify().catch((e: Error) => e);
  t.true(info instanceof InvalidArgumentError);
  await q.close();
});
