/**
 * While Redis does not answer (SIGSTOPped), timeouts and aborts still reject on time (their own bound
 * plus Waiter.CANCEL_GRACE_MS, not a liveness period) and the cancel lands once Redis is back; the
 * same when the shared connection is busy behind a blocking command, and close() waits for such a
 * cancel; close() returns within about one liveness period.
 */
import test from 'ava';
import type { Redis as IORedis } from 'ioredis';
import { LockAbortedError, LockTimeoutError } from '../../src/index.js';
import { until } from '../helpers/bounded.js';
import { clientFamilies } from '../helpers/clients.js';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';
import { newLocks } from '../helpers/cleanup.js';
import { whenQueued } from '../helpers/queued.js';

// This file freezes the server: its tests run one at a time. Run together, one test's SIGSTOP could
// land while the other enqueued, its 400 ms timeout then fired before onQueued, and the wait for
// onQueued hung the file (seen once in a full run under load).
const fx = useRedis({ owned: true });

test.serial('timeout and abort still reject while Redis does not answer; the cancel lands once it does', async (t) => {
  const prefix = newPrefix();
  const opts = { prefix, heartbeatMs: 200, livenessMs: 600 };
  const holderSide = newLocks(t, fx.client, opts);
  const waiterSide = newLocks(t, fx.client, opts);
  const holder = await holderSide.lock('down').acquire();
  const queued: Promise<void>[] = [];
  const ctrl = new AbortController();
  const waits = [{ timeoutMs: 400 }, { signal: ctrl.signal }].map((o) => {
    let done!: () => void;
    queued.push(new Promise<void>((r) => (done = r)));
    return waiterSide.lock('down').acquire({ ...o, onQueued: () => done() });
  });
  // Bounded: a wait that failed before it was queued fails the test instead of hanging it.
  await Promise.race([Promise.all(queued), ...waits.map((w) => w.then(() => Promise.reject(new Error('granted')), (err: unknown) => Promise.reject(err)))]);
  process.kill(fx.server.pid!, 'SIGSTOP'); // Redis takes commands but answers none
  try {
    const started = performance.now();
    ctrl.abort();
    await t.throwsAsync(waits[0]!, { instanceOf: LockTimeoutError });
    await t.throwsAsync(waits[1]!, { instanceOf: LockAbortedError });
    const waited = performance.now() - started;
    t.true(waited < 400 + opts.livenessMs + 2_000, `rejected after ${waited.toFixed(0)} ms`);
  } finally {
    process.kill(fx.server.pid!, 'SIGCONT');
  }
  // The held-back cancels run once Redis answers: the queue empties and the holder hands on to nobody.
  await until(async () => (await holderSide.inspect('down')).queue.length === 0, 10_000, 'the queue empties once Redis answers');
  t.deepEqual((await holderSide.inspect('down')).queue, []);
  await holder.release();
  t.is((await holderSide.inspect('down')).holder, null);
  await Promise.all([holderSide.close(), waiterSide.close()]);
});

test.serial('with the default 5 s liveness, a timeout and an abort reject on their own bound while Redis does not answer', async (t) => {
  const prefix = newPrefix();
  const holderSide = newLocks(t, fx.client, { prefix });
  const waiterSide = newLocks(t, fx.client, { prefix });
  const holder = await holderSide.lock('down5').acquire();
  const ctrl = new AbortController();
  const [q1, q2] = [whenQueued(), whenQueued()];
  const timingOut = waiterSide.lock('down5').acquire({ timeoutMs: 300, onQueued: q1.onQueued });
  const aborted = waiterSide.lock('down5').acquire({ signal: ctrl.signal, onQueued: q2.onQueued });
  await Promise.all([q1.queued, q2.queued]);
  process.kill(fx.server.pid!, 'SIGSTOP');
  let waited: number;
  try {
    const started = performance.now();
    ctrl.abort();
    await t.throwsAsync(aborted, { instanceOf: LockAbortedError });
    await t.throwsAsync(timingOut, { instanceOf: LockTimeoutError });
    waited = performance.now() - started;
  } finally {
    process.kill(fx.server.pid!, 'SIGCONT');
  }
  // Before, each waited for its cancel up to the liveness period (5 s): well past this.
  t.true(waited < 300 + 2_500, `rejected after ${waited.toFixed(0)} ms`);
  await until(async () => (await holderSide.inspect('down5')).queue.length === 0, 10_000, 'the queue empties once Redis answers');
  t.deepEqual((await holderSide.inspect('down5')).queue, [], 'the cancels landed once Redis answered');
  await holder.release();
});

test.serial('an ioredis connection busy behind a blocking command holds no timeout past its bound; close() waits for the cancel', async (t) => {
  const prefix = newPrefix();
  const io = await clientFamilies(fx.server.url).find((f) => f.id === 'ioredis5')!.connect();
  t.teardown(() => io.close());
  const client = io.client as IORedis;
  const holderSide = newLocks(t, fx.client, { prefix });
  const waiterSide = newLocks(t, client, { prefix });
  const holder = await holderSide.lock('busy').acquire();
  const q = whenQueued();
  const waiting = waiterSide.lock('busy').acquire({ timeoutMs: 300, onQueued: q.onQueued });
  await q.queued;
  const blocking = client.blpop(`${prefix}:nothing`, 4); // the user's own call: 4 s on this connection
  const started = performance.now();
  await t.throwsAsync(waiting, { instanceOf: LockTimeoutError });
  const waited = performance.now() - started;
  t.true(waited < 300 + 2_500, `rejected after ${waited.toFixed(0)} ms, not behind the 4 s BLPOP`);
  // The cancel runs after the BLPOP, on that connection; close() waits for it (its subscriber,
  // a connection of its own, would let it return at once).
  await waiterSide.close();
  t.deepEqual((await holderSide.inspect('busy')).queue, [], 'the cancel landed before close() returned');
  t.is(await blocking, null);
  await holder.release();
});

test.serial('close() returns within about one liveness period while Redis does not answer', async (t) => {
  const prefix = newPrefix();
  const opts = { prefix, heartbeatMs: 200, livenessMs: 600 };
  const locks = newLocks(t, fx.client, opts);
  const other = newLocks(t, fx.client, opts);
  const held = await other.lock('c').acquire();
  await locks.lock('h').acquire(); // a lease close() must release
  const q = whenQueued();
  const waiting = locks.lock('c').acquire({ onQueued: q.onQueued }); // a wait close() must cancel
  await q.queued;
  process.kill(fx.server.pid!, 'SIGSTOP');
  try {
    const started = performance.now();
    await locks.close();
    const took = performance.now() - started;
    t.true(took < opts.livenessMs * 2 + 3_000, `close() returned after ${took.toFixed(0)} ms`);
    await t.throwsAsync(waiting, { code: 'CLOSED' });
  } finally {
    process.kill(fx.server.pid!, 'SIGCONT');
  }
  await held.release();
});
