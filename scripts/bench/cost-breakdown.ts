/**
 * One contention case of `npm run bench` alone, for docs/cost-breakdown.md (not part of `npm run bench`):
 *   REDIS_URL=redis://127.0.0.1:PORT npx tsx scripts/bench/cost-breakdown.ts --lib fairlock-redis4|redis-semaphore --kind lock|sem [--duration 5000]
 * CONFIG RESETSTAT right before the workers start contending, INFO commandstats + INFO cpu right after
 * the window (and the window's own delta as runContention computes it). Prints JSON.
 * MONITOR/SLOWLOG, if wanted, are set up around it by the caller (see docs/cost-breakdown.md).
 */
import { createClient } from 'redis';
import { adapterById, FAIRLOCK_ROWS } from './adapters/index.js';
import { runContention } from './contention.js';
import { startPool, stopPool } from './pool.js';
import { RedisStats } from './redis-stats.js';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1]! : d;
};
const url = process.env.REDIS_URL;
if (!url || !/^redis:\/\/(127\.0\.0\.1|localhost):\d+$/.test(url)) throw new Error('REDIS_URL=redis://127.0.0.1:PORT');
const libArg = arg('lib', 'fairlock-redis4');
const id = libArg === 'fairlock-redis4' ? FAIRLOCK_ROWS[0]!.id : libArg;
const kind = arg('kind', 'lock');
const durationMs = Number(arg('duration', '5000'));
const adapter = adapterById(id);
const stats = await RedisStats.connect(url);
const raw = createClient({ url });
await raw.connect();
await raw.flushAll();
const pool = await startPool(4);
try {
  await Promise.all(pool.map((w) => w.call({ op: 'warm', lib: id }, 30_000)));
  await raw.configResetStat();
  const cpuBefore = await raw.info('cpu');
  const t0 = Date.now();
  const res = await runContention(pool, stats, adapter, url, `bench-${id.replace(/[^A-Za-z0-9]+/g, '-').replace(/-$/, '')}`, kind === 'sem' ? 'sem' : 'hot-1', {
    contenders: 4, holdMs: 1, thinkMs: 0, durationMs, leadMs: 250, drainMs: 200, maxGrants: 500_000, slackMs: 2,
    ...(kind === 'sem' ? { kind: { type: 'semaphore' as const, permits: 4 }, check: true } : {}),
  });
  const commandstats = await raw.info('commandstats');
  const cpu = await raw.info('cpu');
  console.log(JSON.stringify({ id, kind, durationMs, wallMs: Date.now() - t0, result: res, afterReset: { commandstats, cpuBefore, cpu } }, null, 1));
} finally {
  await stopPool(pool);
  await stats.close();
  await raw.quit();
}
