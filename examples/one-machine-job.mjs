// Recipe: a job on an interval that must run on ONE machine at a time.
//
// Every "machine" (here: a FairLocks instance with its own Redis connection; in production, one per
// process or host) runs the same setInterval. On each tick it makes ONE attempt, `tryAcquire()`, and
// only the machine that gets the lease runs the job; the others skip this tick (they never queue, so a
// slow job cannot pile up ticks behind it). A Redis counter checks that runs never overlap.
//
//   REDIS_URL=redis://127.0.0.1:6379 node examples/one-machine-job.mjs
import { createClient } from 'redis';
import { FairLocks } from 'fairlock';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MACHINES = 3;
const TICKS = 15; // per machine, then it stops: the example is bounded
const TICK_MS = 40;
const JOB_MS = 60; // longer than a tick: without the lock, runs would overlap
const RUNNING = 'example:one-machine-job:running'; // how many machines are inside the job right now
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const admin = await createClient({ url }).connect();
await admin.del(RUNNING);

let overlaps = 0;
const runsBy = new Map();

/** The job itself; the Redis counter proves nobody else is inside it at the same time. */
async function nightlyReport(machine, token) {
  const inside = await admin.incr(RUNNING);
  if (inside !== 1) overlaps++;
  try {
    await sleep(JOB_MS);
  } finally {
    await admin.decr(RUNNING);
  }
  runsBy.set(machine, (runsBy.get(machine) ?? 0) + 1);
  console.log(`${machine} ran the job (fencing token ${token})`);
}

async function machine(name, startMs) {
  const redis = await createClient({ url }).connect();
  const locks = new FairLocks(redis, { prefix: 'example' });
  const lock = locks.lock('one-machine-job');
  const inFlight = new Set();
  let skipped = 0;
  await sleep(startMs); // machines' clocks tick at different phases, as real ones do
  await new Promise((done) => {
    let ticks = 0;
    const timer = setInterval(() => {
      if (++ticks >= TICKS) { clearInterval(timer); done(); }
      const tick = (async () => {
        const lease = await lock.tryAcquire(); // one attempt, never queues: null while someone runs it
        if (!lease) { skipped++; return; }
        try {
          await nightlyReport(name, lease.token);
        } finally {
          await lease.release();
        }
      })().catch((err) => { console.error(`${name}:`, err); process.exitCode = 1; });
      inFlight.add(tick);
      tick.finally(() => inFlight.delete(tick));
    }, TICK_MS);
  });
  await Promise.all(inFlight); // let a running job finish before this machine shuts down
  await locks.close();
  await redis.quit();
  return skipped;
}

const skipped = await Promise.all(Array.from({ length: MACHINES }, (_, i) => machine(`machine-${i + 1}`, i * 13)));
const runs = [...runsBy.values()].reduce((a, b) => a + b, 0);
console.log(`runs: ${runs}, skipped ticks: ${skipped.reduce((a, b) => a + b, 0)}, by machine: ${JSON.stringify(Object.fromEntries(runsBy))}`);
console.log(`overlapping runs: ${overlaps}`);
await admin.quit();
if (overlaps !== 0 || runs === 0) {
  console.error('FAILED: the job must run, and never on two machines at once');
  process.exit(1);
}
console.log('ok: the job ran on one machine at a time');
