/**
 * Reads a name's keys (see the header of src/protocol/lua/engine.lua) the way the tests need them:
 * the holder entries of the state hash's `h` field ("id token exp lease granted confirmed" joined by
 * ';'), the sessions of its `s` field ("sid deadline" joined by ';'), and the queue list's elements
 * ("id since"). Entries are returned as Redis has them: one whose deadline passed stays until a
 * script that writes drops it.
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
  /** The group it was granted in (DESIGN §7); undefined for the default group. */
  group?: string;
}

/** The holder entries of the state hash `stateKey`, oldest token first. */
export async function holdersAt(client: RedisClient, stateKey: string): Promise<HolderEntry[]> {
  const field = (await client.hGet(stateKey, 'h')) ?? '';
  const out: HolderEntry[] = [];
  for (const entry of field.split(';')) {
    if (entry === '') continue;
    // The group, when there is one, is the hex of its UTF-8 bytes.
    const m = /^(\S+) (\d+) (\d+) (\d+) (\d+) ([01])(?: ([0-9a-f]+))?$/.exec(entry);
    if (!m) throw new Error(`malformed holder entry ${JSON.stringify(entry)} in ${stateKey}`);
    const group = m[7] === undefined ? {} : { group: Buffer.from(m[7], 'hex').toString('utf8') };
    out.push({ id: m[1]!, token: Number(m[2]), exp: Number(m[3]), lease: Number(m[4]), granted: Number(m[5]), confirmed: m[6] === '1', ...group });
  }
  return out.sort((a, b) => a.token - b.token);
}

/** The holder entries of the name `name` under `prefix`, oldest token first. */
export function holders(client: RedisClient, prefix: string, name: string): Promise<HolderEntry[]> {
  return holdersAt(client, lockKeys(prefix, name).state);
}

/** One holder entry as the engine writes it into the `h` field. */
export function holderText(h: Omit<HolderEntry, 'confirmed'> & { confirmed: boolean }): string {
  return `${h.id} ${h.token} ${h.exp} ${h.lease} ${h.granted} ${h.confirmed ? 1 : 0}`;
}

/** A session's deadline (Redis ms) in the state hash's `s` field, or null when it has none there. */
export async function sessionDeadlineAt(client: RedisClient, stateKey: string, sessionId: string): Promise<number | null> {
  const field = (await client.hGet(stateKey, 's')) ?? '';
  for (const entry of field.split(';')) {
    const [sid, deadline] = entry.split(' ');
    if (sid === sessionId && deadline !== undefined) return Number(deadline);
  }
  return null;
}

/** The session ids in the state hash's `s` field, in the order Redis has them. */
export async function sessionsAt(client: RedisClient, stateKey: string): Promise<string[]> {
  const field = (await client.hGet(stateKey, 's')) ?? '';
  return field.split(';').filter((e) => e !== '').map((e) => e.split(' ')[0]!);
}

/** The queue list `queueKey`, head first: each element's waiter id and the Redis ms it entered the queue. */
export async function queueAt(client: RedisClient, queueKey: string): Promise<{ id: string; since: number }[]> {
  const elements = await client.lRange(queueKey, 0, -1);
  return elements.map((e) => {
    const m = /^(\S+) (\d+)$/.exec(e);
    if (!m) throw new Error(`malformed queue element ${JSON.stringify(e)} in ${queueKey}`);
    return { id: m[1]!, since: Number(m[2]) };
  });
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
