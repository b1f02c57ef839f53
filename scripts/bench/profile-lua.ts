/**
 * Redis-side cost of fairlock's scripts (usec_per_call from INFO commandstats), against variants,
 * to find what the Lua time is spent on. `npx tsx scripts/bench/profile-lua.ts`
 */
import { readFileSync } from 'node:fs';
import { createClient } from 'redis';
import { lockKeys } from '../../src/keys.js';
import { startBenchRedis } from './redis-server.js';

const N = Number(process.env.N ?? 5000);
const redis = await startBenchRedis();
try {
  const client = createClient({ url: redis.url });
  await client.connect();
  // LUA_DIR=path measures a patched copy of src/lua
  const read = (n: string) =>
    readFileSync(process.env.LUA_DIR ? `${process.env.LUA_DIR}/${n}.lua` : new URL(`../../src/lua/${n}.lua`, import.meta.url), 'utf8');
  const commonReal = read('common');
  // VARIANT=plaincall: the pcall wrapper replaced by redis.call, to price the wrapper
  const common = process.env.VARIANT === 'plaincall'
    ? commonReal.replace(/local function call\(cmd, key, \.\.\.\)[\s\S]*?\nend\n/, 'local call = redis.call\n')
    : commonReal;
  if (process.env.VARIANT && common === commonReal) throw new Error('variant did not apply');
  const keys = lockKeys('p', 'raw');
  const k4 = ['4', keys.owner, keys.queue, keys.sessions, keys.counter];
  const usec = async (body: string, args: (i: number) => string[], extra?: (i: number) => Promise<unknown>) => {
    const sha = String(await client.sendCommand(['SCRIPT', 'LOAD', body]));
    for (let i = 0; i < 200; i++) {
      await client.sendCommand(['EVALSHA', sha, ...k4, ...args(i)]);
      await extra?.(i);
    }
    await client.sendCommand(['CONFIG', 'RESETSTAT']);
    for (let i = 0; i < N; i++) {
      await client.sendCommand(['EVALSHA', sha, ...k4, ...args(i)]);
      await extra?.(i);
    }
    const s = String(await client.sendCommand(['INFO', 'commandstats']));
    const ev = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(s)!;
    let inner = 0;
    for (const m of s.matchAll(/cmdstat_(\w+):calls=\d+,usec=(\d+)/g)) if (m[1] !== 'evalsha' && m[1] !== 'info' && m[1] !== 'config') inner += Number(m[2]);
    return { perCall: +(Number(ev[2]) / Number(ev[1])).toFixed(2), innerCmds: +(inner / Number(ev[1])).toFixed(2) };
  };
  const id = (i: number) => `sess${i % 7}:${i.toString(36)}:5000:1`;
  const out: Record<string, unknown> = {};
  out['noop: TIME + return'] = await usec(`local t = redis.call('TIME') return {1, tonumber(t[1])}`, () => []);
  out['common.lua + clock() + return'] = await usec(`${common}\nlocal _, now = clock() return {1, now}`, () => []);
  out['common.lua, 8 no-op redis.pcall via call()'] = await usec(
    `${common}\nlocal _, now = clock() for i = 1, 7 do call('EXISTS', K_OWNER) end return {1, now}`,
    () => [],
  );
  out['8 plain redis.call, no common.lua'] = await usec(
    `local t = redis.call('TIME') for i = 1, 7 do redis.call('EXISTS', KEYS[1]) end return {1, tonumber(t[1])}`,
    () => [],
  );
  const rel = `${common}\n${read('release')}`;
  const acq = `${common}\n${read('acquire')}`;
  const relSha = String(await client.sendCommand(['SCRIPT', 'LOAD', rel]));
  out['acquire.lua (free lock: grant), then release'] = await usec(acq, (i) => [id(i), '5000', 'wait', 'p'], (i) =>
    client.sendCommand(['EVALSHA', relSha, ...k4, id(i), 'p']),
  );
  // The contended path: 15 waiters queued; each round enqueues one more and hands the lock on.
  {
    const keys2 = lockKeys('p', 'hot');
    const kk = ['4', keys2.owner, keys2.queue, keys2.sessions, keys2.counter];
    const acqSha = String(await client.sendCommand(['SCRIPT', 'LOAD', acq]));
    const wid = (i: number) => `s${i % 4}:${i.toString(36)}:5000:1`;
    let owner = 0;
    await client.sendCommand(['EVALSHA', acqSha, ...kk, wid(0), '5000', 'wait', 'p']);
    for (let i = 1; i <= 15; i++) await client.sendCommand(['EVALSHA', acqSha, ...kk, wid(i), '5000', 'wait', 'p']);
    let next = 16;
    const round = async () => {
      await client.sendCommand(['EVALSHA', acqSha, ...kk, wid(next++), '5000', 'wait', 'p']);
      await client.sendCommand(['EVALSHA', relSha, ...kk, wid(owner++), 'p']);
    };
    for (let i = 0; i < 200; i++) await round();
    await client.sendCommand(['CONFIG', 'RESETSTAT']);
    for (let i = 0; i < N; i++) await round();
    const st = String(await client.sendCommand(['INFO', 'commandstats']));
    const ev = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(st)!;
    let inner = 0;
    for (const m of st.matchAll(/cmdstat_(\w+):calls=\d+,usec=(\d+)/g)) if (!['evalsha', 'info', 'config'].includes(m[1]!)) inner += Number(m[2]);
    out['contended: enqueue (acquire.lua) + hand-off (release.lua), 15 queued'] = {
      perCall: +(Number(ev[2]) / Number(ev[1])).toFixed(2),
      innerCmds: +(inner / Number(ev[1])).toFixed(2),
    };
  }
  console.log(JSON.stringify(out, null, 1));
  await client.quit();
} finally {
  await redis.stop();
}
