/**
 * A fenced store for the fault tests: a Redis hash `key` keeps the highest token seen, and a list
 * `key:log` keeps every accepted write. A write whose token is lower than the highest seen is
 * rejected, so a stale holder (paused past its lease) cannot overwrite a newer holder's data.
 * It may live on a different Redis than the locks (e.g. to survive a lock-server restart).
 */
import type { RedisClient } from './redis-client.js';

const WRITE = `
local max = redis.call('HGET', KEYS[1], 'max')
if max and tonumber(ARGV[1]) < tonumber(max) then return 0 end
redis.call('HSET', KEYS[1], 'max', ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
return 1`;

/** Writes `value` under fencing `token`; true when accepted. */
export async function fencedWrite(client: RedisClient, key: string, token: number, value: string): Promise<boolean> {
  const r = await client.sendCommand(['EVAL', WRITE, '2', key, `${key}:log`, String(token), value]);
  return Number(r) === 1;
}

/** The accepted writes in order: [token, value]. */
export async function fencedLog(client: RedisClient, key: string): Promise<{ token: number; value: string }[]> {
  const raw = await client.lRange(`${key}:log`, 0, -1);
  return raw.map((s) => {
    const i = s.indexOf(' ');
    return { token: Number(s.slice(0, i)), value: s.slice(i + 1) };
  });
}
