/**
 * `fairlock status [NAME]`: the kind, holders and queue of one name (lock, semaphore or read-write
 * lock), or the names under the prefix.
 * Read only: it uses `inspect()`, and SCAN (bounded) to find lock names for the listing.
 */
import { Command, Option } from 'commander';
import type { LockInfo } from '../index.js';
import { EXIT, finishCommand, formatMs, parseInteger, redisOptions } from './common.js';
import { runCommand } from './run-command.js';
import { escapeControls as shown } from './escape-controls.js';
import { groupCell, groupLines, listNames, nameKindCells, share, usesGroups } from './listing.js';

export interface StatusOptions {
  redis: string;
  /** A Redis Cluster: the names of every master (else FAIRLOCK_CLUSTER decides). */
  cluster?: boolean;
  prefix: string;
  json?: boolean;
  all?: boolean;
  limit: number;
}

/** What `status NAME --json` prints: `inspect()` plus the name and prefix. */
export interface LockStatus extends LockInfo {
  name: string;
  prefix: string;
}

/** One line of `status --json` without a name. */
export interface LockSummary {
  name: string;
  kind: LockInfo['kind'];
  limit: LockInfo['limit'];
  available: LockInfo['available'];
  /** How many grants are held (a semaphore or the read side of a read-write lock may have several). */
  holderCount: number;
  /** The oldest grant (lowest token), or null. */
  holder: LockInfo['holder'];
  queueLength: number;
  /** A semaphore's cap per group (`--per-group`); left out for none. */
  perGroup: LockInfo['perGroup'];
  /** inspect()'s groups: those that wait, next turn first, then those that only hold (the default group: no `group`). */
  groups: LockInfo['groups'];
}

/** SCAN at most this many times (COUNT 1000 each) and for at most this long. */
const SCAN_MAX_CALLS = 1_000;
const SCAN_MAX_MS = 10_000;

export function statusCommand(): Command {
  const cmd = new Command('status')
    .summary('show the holders and queue of a lock, semaphore or read-write lock, or list them')
    .description(
      'With NAME: its kind (lock, semaphore of N permits with how many are free, or read-write lock), ' +
        'every holder (id, fencing token, lease left, and its weight or read/write mode) and the queue ' +
        'in order, with how long each waiter has waited and what it asks for. Without NAME: the names ' +
        'under the prefix that are held or have waiters (found with a bounded SCAN of every master with ' +
        '--cluster), with their kind, ' +
        'number of holders, the oldest holder\'s token and lease left, and queue length (and, where ' +
        'groups take turns, how many groups hold or wait: GROUPS). With groups, NAME also shows each ' +
        'group in turn order (what it holds, how many wait, whether it is capped) and the group of every ' +
        'holder and waiter. ' +
        '--json prints what inspect() returns.',
    )
    .argument('[name]', 'lock, semaphore or read-write lock name')
    .option('--json', 'print JSON instead of text')
    .option('--all', 'without NAME: also list idle names (only their token counter and kind are left)')
    .addOption(new Option('--limit <n>', 'without NAME: list at most this many locks').argParser(parseInteger(1, 100_000)).default(1_000));
  for (const o of redisOptions()) cmd.addOption(o);
  return finishCommand(
    cmd,
    '  fairlock status nightly-report\n  fairlock status --json\n  fairlock status --cluster --redis redis://10.0.0.5:7000   (every master of a Redis Cluster)',
    '0 ok; 64 bad usage (also: --cluster left out for a cluster node, or given for another server); 69 Redis unreachable; 70 internal error.',
    (name: string | undefined, options: StatusOptions) => runStatus(name, options),
  );
}

export function runStatus(name: string | undefined, options: StatusOptions): Promise<number> {
  return runCommand(options, async ({ redis, locks: open }) => {
    const locks = open();
    if (name !== undefined) {
      const info = await locks.inspect(name);
      const status: LockStatus = { name, prefix: options.prefix, ...info };
      process.stdout.write(options.json ? JSON.stringify(status, null, 2) + '\n' : formatLock(status));
    } else {
      const { names, truncated } = await listNames(redis, options.prefix, { limit: options.limit, maxCalls: SCAN_MAX_CALLS, maxMs: SCAN_MAX_MS });
      const rows: LockSummary[] = [];
      for (const n of names) {
        const info = await locks.inspect(n);
        if (info.holders.length > 0 || info.queue.length > 0 || options.all) {
          rows.push({
            name: n,
            kind: info.kind,
            limit: info.limit,
            available: info.available,
            holderCount: info.holders.length,
            holder: info.holder,
            queueLength: info.queue.length,
            perGroup: info.perGroup,
            groups: info.groups,
          });
        }
      }
      const out = { prefix: options.prefix, locks: rows, truncated };
      process.stdout.write(options.json ? JSON.stringify(out, null, 2) + '\n' : formatList(out));
    }
    return EXIT.OK;
  });
}

/** "lock", "semaphore of 3 permits", "read-write lock", or "name" when Redis knows nothing of it. */
function kindTitle(s: Pick<LockInfo, 'kind' | 'limit'>): string {
  if (s.kind === 'semaphore') return `semaphore of ${s.limit} permit${s.limit === 1 ? '' : 's'}`;
  if (s.kind === 'rw') return 'read-write lock';
  if (s.kind === 'lock') return 'lock';
  return 'name';
}

export function formatLock(s: LockStatus): string {
  // Names, prefixes and ids come from the user or Redis: shown escaped (src/cli/escape-controls.ts).
  const head = `${kindTitle(s)} "${shown(s.name)}" (prefix ${shown(s.prefix)})`;
  const lines: string[] = [];
  const grouped = usesGroups(s);
  if (s.kind === 'semaphore') {
    lines.push(`${head}: ${s.available} of ${s.limit} permits available${s.perGroup === undefined ? '' : `, at most ${s.perGroup} per group`}`);
  } else if (s.kind === 'rw') {
    const mode = s.holders.some((h) => h.mode === 'write') ? 'held for writing' : s.holders.length > 0 ? 'held for reading' : 'free';
    lines.push(`${head}: ${mode}`);
  } else if (s.kind === undefined && s.holders.length === 0 && s.queue.length === 0) {
    lines.push(`${head}: free (Redis holds nothing for it: never used, or idle for a day)`);
  } else {
    lines.push(head);
  }
  const cols = (parts: string[]) => parts.filter(Boolean).join('  ');
  if (s.holders.length === 0) {
    lines.push(`holders none${s.kind === 'lock' ? ' (the lock is free)' : s.kind === 'semaphore' ? ' (all permits are free)' : ''}`);
  } else if (s.kind === 'lock' && s.holders.length === 1) {
    const h = s.holders[0]!;
    lines.push(`holder  ${cols([`token ${h.token}`, groupCell(grouped, h.group), `lease left ${formatMs(h.leaseLeftMs)}`, shown(h.id)])}`);
  } else {
    lines.push(`holders ${s.holders.length}, oldest token first:`);
    for (const h of s.holders) {
      lines.push(`  ${cols([`token ${h.token}`, share(s.kind, h), groupCell(grouped, h.group), `lease left ${formatMs(h.leaseLeftMs)}`, shown(h.id)])}`);
    }
  }
  if (grouped && s.groups.length > 0) {
    lines.push(`groups  ${s.groups.length}, next turn first:`);
    lines.push(...groupLines(s.groups, '  '));
    if (s.groups.some((g) => g.capped)) lines.push(`  (capped: at its limit of ${s.perGroup} per group, passed over without holding the others back until a grant of it ends)`);
  }
  if (s.queue.length === 0) lines.push('queue   empty');
  else if (grouped) {
    lines.push(`queue   ${s.queue.length} waiting, group by group in turn order (position inside its group):`);
    for (const w of s.queue) lines.push(`  ${String(w.position).padStart(3)}. ${cols([shown(w.id), share(s.kind, w), groupCell(true, w.group), `waited ${formatMs(w.waitedMs)}`])}`);
  } else {
    lines.push(`queue   ${s.queue.length} waiting, next first:`);
    for (const w of s.queue) lines.push(`  ${String(w.position).padStart(3)}. ${cols([shown(w.id), share(s.kind, w), `waited ${formatMs(w.waitedMs)}`])}`);
  }
  return lines.join('\n') + '\n';
}

function formatList(out: { prefix: string; locks: LockSummary[]; truncated: boolean }): string {
  if (out.locks.length === 0) return `no locks are held or waited for under the prefix "${shown(out.prefix)}"\n`;
  const { names, width, kinds, kindWidth } = nameKindCells(out.locks);
  // GROUPS only when some name takes turns between groups: without groups the listing is as it was.
  const grouped = out.locks.some(usesGroups);
  const lines = [`${'NAME'.padEnd(width)}  ${'KIND'.padEnd(kindWidth)}  HOLDERS  ${'TOKEN'.padEnd(18)}  ${'LEASE LEFT'.padEnd(10)}  QUEUE${grouped ? '  GROUPS' : ''}`];
  out.locks.forEach((l, i) => {
    const token = l.holder ? String(l.holder.token) : '-';
    const left = l.holder ? formatMs(l.holder.leaseLeftMs) : 'free';
    const groups = grouped ? `  ${usesGroups(l) ? l.groups.length : '-'}` : '';
    lines.push(`${names[i]!.padEnd(width)}  ${kinds[i]!.padEnd(kindWidth)}  ${String(l.holderCount).padEnd(7)}  ${token.padEnd(18)}  ${left.padEnd(10)}  ${grouped ? String(l.queueLength).padEnd(5) : l.queueLength}${groups}`);
  });
  if (out.locks.some((l) => l.holderCount > 1)) lines.push('(TOKEN and LEASE LEFT: those of the oldest holder; status NAME lists them all)');
  if (out.truncated) lines.push(`(list cut short: more locks may exist; see --limit)`);
  return lines.join('\n') + '\n';
}
