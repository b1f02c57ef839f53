/**
 * Key and channel names. Every key of one lock shares one hash tag, so each script touches one
 * cluster slot. The name is escaped so that it can hold no brace: Redis takes the hash tag from the
 * first "{" to the next "}", and a raw "}" in a name would end the tag early.
 */
export interface LockKeys {
  owner: string;
  queue: string;
  sessions: string;
  counter: string;
}

export function escapeName(name: string): string {
  return name.replace(/[%{}]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export function unescapeName(escaped: string): string {
  return escaped.replace(/%(25|7B|7D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export function lockKeys(prefix: string, name: string): LockKeys {
  const base = `${prefix}:{${escapeName(name)}}`;
  return { owner: `${base}:owner`, queue: `${base}:queue`, sessions: `${base}:sessions`, counter: `${base}:counter` };
}

/** The channel on which a session is told that one of its waiters now holds a lock. */
export function wakeChannel(prefix: string, sessionId: string): string {
  return `${prefix}:wake:${sessionId}`;
}
