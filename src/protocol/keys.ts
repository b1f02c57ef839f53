/**
 * Key and channel names. Every key of one name shares one hash tag, so each script touches one
 * cluster slot. The name is escaped so that it can hold no brace: Redis takes the hash tag from the
 * first "{" to the next "}", and a raw "}" in a name would end the tag early.
 */
export interface LockKeys {
  /** hash: kind and limit, token counter, holders, last releasers, sessions, expiry (see lua/engine.lua) */
  state: string;
  /** list: one "waiterId since" element per waiter, in FIFO order */
  queue: string;
  /** On a cluster: the name's shard wake channel, less the session id (SPUBLISH / SSUBSCRIBE, in the name's slot). */
  shardWake: string;
}

export function escapeName(name: string): string {
  return name.replace(/[%{}]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export function unescapeName(escaped: string): string {
  return escaped.replace(/%(25|7B|7D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export function lockKeys(prefix: string, name: string): LockKeys {
  const base = `${prefix}:{${escapeName(name)}}`;
  return { state: `${base}:state`, queue: `${base}:queue`, shardWake: `${base}:wake:` };
}

/**
 * The name a key under `prefix` belongs to, or undefined for a key that is not a name's state or
 * queue (the inverse of lockKeys). `keyPattern(prefix)` is the SCAN pattern that finds them.
 */
export function nameOfKey(prefix: string, key: string): string | undefined {
  const head = `${prefix}:{`;
  // ${prefix}:{escaped name}:suffix; an escaped name holds no brace.
  const close = key.indexOf('}', head.length);
  if (!key.startsWith(head) || close < 0 || key[close + 1] !== ':') return undefined;
  const suffix = key.slice(close + 2);
  return suffix === 'state' || suffix === 'queue' ? unescapeName(key.slice(head.length, close)) : undefined;
}

/** The SCAN MATCH pattern of every key of every name under `prefix`. */
export function keyPattern(prefix: string): string {
  return `${`${prefix}:{`.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
}

/**
 * A quorum master's born key (a hash, field b: when it served its first quorum call since it last lost
 * its data; no expiry). Not under a name's hash tag: only a quorum call passes it, and quorum masters are
 * independent servers, not a cluster (see "Quorum" in lua/engine.lua).
 */
export function bornKey(prefix: string): string {
  return `${prefix}:born`;
}

/** The channel on which a session is told that one of its waiters now holds a grant (one Redis: PUBLISH). */
export function wakeChannel(prefix: string, sessionId: string): string {
  return `${prefix}:wake:${sessionId}`;
}

/** What a request asks of the engine: the name's kind and limit, and its own weight and mode. */
export type Kind = 'lock' | 'semaphore' | 'rw';
export type Mode = 'x' | 'r' | 'w';

/** "session:seq:leaseMs:renew:weight:mode": the engine reads the request from the id itself. */
export function waiterId(sessionId: string, seq: number, leaseMs: number, autoRenew: boolean, weight: number, mode: Mode): string {
  return `${sessionId}:${seq.toString(36)}:${leaseMs}:${autoRenew ? 1 : 0}:${weight}:${mode}`;
}

/** The weight and mode an id carries (weight 1, mode x for anything unparsable). */
export function parseWaiterId(id: string): { weight: number; mode: Mode } {
  const m = /:(\d+):([xrw])$/.exec(id);
  return m ? { weight: Number(m[1]), mode: m[2] as Mode } : { weight: 1, mode: 'x' };
}

/** On a cluster: the shard channel of one name and session, in the name's slot (SPUBLISH / SSUBSCRIBE). */
export function shardWakeChannel(prefix: string, name: string, sessionId: string): string {
  return lockKeys(prefix, name).shardWake + sessionId;
}
