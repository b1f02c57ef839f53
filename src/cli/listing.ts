/**
 * What `fairlock status` (without NAME) and `fairlock top` share: finding the lock names under a
 * prefix with a bounded SCAN, and the short kind column of their listings.
 */
import type { LockInfo } from '../index.js';
import { unescapeName } from '../protocol/keys.js';
import type { Client } from './common.js';

export interface ScanBounds {
  /** At most this many names (the listing is then marked truncated). */
  limit: number;
  /** At most this many SCAN calls (COUNT 1000 each). */
  maxCalls: number;
  /** And for at most this long. */
  maxMs: number;
}

/** Lock names under the prefix, from a SCAN bounded in calls, time and names. Sorted. */
export async function listNames(client: Client, prefix: string, bounds: ScanBounds): Promise<{ names: string[]; truncated: boolean }> {
  const head = `${prefix}:{`;
  const pattern = `${globEscape(head)}*`;
  const wanted = /^(state|queue)$/; // idle names keep only their state (the token counter)
  const names = new Set<string>();
  const until = Date.now() + bounds.maxMs;
  let cursor = '0';
  let truncated = false;
  for (let calls = 0; ; calls++) {
    if (calls >= bounds.maxCalls || Date.now() > until || names.size >= bounds.limit) {
      truncated = true;
      break;
    }
    const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
    for (const key of keys) {
      // ${prefix}:{escaped name}:suffix; an escaped name holds no brace.
      const close = key.indexOf('}', head.length);
      if (!key.startsWith(head) || close < 0 || key[close + 1] !== ':') continue;
      if (!wanted.test(key.slice(close + 2))) continue;
      if (names.size < bounds.limit) names.add(unescapeName(key.slice(head.length, close)));
      else truncated = true;
    }
    cursor = String(next);
    if (cursor === '0') break;
  }
  return { names: [...names].sort(), truncated };
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** The short kind of a listing: lock, semaphore/3, rw, or - when Redis knows nothing of it. */
export function kindColumn(s: Pick<LockInfo, 'kind' | 'limit'>): string {
  if (s.kind === 'semaphore') return `semaphore/${s.limit}`;
  return s.kind ?? '-';
}
