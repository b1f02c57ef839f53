/**
 * Where fairlock's uncontended acquire+release time goes, on loopback (not part of `npm run bench`;
 * run with `npx tsx scripts/bench/profile-fairlock.ts`, optionally under `node --cpu-prof`).
 * Compares, interleaved, per iteration:
 *   ping      one PING (the floor)
 *   noop2     two EVALSHA of a script returning {1, now}: the floor for two script round trips
 *   raw2      EVALSHA acquire.lua + EVALSHA release.lua with fairlock's keys, no fairlock JS
 *   fairlock  lock.acquire() + lease.release()
 * and reads Redis's own usec_per_call for the scripts from INFO commandstats.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { FairLocks as FairLocksSrc } from '../../src/index.js';
import { newProtocol, shaOf } from './lua-bodies.js';
import { dist } from './stats.js';
import { startBenchRedis } from './redis-server.js';

const N = Number(process.env.N ?? 3000);
// FAIRLOCK_MODULE=/path/to/compiled/index.js measures tsc output instead of src/ through tsx
const FairLocks: typeof FairLocksSrc = process.env.FAIRLOCK_MODULE
  ? ((await import(process.env.FAIRLOCK_MODULE)) as { FairLocks: typeof FairLocksSrc }).FairLocks
  : FairLocksSrc;
const redis = await startBenchRedis();
try {
  const client = createClient({ url: redis.url });
  await client.connect();
  // the scripts as src/protocol/scripts.ts builds them (the same SHAs: fairlock's calls below hit them)
  const p = newProtocol();
  const sha = async (b: string) => String(await client.sendCommand(['SCRIPT', 'LOAD', b]));
  const acq = await sha(p.body('acquire'));
  const rel = await sha(p.body('release'));
  const noop = await sha(`local t = redis.call('TIME') return {1, tonumber(t[1])}`);
  const keys = p.keys('p', 'raw');
  const sid = randomBytes(8).toString('hex');
  const locks = new FairLocks(client as never, { prefix: 'f' });
  const lock = locks.lock('x');
  let seq = 0;
  const t: Record<string, number[]> = { ping: [], noop2: [], raw2: [], fairlock: [] };
  const time = async (k: string, f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    t[k]!.push(performance.now() - t0);
  };
  const steps: [string, () => Promise<unknown>][] = [
    ['ping', () => client.ping()],
    ['noop2', async () => {
      await client.sendCommand(['EVALSHA', noop, '0']);
      await client.sendCommand(['EVALSHA', noop, '0']);
    }],
    ['raw2', async () => {
      const id = p.id(sid, ++seq);
      await client.sendCommand(['EVALSHA', acq, ...keys, id, ...p.acquireArgs(5000, 'wait', 'p')]);
      await client.sendCommand(['EVALSHA', rel, ...keys, id, 'p']);
    }],
    ['fairlock', async () => (await lock.acquire()).release()],
  ];
  // ONLY=fairlock (e.g. under --cpu-prof) runs just that step
  if (process.env.ONLY) steps.splice(0, steps.length, ...steps.filter(([k]) => k === process.env.ONLY || k === 'ping'));
  for (let i = 0; i < 200; i++) for (const [, f] of steps) await f();
  await client.sendCommand(['CONFIG', 'RESETSTAT']);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) for (const [k, f] of steps) await time(k, f);
  const cpu = process.cpuUsage(cpu0);
  const stats = String(await client.sendCommand(['INFO', 'commandstats']));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) {
    const d = dist(v);
    out[k] = { p50_us: Math.round(d.p50! * 1000), p99_us: Math.round(d.p99! * 1000), x_ping: +(d.p50! / dist(t.ping!).p50!).toFixed(2) };
  }
  console.log(JSON.stringify(out, null, 1));
  console.log(stats.split('\n').filter((l) => /evalsha|ping|cmdstat_(time|hgetall|hset|hdel|pexpire|pttl|zrange|zrem|zscore|zadd|zcard|zrank|publish)/.test(l)).join('\n'));
  console.log(`client process CPU per iteration (all four steps): ${((cpu.user + cpu.system) / N).toFixed(0)} us`);
  console.log(`script sizes: acquire ${p.body('acquire').length} B, release ${p.body('release').length} B; sha check ${shaOf(p.body('acquire')) === acq}`);
  await locks.close();
  await client.quit();
} finally {
  await redis.stop();
}
