/**
 * What `fairlock status` and `fairlock top` share: finding the lock names under a prefix with a
 * bounded SCAN of every master (on a cluster a SCAN sees its own node's keys only; the only Redis
 * read of the command line besides inspect()), and the cells of their listings.
 */
import type { GroupInfo, LockInfo } from '../index.js';
import { keyPattern, nameOfKey } from '../protocol/keys.js';
import type { Connection } from './common.js';
import { escapeControls as shown } from './escape-controls.js';

export interface ScanBounds {
  /** At most this many names (the listing is then marked truncated). */
  limit: number;
  /** At most this many SCAN calls (COUNT 1000 each), over all masters. */
  maxCalls: number;
  /** And for at most this long. */
  maxMs: number;
}

/**
 * Lock names under the prefix, from a SCAN of each master in turn, bounded in calls, time and names
 * over all of them. Sorted; `masterOf` gives the "host:port" of the master each name was found on.
 */
export async function listNames(
  redis: Connection,
  prefix: string,
  bounds: ScanBounds,
): Promise<{ names: string[]; masterOf: Map<string, string>; truncated: boolean }> {
  const pattern = keyPattern(prefix);
  const found = new Map<string, string>();
  const until = Date.now() + bounds.maxMs;
  let calls = 0;
  let truncated = false;
  scan: for (const master of await redis.masters()) {
    let cursor = '0';
    do {
      if (calls >= bounds.maxCalls || Date.now() > until || found.size >= bounds.limit) {
        truncated = true;
        break scan;
      }
      calls++;
      const [next, keys] = (await master.client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
      for (const key of keys) {
        const name = nameOfKey(prefix, key); // idle names keep only their state (the token counter)
        if (name === undefined || found.has(name)) continue;
        if (found.size < bounds.limit) found.set(name, master.address);
        else truncated = true;
      }
      cursor = String(next);
    } while (cursor !== '0');
  }
  return { names: [...found.keys()].sort(), masterOf: found, truncated };
}

/** The short kind of a listing: lock, semaphore/3, rw, or - when Redis knows nothing of it. */
export function kindColumn(s: Pick<LockInfo, 'kind' | 'limit'>): string {
  if (s.kind === 'semaphore') return `semaphore/${s.limit}`;
  return s.kind ?? '-';
}

/**
 * The NAME and KIND cells of a listing and their widths. Names come from Redis: escaped
 * (src/cli/escape-controls.ts), and the columns sized on that.
 */
export function nameKindCells(locks: (Pick<LockInfo, 'kind' | 'limit'> & { name: string })[]): { names: string[]; width: number; kinds: string[]; kindWidth: number } {
  const names = locks.map((l) => shown(l.name));
  const kinds = locks.map((l) => shown(kindColumn(l)));
  return { names, width: Math.min(40, Math.max(4, ...names.map((n) => n.length))), kinds, kindWidth: Math.max(4, ...kinds.map((k) => k.length)) };
}

/** What a grant or a wait takes of its name: "read", "write", "weight 2" (a semaphore), or "" (a lock). */
export function share(kind: LockInfo['kind'], x: { weight: number; mode: 'read' | 'write' | undefined }): string {
  if (x.mode !== undefined) return x.mode;
  if (kind === 'semaphore') return `weight ${x.weight}`;
  return '';
}

/**
 * Whether a name takes turns between groups (README, fair share): a named group holds or waits, or
 * the semaphore caps what a group holds. Without groups the listings look as they always did.
 */
export function usesGroups(s: Pick<LockInfo, 'groups' | 'perGroup'>): boolean {
  return s.perGroup !== undefined || s.groups.some((g) => g.group !== undefined);
}

/**
 * A group as the listings show it: `"tenant-a"` (quoted; from the user or Redis, so escaped), or
 * `(default)` for the default group (requests that name none), which no quoted name can pass for.
 */
export function groupLabel(group: string | undefined): string {
  return group === undefined ? '(default)' : `"${shown(group)}"`;
}

/** What a holder's or waiter's line says of its group: `group "x"`, `group (default)`, or "" where groups are not in use. */
export function groupCell(inUse: boolean, group: string | undefined): string {
  return inUse ? `group ${groupLabel(group)}` : '';
}

/**
 * One line per group, in inspect()'s order (rotation, next turn first, then those that only hold):
 * `tag` `"x"  holds 2  waiting 3  capped`, labels padded to one width; at most `max` lines, then how many more.
 */
export function groupLines(groups: GroupInfo[], indent: string, max = Number.MAX_SAFE_INTEGER, tag = ''): string[] {
  const labels = groups.map((g) => groupLabel(g.group));
  const width = Math.min(40, Math.max(...labels.map((l) => l.length), 0));
  const lines = groups.slice(0, max).map((g, i) => {
    const capped = g.capped ? '  capped' : '';
    return `${indent}${tag}${labels[i]!.padEnd(width)}  holds ${g.held}  waiting ${g.waiting}${capped}`;
  });
  if (groups.length > max) lines.push(`${indent}... and ${groups.length - max} more group${groups.length - max === 1 ? '' : 's'}`);
  return lines;
}
