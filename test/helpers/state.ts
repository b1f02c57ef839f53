/**
 * Reads a name's `:state` hash (see src/protocol/lua/common.lua) the way the tests need it: the
 * holder entries, each field `waiter id -> "token exp lease granted confirmed"`. The other fields
 * (t = last ticket, k = kind and limit, r = last releasers) are not holders and are left out.
 * Entries are returned as Redis has them: one whose deadline passed stays until a script drops it.
 */
import { lockKeys } from '../../src/protocol/keys.js';
import type { RedisClient } from './redis-client.js';

export interface HolderEntry {
  id: string;
  token: number;
  /** Deadline, Redis ms. */
  exp: number;
  /** Lease length, ms. */
  lease: number;
  /** When the grant was made (or confirmed), Redis ms. */
  granted: number;
  confirmed: boolean;
}

const NOT_HOLDERS = new Set(['t', 'k', 'r']);

/** The holder entries of the state hash `stateKey`, oldest token first. */
export async function holdersAt(client: RedisClient, stateKey: string): Promise<HolderEntry[]> {
  const flat = await client.hGetAll(stateKey);
  const out: HolderEntry[] = [];
  for (const [id, value] of Object.entries(flat)) {
    if (NOT_HOLDERS.has(id)) continue;
    const m = /^(\d+) (\d+) (\d+) (\d+) ([01])$/.exec(value);
    if (!m) throw new Error(`malformed holder entry ${id} = ${JSON.stringify(value)} in ${stateKey}`);
    out.push({ id, token: Number(m[1]), exp: Number(m[2]), lease: Number(m[3]), granted: Number(m[4]), confirmed: m[5] === '1' });
  }
  return out.sort((a, b) => a.token - b.token);
}

/** The holder entries of the name `name` under `prefix`, oldest token first. */
export function holders(client: RedisClient, prefix: string, name: string): Promise<HolderEntry[]> {
  return holdersAt(client, lockKeys(prefix, name).state);
}

/** Redis's clock, in ms (the clock the entries' deadlines are on). */
export async function redisNow(client: RedisClient): Promise<number> {
  const [s, us] = (await client.sendCommand(['TIME'])) as string[];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}
