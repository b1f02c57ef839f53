/**
 * What one grant costs Redis inside the engine, path by path, with nothing else running: the Lua
 * time (INFO commandstats usec of FCALL or EVALSHA, which includes the commands the engine runs),
 * the commands per grant (top level plus nested), and the memory of a queued waiter. Both ways the
 * engine runs are measured on the same server: as a Function library (FCALL) and as scripts
 * (EVALSHA, what Redis 6.2 and clusters run), beside the seed's SET NX PX + compare-and-delete.
 *
 *   npx tsx scripts/bench/engine-cost.ts [--rounds 9] [--grants 1000] [--waiters 10000]
 *
 * Uses REDIS_URL (loopback, it is FLUSHALLed) or starts a redis-server of its own, stopped by PID.
 * Each figure is the median over rounds (each round: `grants` grants on as many names).
 */
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { adaptClient } from '../../src/redis/adapt.js';
import { lockKeys, waiterId } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { UNLOCK } from './adapters/set-nx-poll.js';
import { startBenchRedis } from './redis-server.js';
import { RedisStats, type Delta } from './redis-stats.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '9' }, grants: { type: 'string', default: '1000' }, waiters: { type: 'string', default: '10000' } },
});
const ROUNDS = Number(values.rounds);
const GRANTS = Number(values.grants);
const WAITERS = Number(values.waiters);
const LIVENESS = 60_000;

type Path = 'uncontended' | 'hand-off';
interface Row {
  path: Path | 'seed';
  engine: string;
  luaUs: number;
  cpuUs: number;
  commands: number;
  perCommand: Record<string, number>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const LUA = new Set(['fcall', 'evalsha', 'eval']);

function summarize(d: Delta): { luaUs: number; cpuUs: number; commands: number; perCommand: Record<string, number> } {
  let luaUs = 0;
  for (const [k, v] of Object.entries(d.usecByCommand)) if (LUA.has(k)) luaUs += v;
  const perCommand: Record<string, number> = {};
  for (const [k, v] of Object.entries(d.byCommand)) perCommand[k] = v / GRANTS;
  return { luaUs: luaUs / GRANTS, cpuUs: (d.cpuSeconds * 1e6) / GRANTS, commands: d.commands / GRANTS, perCommand };
}

async function main(): Promise<void> {
  const redis = await startBenchRedis();
  const client = createClient({ url: redis.url });
  await client.connect();
  const stats = await RedisStats.connect(redis.url);
  const rows: Row[] = [];
  let memory = '';
  try {
    for (const engine of ['function', 'script'] as const) {
      const scripts = new Scripts(adaptClient(client), 'cost', engine === 'script' ? { engine: 'script' } : {});
      for (const path of ['uncontended', 'hand-off'] as Path[]) {
        const samples: ReturnType<typeof summarize>[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          await stats.flushAll();
          const keys = Array.from({ length: GRANTS }, (_, i) => lockKeys('cost', `n${round}-${i}`));
          const id = (sid: string, i: number) => waiterId(sid, i + 1, 60_000, true, 1, 'x');
          // warm the server (library load, script cache) outside the window
          await scripts.acquire(lockKeys('cost', 'warm'), id('w', 0), LIVENESS, 'wait', 'lock', 1);
          if (path === 'hand-off') for (let i = 0; i < GRANTS; i++) await scripts.acquire(keys[i]!, id('a', i), LIVENESS, 'wait', 'lock', 1);
          const before = await stats.snapshot();
          for (let i = 0; i < GRANTS; i++) {
            if (path === 'uncontended') {
              const r = await scripts.acquire(keys[i]!, id('a', i), LIVENESS, 'wait', 'lock', 1);
              if (r.kind !== 'granted') throw new Error(`uncontended acquire: ${r.kind}`);
              const rel = await scripts.release(keys[i]!, id('a', i));
              if (rel.kind !== 'released') throw new Error(`uncontended release: ${rel.kind}`);
            } else {
              const q = await scripts.acquire(keys[i]!, id('b', i), LIVENESS, 'wait', 'lock', 1);
              if (q.kind !== 'queued') throw new Error(`enqueue: ${q.kind}`);
              const rel = await scripts.release(keys[i]!, id('a', i));
              if (rel.kind !== 'released') throw new Error(`hand-off release: ${rel.kind}`);
            }
          }
          samples.push(summarize(RedisStats.delta(before, await stats.snapshot())));
        }
        rows.push(pick(path, `${engine === 'function' ? 'FCALL' : 'EVALSHA'} (${scripts.engine})`, samples));
      }
    }
    // The seed: SET NX PX, then compare-and-delete (EVALSHA), per name.
    const unlockSha = String(await client.sendCommand(['SCRIPT', 'LOAD', UNLOCK]));
    const seed: ReturnType<typeof summarize>[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await stats.flushAll();
      const before = await stats.snapshot();
      for (let i = 0; i < GRANTS; i++) {
        await client.sendCommand(['SET', `seed:${i}`, 'me', 'NX', 'PX', '60000']);
        await client.sendCommand(['EVALSHA', unlockSha, '1', `seed:${i}`, 'me']);
      }
      seed.push(summarize(RedisStats.delta(before, await stats.snapshot())));
    }
    rows.push(pick('seed', 'SET NX PX + compare-and-delete', seed));
    memory = await waiterMemory(client);
  } finally {
    await client.quit().catch(() => undefined);
    await redis.stop();
  }
  console.log(`Redis ${redis.version}; ${ROUNDS} rounds of ${GRANTS} grants, median per grant (Lua µs: FCALL/EVALSHA usec, nested commands included)\n`);
  console.log('| path | engine | Lua µs / grant | Redis CPU µs / grant | commands / grant | by command |');
  console.log('|---|---|---:|---:|---:|---|');
  for (const r of rows) {
    const by = Object.entries(r.perCommand).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
    console.log(`| ${r.path} | ${r.engine} | ${r.luaUs.toFixed(2)} | ${r.cpuUs.toFixed(1)} | ${r.commands.toFixed(2)} | ${by} |`);
  }
  console.log(`\n${memory}`);
}

function pick(path: Row['path'], engine: string, samples: ReturnType<typeof summarize>[]): Row {
  const byLua = [...samples].sort((a, b) => a.luaUs - b.luaUs);
  const mid = byLua[Math.floor(byLua.length / 2)]!;
  return { path, engine, luaUs: mid.luaUs, cpuUs: median(samples.map((s) => s.cpuUs)), commands: mid.commands, perCommand: mid.perCommand };
}

/** MEMORY USAGE of the queue with WAITERS waiters queued behind one holder, per waiter. */
async function waiterMemory(client: ReturnType<typeof createClient>): Promise<string> {
  await client.flushAll();
  const scripts = new Scripts(adaptClient(client), 'mem');
  const keys = lockKeys('mem', 'm');
  await scripts.acquire(keys, waiterId('0123456789abcdef', 1, 30_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1);
  // Waiters of 100 sessions, as 100 processes would queue them; ids as FairLocks makes them.
  for (let i = 0; i < WAITERS; i++) {
    const sid = (0x1000000000000000n + BigInt(i % 100)).toString(16);
    await scripts.acquire(keys, waiterId(sid, 2 + Math.floor(i / 100), 30_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1);
  }
  const queue = Number(await client.sendCommand(['MEMORY', 'USAGE', keys.queue, 'SAMPLES', '0']));
  const state = Number(await client.sendCommand(['MEMORY', 'USAGE', keys.state, 'SAMPLES', '0']));
  return `Memory with ${WAITERS} waiters queued (100 sessions): queue ${queue} B = ${(queue / WAITERS).toFixed(1)} B per waiter; state hash ${state} B (${((queue + state) / WAITERS).toFixed(1)} B per waiter with it)`;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
