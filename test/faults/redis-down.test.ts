/**
 * While Redis does not answer (SIGSTOPped), timeouts and aborts still reject on time and the cancel lands
 * once Redis is back; close() returns within about one liveness period.
 */
import test from 'ava';
import { LockAbortedError, LockTimeoutError } from '../../src/index.js';
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
  const until = performance.now() + 10_000;
  while ((await holderSide.inspect('down')).queue.length > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual((await holderSide.inspect('down')).queue, []);
  await holder.release();
  t.is((await holderSide.inspect('down')).holder, null);
  await Promise.all([holderSide.close(), waiterSide.close()]);
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
