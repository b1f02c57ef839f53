/**
 * What the events cost: an uncontended acquire + release loop on one name, with nobody listening
 * ("off") and with a no-op listener on every event ("on"), against a redis-server of its own (or
 * REDIS_URL, loopback only). Not part of `npm run bench`:
 *   npx tsx scripts/bench/events.ts [--n 2000] [--rounds 5]
 * Rounds alternate off, on, off, on... so a noisy machine weighs on both alike; the table shows the
 * median round. With nobody listening each event costs one listenerCount() and no payload.
 */
import { createClient } from 'redis';
import { FairLocks, type FairLocksEventName } from '../../src/index.js';
import { startBenchRedis } from './redis-server.js';

const USAGE = 'usage: npx tsx scripts/bench/events.ts [--n ACQUIRES_PER_ROUND] [--rounds R]';
const flags = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const m = /^--(n|rounds)(?:=(.*))?$/.exec(process.argv[i]!);
  if (!m) throw new Error(`unexpected argument "${process.argv[i]}"\n${USAGE}`);
  flags.set(m[1]!, m[2] ?? process.argv[++i] ?? '');
}
const int = (k: string, d: number, max: number) => {
  const n = Number(flags.get(k) ?? d);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${k} must be an integer from 1 to ${max}`);
  return n;
};
const N = int('n', 2000, 1_000_000);
const ROUNDS = int('rounds', 5, 1_000);
const EVENTS: FairLocksEventName[] = ['queued', 'granted', 'released', 'lost', 'timeout', 'aborted', 'redisError'];

const redis = await startBenchRedis();
const client = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
client.on('error', () => undefined);
await client.connect();
const off = new FairLocks(client as never, { prefix: 'bench-events-off' });
const on = new FairLocks(client as never, { prefix: 'bench-events-on' });
let heard = 0;
for (const event of EVENTS) on.on(event, () => void heard++);

/** Microseconds per acquire + release, N of them on one free name. */
async function round(locks: FairLocks): Promise<number> {
  const lock = locks.lock('uncontended');
  const started = performance.now();
  for (let i = 0; i < N; i++) await (await lock.acquire()).release();
  return ((performance.now() - started) * 1000) / N;
}

const results: Record<'off' | 'on', number[]> = { off: [], on: [] };
try {
  await round(off); // warm-up: scripts loaded, JIT warm
  await round(on);
  heard = 0;
  for (let r = 0; r < ROUNDS; r++) {
    results.off.push(await round(off));
    results.on.push(await round(on));
  }
} finally {
  await Promise.all([off.close(), on.close()]);
  await client.quit().catch(() => undefined);
  await redis.stop();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const min = (xs: number[]) => Math.min(...xs);
if (heard !== 2 * N * ROUNDS) throw new Error(`expected ${2 * N * ROUNDS} events heard (granted + released), got ${heard}`);
console.log(`events on vs off: ${N} uncontended acquire + release per round, ${ROUNDS} rounds, Redis ${redis.version}`);
console.log('| events | median us/op | min us/op |');
console.log('|---|---:|---:|');
console.log(`| off (no listener) | ${median(results.off).toFixed(1)} | ${min(results.off).toFixed(1)} |`);
console.log(`| on (a listener on every event) | ${median(results.on).toFixed(1)} | ${min(results.on).toFixed(1)} |`);
console.log(`ratio on/off (median): ${(median(results.on) / median(results.off)).toFixed(3)}`);
