/**
 * Reads a name's `:state` hash (see src/protocol/lua/engine.lua) the way the tests need it: the
 * holder entries of its field `h`, "id token exp lease granted confirmed" joined by ';'.
 * Entries are returned as Redis has them: one whose deadline passed stays until a call drops it.
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

/** The holder entries of the state hash `stateKey` (its field `h`), oldest token first. */
export async function holdersAt(client: RedisClient, stateKey: string): Promise<HolderEntry[]> {
  const h = (await client.hGet(stateKey, 'h')) ?? '';
  const out: HolderEntry[] = [];
  for (const entry of h.split(';').filter((e) => e !== '')) {
    const m = /^(\S+) (\d+) (\d+) (\d+) (\d+) ([01])$/.exec(entry);
    if (!m) throw new Error(`malformed holder entry ${JSON.stringify(entry)} in ${stateKey}`);
    out.push({ id: m[1]!, token: Number(m[2]), exp: Number(m[3]), lease: Number(m[4]), granted: Number(m[5]), confirmed: m[6] === '1' });
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

/**
 * Takes the holder `id` out of the state hash behind fairlock's back (as a lost write would): its
 * lease is then lost at its next heartbeat. Returns 1 when it was a holder, else 0.
 */
export async function dropHolder(client: RedisClient, stateKey: string, id: string): Promise<number> {
  const h = (await client.hGet(stateKey, 'h')) ?? '';
  const entries = h.split(';').filter((e) => e !== '');
  const kept = entries.filter((e) => e.split(' ')[0] !== id);
  if (kept.length === entries.length) return 0;
  await client.hSet(stateKey, 'h', kept.join(';'));
  return 1;
}
