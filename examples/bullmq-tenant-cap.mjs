// Recipe: cap each tenant's concurrent BullMQ jobs across all workers with a fair semaphore.
//
// The workers run many jobs at once (concurrency 5 each), but a job first takes a permit of its
// tenant's semaphore, `tenant:<id>` with 2 permits: a tenant never has more than 2 jobs running across
// ALL workers, its jobs get their permits in the order they asked (FIFO), and other tenants' jobs are
// not held up by it. A Redis counter per tenant checks the cap.
//
// Note: a job waiting for its tenant's permit occupies a worker slot meanwhile; size `concurrency`
// (and BullMQ's `lockDuration`, renewed while the job waits) with that in mind.
//
//   REDIS_URL=redis://127.0.0.1:6379 node examples/bullmq-tenant-cap.mjs
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
const QUEUE = 'example-tenant-jobs';
const PERMITS = 2;
const JOB_MS = 150;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const admin = new Redis(url);
const queue = new Queue(QUEUE, { connection });
await queue.obliterate({ force: true }); // a clean slate for the example
const running = (tenant) => `example:tenant-cap:running:${tenant}`; // this tenant's jobs running now
const peak = (tenant) => `example:tenant-cap:peak:${tenant}`; // the most of them ever running at once
// One atomic step: count this job in and keep the peak (no clocks involved).
const ENTER = `local n = redis.call('INCR', KEYS[1])
  if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
  return n`;
const tenants = { acme: 10, globex: 3 };
await admin.del(...Object.keys(tenants).flatMap((t) => [running(t), peak(t)]));

/** One worker "machine": its own FairLocks session, a BullMQ worker with concurrency 5. */
function startWorker(name) {
  const redis = new Redis(url);
  const locks = new FairLocks(redis, { prefix: 'example' });
  const worker = new Worker(QUEUE, async (job) => {
    const { tenant } = job.data;
    const cap = locks.semaphore(`tenant:${tenant}`, { permits: PERMITS });
    return cap.using(async (lease) => {
      const now = await admin.eval(ENTER, 2, running(tenant), peak(tenant));
      console.log(`${name} runs ${job.name} (${tenant} jobs running: ${now}, permit token ${lease.token})`);
      try {
        await sleep(JOB_MS); // the job's work
      } finally {
        await admin.decr(running(tenant));
      }
      return lease.token;
    }, { timeoutMs: 30_000 });
  }, { connection, concurrency: 5 });
  worker.on('failed', (job, err) => console.error(`${name}: ${job?.name} failed:`, err));
  return { worker, async stop() { await worker.close(); await locks.close(); await redis.quit(); } };
}

const workers = [startWorker('worker-1'), startWorker('worker-2')];
await Promise.all(workers.map((w) => w.worker.waitUntilReady()));

const jobs = [];
for (const [tenant, count] of Object.entries(tenants)) {
  for (let i = 1; i <= count; i++) jobs.push({ name: `${tenant}#${i}`, data: { tenant } });
}
const finished = new Promise((resolve) => {
  let done = 0;
  for (const { worker } of workers) worker.on('completed', () => ++done === jobs.length && resolve());
  for (const { worker } of workers) worker.on('failed', () => ++done === jobs.length && resolve());
});
await queue.addBulk(jobs);
let timer;
const timedOut = await Promise.race([finished.then(() => false), new Promise((r) => { timer = setTimeout(r, 30_000, true); })]);
clearTimeout(timer);
const counts = await queue.getJobCounts('completed', 'failed');
const failed = jobs.length - counts.completed;
const grants = (await queue.getJobs(['completed'])).filter((job) => job.data.tenant === 'acme')
  .sort((x, y) => x.returnvalue - y.returnvalue).map((job) => job.name);
console.log(`acme's jobs in the order they got a permit (by token): ${grants.join(' ')}`);

const peaks = {};
for (const tenant of Object.keys(tenants)) peaks[tenant] = Number(await admin.get(peak(tenant)));
console.log(`jobs done: ${counts.completed}/${jobs.length}; most of one tenant's jobs running at once: ${JSON.stringify(peaks)} (cap ${PERMITS})`);

await Promise.all(workers.map((w) => w.stop()));
await queue.obliterate({ force: true });
await queue.close();
await admin.del(...Object.keys(tenants).flatMap((t) => [running(t), peak(t)]));
await admin.quit();

if (timedOut || failed > 0 || Object.values(peaks).some((p) => p < 1 || p > PERMITS)) {
  console.error(`FAILED: every job must finish and no tenant may run more than ${PERMITS} jobs at once`);
  process.exit(1);
}
console.log(`ok: no tenant ever had more than ${PERMITS} jobs running across both workers`);
