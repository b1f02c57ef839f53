/** µs per nested command inside a script (not part of `npm run bench`; docs/cost-breakdown.md): (EVALSHA usec of a loop of N calls - of an empty loop) / N, cheapest of 15 batches of 20 calls. REDIS_URL=redis://127.0.0.1:PORT npx tsx scripts/bench/cost-percmd.ts (it FLUSHALLs that server). */
import { createClient } from 'redis';
const url = process.env.REDIS_URL;
// It FLUSHALLs the server: a loopback server of the caller's own only.
if (!url || !/^redis:\/\/(127\.0\.0\.1|localhost):\d+$/.test(url)) throw new Error('REDIS_URL=redis://127.0.0.1:PORT (a server of your own: it is flushed)');
const c = createClient({ url });
await c.connect();
await c.flushAll();
const S = 'p:{n}:state', Q = 'p:{n}:queue', SS = 'p:{n}:sessions';
await c.hSet(S, { t: '1796599919934173', k: 'lock 1', r: 'a1b2c3d4e5f6a7b8:1:5000:1:1:x b:2:5000:1:1:x', 'bf17cd47739fd29b:1:5000:1:1:x': '1796599919934173 1796599924934 5000 1796599919934 1' });
for (let i = 0; i < 15; i++) await c.zAdd(Q, { score: 1796599919934173 + i, value: `s${i % 4}abcdef01234567:${i}:5000:1:1:x` });
for (let i = 0; i < 4; i++) await c.zAdd(SS, { score: 1796599924974, value: `s${i}abcdef01234567` });
await c.pExpire(S, 86400000); await c.pExpire(Q, 10000); await c.pExpire(SS, 10000);
const N = 50, CALLS = 20, BATCHES = 15;
const cases: Record<string, string> = {
  'TIME': "redis.call('TIME')",
  'EXISTS queue': "redis.call('EXISTS', KEYS[2])",
  'PTTL queue': "redis.call('PTTL', KEYS[2])",
  'PEXPIRE queue': "redis.call('PEXPIRE', KEYS[2], 10000)",
  'PTTL+PEXPIRE (keep_alive)': "if redis.call('PTTL', KEYS[2]) < 10000 then redis.call('PEXPIRE', KEYS[2], 10000) end",
  'HGETALL state (t,k,r,1 holder)': "redis.call('HGETALL', KEYS[1])",
  'HGET state t': "redis.call('HGET', KEYS[1], 't')",
  'HMGET state t k r': "redis.call('HMGET', KEYS[1], 't', 'k', 'r')",
  'HLEN state': "redis.call('HLEN', KEYS[1])",
  'HSET state 1 field': "redis.call('HSET', KEYS[1], 't', '1796599919934173')",
  'HSET state 2 fields': "redis.call('HSET', KEYS[1], 't', '1796599919934173', 'r', 'a1b2c3d4e5f6a7b8:1:5000:1:1:x')",
  'ZSCORE sessions': "redis.call('ZSCORE', KEYS[3], 's1abcdef01234567')",
  'ZADD sessions (update)': "redis.call('ZADD', KEYS[3], 1796599924974, 's1abcdef01234567')",
  'ZADD queue NX (exists)': "redis.call('ZADD', KEYS[2], 'NX', 1796599919934999, 's1abcdef01234567:1:5000:1:1:x')",
  'ZCARD queue': "redis.call('ZCARD', KEYS[2])",
  'ZRANGE queue 0 0 WITHSCORES': "redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')",
  'PUBLISH (no subscriber)': "redis.call('PUBLISH', 'p:wake:s1abcdef01234567', 'x 1796599919934173 1796599924934')",
  'Lua: number arg (now + 5000) to ZADD': "redis.call('ZADD', KEYS[3], 1796599919934 + 5000, 's1abcdef01234567')",
  'Lua: string.format %d of a ticket': "local x = string.format('%d', 1796599919934173)",
  'Lua: tonumber of a ticket string': "local x = tonumber('1796599919934173')",
  'Lua: parse_id (string.match 5 captures)': "local a,b,c,d,e = string.match('bf17cd47739fd29b:1:5000:1:1:x', '^([^:]+):[^:]+:(%d+):([01]):(%d+):([xrw])$')",
  'Lua: a 5-field table': "local t = { id = 'x', sid = 'y', lease = 5000, renew = '1', weight = 1 }",
};
const body = (stmt: string, n: number) => `for i = 1, ${n} do ${stmt} end return 1`;
const usecOf = async () => {
  const t = await c.info('commandstats');
  return Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(t)?.[1] ?? 0);
};
async function cost(script: string): Promise<number> {
  const sha = await c.scriptLoad(script);
  let best = Infinity;
  for (let b = 0; b < BATCHES; b++) {
    await c.configResetStat();
    for (let i = 0; i < CALLS; i++) await c.evalSha(sha, { keys: [S, Q, SS] });
    best = Math.min(best, (await usecOf()) / CALLS);
  }
  return best;
}
const empty = await cost(body('', 0) + ' --e');
const out: Record<string, number> = { 'EVALSHA of `return 1` (floor, per call)': empty };
for (const [k, stmt] of Object.entries(cases)) {
  const u = await cost(body(stmt, N));
  const u0 = await cost(body('local _ = i', N) + ' -- ' + k);
  out[k] = Math.round(((u - u0) / N) * 100) / 100;
}
console.log(JSON.stringify(out, null, 1));
await c.quit();
