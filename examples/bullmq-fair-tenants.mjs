// Recipe: BullMQ workers share ONE GPU-like pool fairly across tenants (what BullMQ sells as "groups").
//
// Two workers (concurrency 16 each) run jobs of three tenants. Every job first takes a permit of one
// fair semaphore, `gpu`, with 4 permits and at most 2 per tenant:
//   locks.semaphore('gpu', { permits: 4, perGroup: 2 }).using(work, { group: tenant })
// The tenants with waiting jobs take turns for the permits, each tenant's jobs in the order they
// asked; a tenant at its cap of 2 is passed over without holding the others back. So when acme
// enqueues a burst of 24 jobs just before globex and initech enqueue 3 each, the quiet tenants' first
// jobs get the pool after at most 3 of acme's; with one FIFO queue (no groups) they would wait for
// every acme job that reached the pool before them (14 of the 24 in a run here).
// Redis counters check the caps; the fencing tokens of the grants (one counter in Redis, so they
// follow the grant order across both workers) show the order.
//
// A job waiting for a permit occupies a worker slot meanwhile (waiting costs a promise and a list
// element in Redis, no polling). If one tenant's backlog can fill every slot, BullMQ stops picking up
// the other tenants' jobs until slots free: keep `concurrency` well above the permits (here 2 x 16
// slots for 30 jobs) and mind BullMQ's `lockDuration`, which BullMQ renews while the job waits.
//
//   REDIS_URL=redis://127.0.0.1:6379 node examples/bullmq-fair-tenants.mjs
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { FairLocks } from 'fairlock';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// BullMQ connects through ioredis with its own options; its workers need maxRetriesPerRequest: null.
const { hostname, port, password, username } = new URL(url);
const connection = {
  host: hostname, port: Number(port || 6379), maxRetriesPerRequest: null,
  ...(password ? { password: decodeURIComponent(password) } : {}),
  ...(username ? { username: decodeURIComponent(username) } : {}),
};
const QUEUE = 'example-fair-tenants';
const PERMITS = 4; // the pool: at most 4 jobs on the GPU at once
const PER_TENANT = 2; // at most 2 of them of one tenant
const JOB_MS = 150;
const BURST = 'acme';
const tenants = { acme: 24, globex: 3, initech: 3 }; // acme's burst is enqueued first
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const admin = new Redis(url);
const queue = new Queue(QUEUE, { connection });
await queue.obliterate({ force: true }); // a clean slate for the example
const running = (who) => `example:fair-tenants:running:${who}`; // jobs of a tenant (or 'pool': all) running now
const peak = (who) => `example:fair-tenants:peak:${who}`; // the most of them ever running at once
const counters = [...Object.keys(tenants), 'pool'].flatMap((who) => [running(who), peak(who)]);
// One atomic step per counter: count this job in and keep the peak (no clocks involved).
const ENTER = `for i = 1, #KEYS, 2 do
    local n = redis.call('INCR', KEYS[i])
    if n > tonumber(redis.call('GET', KEYS[i + 1]) or '0') then redis.call('SET', KEYS[i + 1], n) end
  end`;
await admin.del(...counters);

const jobs = Object.entries(tenants).flatMap(([tenant, count]) =>
  Array.from({ length: count }, (_, i) => ({ name: `${tenant}#${i + 1}`, data: { tenant } })));

// Only so that the order printed below does not depend on how fast the workers pick the jobs up (a
// busy CI machine): each job's work starts once all 30 jobs run or wait for the pool. Not for real code.
const observer = new FairLocks(admin, { prefix: 'example' });
const allIn = (async () => {
  for (let i = 0; i < 500; i++) {
    const info = await observer.inspect('gpu');
    if (info.holders.length + info.queue.length === jobs.length) return info;
    await sleep(20);
  }
  return observer.inspect('gpu');
})();

/** One worker "machine": its own FairLocks session, a BullMQ worker with concurrency 16. */
function startWorker(name) {
  const redis = new Redis(url);
  const locks = new FairLocks(redis, { prefix: 'example' });
  const gpu = locks.semaphore('gpu', { permits: PERMITS, perGroup: PER_TENANT });
  const worker = new Worker(QUEUE, async (job) => {
    const { tenant } = job.data;
    return gpu.using(async (lease) => {
      await admin.eval(ENTER, 4, running(tenant), peak(tenant), running('pool'), peak('pool'));
      try {
        await allIn;
        await sleep(JOB_MS); // the job's work on the GPU
      } finally {
        await admin.decr(running(tenant));
        await admin.decr(running('pool'));
      }
      return lease.token;
    }, { group: tenant, timeoutMs: 30_000 });
  }, { connection, concurrency: 16 });
  worker.on('failed', (job, err) => console.error(`${name}: ${job?.name} failed:`, err));
  return { worker, async stop() { await worker.close(); await locks.close(); await redis.quit(); } };
}

const workers = [startWorker('worker-1'), startWorker('worker-2')];
await Promise.all(workers.map((w) => w.worker.waitUntilReady()));

const finished = new Promise((resolve) => {
  let done = 0;
  for (const { worker } of workers) worker.on('completed', () => ++done === jobs.length && resolve());
  for (const { worker } of workers) worker.on('failed', () => ++done === jobs.length && resolve());
});
await queue.addBulk(jobs);
let timer;
const timedOut = await Promise.race([finished.then(() => false), new Promise((r) => { timer = setTimeout(r, 30_000, true); })]);
clearTimeout(timer);
// What inspect() showed once every job was in: per tenant, permits held, jobs waiting, at its cap.
const { groups } = await allIn;
console.log(`once all jobs were in: ${groups.map((g) => `${g.group} ${g.held} running, ${g.waiting} waiting${g.capped ? ' (at its cap)' : ''}`).join('; ')}`);

const counts = await queue.getJobCounts('completed', 'failed');
const granted = (await queue.getJobs(['completed'])).sort((x, y) => x.returnvalue - y.returnvalue);
console.log(`the pool's grants in token order, by tenant: ${granted.map((job) => job.data.tenant).join(' ')}`);
// How many of the burst's jobs got the pool before each quiet tenant's first job.
const ahead = {};
for (const tenant of Object.keys(tenants).filter((t) => t !== BURST)) {
  const first = granted.findIndex((job) => job.data.tenant === tenant);
  ahead[tenant] = first < 0 ? Infinity : granted.slice(0, first).filter((job) => job.data.tenant === BURST).length;
}
console.log(`${BURST}'s jobs granted before each quiet tenant's first job: ${JSON.stringify(ahead)} (of ${tenants[BURST]})`);
const peaks = {};
for (const who of [...Object.keys(tenants), 'pool']) peaks[who] = Number(await admin.get(peak(who)));
console.log(`jobs done: ${counts.completed}/${jobs.length}; most jobs running at once: ${JSON.stringify(peaks)} (caps: ${PER_TENANT} per tenant, ${PERMITS} in the pool)`);

await Promise.all(workers.map((w) => w.stop()));
await observer.close();
await queue.obliterate({ force: true });
await queue.close();
await admin.del(...counters);
await admin.quit();

// The rule bounds the wait: a quiet tenant's first job waits for at most one grant of each other
// tenant with waiting jobs, so acme gets at most 1 more than its 2 running when the quiet ones arrive.
const MOST_AHEAD = PER_TENANT + 1;
const problems = [];
if (timedOut || counts.completed !== jobs.length) problems.push('every job must finish');
if (Object.keys(tenants).some((t) => peaks[t] < 1 || peaks[t] > PER_TENANT)) problems.push(`no tenant may run more than ${PER_TENANT} jobs at once`);
if (peaks.pool > PERMITS) problems.push(`the pool may not run more than ${PERMITS} jobs at once`);
if (Object.values(ahead).some((n) => n > MOST_AHEAD)) problems.push(`no quiet tenant may wait behind more than ${MOST_AHEAD} of ${BURST}'s jobs`);
if (problems.length > 0) {
  console.error(`FAILED: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(`ok: at most ${PER_TENANT} jobs per tenant and ${PERMITS} in all ran at once, and the quiet tenants were not held behind ${BURST}'s burst`);
