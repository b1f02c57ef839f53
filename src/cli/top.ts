/**
 * `fairlock top`: a live view of the names under a prefix that are held or have waiters, redrawn
 * every --interval. Read only: the same bounded SCAN as `fairlock status` (src/cli/listing.ts), then
 * `inspect()` per name. Every duration shown comes from Redis's clock, never from this process's.
 */
import { Command, InvalidArgumentError as UsageError, Option } from 'commander';
import type { FairLocks, LockInfo } from '../index.js';
import { RELEASES_KEPT } from '../protocol/scripts.js';
import { EXIT, finishCommand, formatMs, parseInteger, parseDuration, redisOptions, toCliError, type Connection } from './common.js';
import { runCommand } from './run-command.js';
import { within } from '../bounded.js';
import { escapeControls as shown } from './escape-controls.js';
import { groupCell, groupLines, listNames, nameKindCells, share, usesGroups } from './listing.js';

export interface TopOptions {
  redis: string;
  /** A Redis Cluster: the names of every master, and which master holds each (else FAIRLOCK_CLUSTER decides). */
  cluster?: boolean;
  prefix: string;
  json?: boolean;
  interval: number;
  limit: number;
}

/** One holder as `top --json` prints it. */
export interface TopHolder {
  id: string;
  token: number;
  /** Redis time since the grant (ms): inspect()'s heldMs. */
  heldMs: number;
  leaseLeftMs: number;
  weight: number;
  mode: 'read' | 'write' | undefined;
  /** The group of the grant; left out for the default group. */
  group: string | undefined;
}

/** One name as `top --json` prints it. */
export interface TopRow {
  name: string;
  /** With --cluster: "host:port" of the master that holds the name (its slot). */
  master?: string;
  kind: LockInfo['kind'];
  limit: LockInfo['limit'];
  available: LockInfo['available'];
  holders: TopHolder[];
  queueLength: number;
  /** A semaphore's cap per group; left out for none. */
  perGroup: LockInfo['perGroup'];
  /** inspect()'s groups: those that wait, next turn first, then those that only hold (the default group: no `group`). */
  groups: LockInfo['groups'];
  /** How long the waiter that has waited longest has waited (ms), or null with an empty queue. */
  oldestWaitMs: number | null;
  /**
   * Grants per second over the last minute (or since top started): grant ids (holders, and the last 8
   * that gave a grant up, which the name's state keeps) not seen at the refresh before; null in the
   * first snapshot.
   */
  grantsPerSec: number | null;
  /** More grants may have been made than counted (more than 8 given up between two refreshes). */
  grantsLowerBound: boolean;
}

export interface TopSnapshot {
  prefix: string;
  locks: TopRow[];
  /** The SCAN or --limit cut the listing short: more names may exist. */
  truncated: boolean;
}

/** Per refresh: at most this many SCAN calls (COUNT 1000 each), for at most this long. */
const SCAN_MAX_CALLS = 100;
const SCAN_MAX_MS = 2_000;
/** The window of the grant rate. */
const RATE_WINDOW_MS = 60_000;

const ESC = '\x1b[';
const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const HOME_CLEAR = `${ESC}H${ESC}2J`;

export function topCommand(): Command {
  const cmd = new Command('top')
    .summary('a live view of the locks, semaphores and read-write locks under a prefix')
    .description(
      'Every --interval: the names under the prefix that are held or have waiters (found with a bounded ' +
        'SCAN, at most --limit names inspected), each with its kind, holders (token, how long held, lease ' +
        'left), queue length, how long the oldest waiter has waited, and new grants per second seen over ' +
        'the last minute; where groups take turns, how many groups hold or wait (GROUPS) and under each ' +
        'name its groups in turn order (at most 3: what each holds, how many wait, capped). On a terminal it redraws in place (q or Ctrl-C quits); otherwise it prints a ' +
        'snapshot every --interval until stopped. --json prints one snapshot and exits. With --cluster, the ' +
        'names of every master of the Redis Cluster, each with the master that holds it (MASTER).',
    )
    .option('--json', 'print one snapshot as JSON and exit')
    .addOption(new Option('--interval <duration>', 'time between refreshes').argParser(parseInterval).default(1_000, '1s'))
    .addOption(new Option('--limit <n>', 'inspect at most this many names per refresh').argParser(parseInteger(1, 10_000)).default(100));
  for (const o of redisOptions()) cmd.addOption(o);
  return finishCommand(
    cmd,
    '  fairlock top\n  fairlock top --prefix jobs --interval 500ms\n  fairlock top --json\n' +
      '  fairlock top --cluster --redis redis://10.0.0.5:7000   (every master of a Redis Cluster, and which holds each name)',
    '0 ok (q, Ctrl-C, SIGINT or SIGTERM); 64 bad usage (also: --cluster left out for a cluster node, or given for another server); 69 Redis unreachable; 70 internal error.',
    (options: TopOptions) => runTop(options),
  );
}

function parseInterval(value: string): number {
  const n = parseDuration(value);
  if (n < 100) throw new UsageError('at least 100ms');
  return n;
}

/**
 * Counts, per name, the grant ids first seen at each refresh over the last minute (this process's
 * clock). The ids inspect() names (its holders' and its recentReleases) each name one grant, so the
 * ids not seen at the previous refresh are the grants made since: all of them while at most
 * RELEASES_KEPT were given back between two refreshes, a lower bound when more were.
 */
class GrantRate {
  private readonly known = new Map<string, Set<string>>();
  private readonly events = new Map<string, { at: number; count: number; lowerBound: boolean }[]>();
  private first: number | undefined;

  /** Records one refresh of `name`; returns grants per second, or null at the first refresh. */
  observe(name: string, holderIds: string[], released: string[], now: number): { perSec: number | null; lowerBound: boolean } {
    this.first ??= now;
    const before = this.known.get(name);
    const ids = [...new Set([...holderIds, ...released])];
    const events = (this.events.get(name) ?? []).filter((e) => e.at > now - RATE_WINDOW_MS);
    if (before) {
      const count = ids.filter((id) => !before.has(id)).length;
      // Every kept release is new: more may have been given up than the hash remembers.
      const lowerBound = released.length >= RELEASES_KEPT && released.every((id) => !before.has(id));
      if (count > 0) events.push({ at: now, count, lowerBound });
    } else if (now > this.first) {
      // A name that appeared after the first refresh: every grant it names is new.
      if (ids.length > 0) events.push({ at: now, count: ids.length, lowerBound: released.length >= RELEASES_KEPT });
    }
    this.known.set(name, new Set(ids));
    this.events.set(name, events);
    if (now === this.first) return { perSec: null, lowerBound: false };
    const total = events.reduce((n, e) => n + e.count, 0);
    return { perSec: total / (Math.min(RATE_WINDOW_MS, now - this.first) / 1000), lowerBound: events.some((e) => e.lowerBound) };
  }

  /** Forgets names not listed this time (memory stays bounded by --limit). */
  keep(names: Set<string>): void {
    for (const name of this.known.keys()) if (!names.has(name)) this.known.delete(name);
    for (const name of this.events.keys()) if (!names.has(name)) this.events.delete(name);
  }
}

/** One refresh: bounded SCAN, then inspect() of at most --limit names. */
async function snapshot(redis: Connection, locks: FairLocks, options: TopOptions, grants: GrantRate | undefined, now: number): Promise<TopSnapshot> {
  const { names, masterOf, truncated } = await listNames(redis, options.prefix, { limit: options.limit, maxCalls: SCAN_MAX_CALLS, maxMs: SCAN_MAX_MS });
  const rows: TopRow[] = [];
  for (const name of names) {
    const info = await locks.inspect(name);
    const rate = grants?.observe(name, info.holders.map((h) => h.id), info.recentReleases, now) ?? { perSec: null, lowerBound: false };
    if (info.holders.length === 0 && info.queue.length === 0) continue;
    const holders = info.holders.map((h): TopHolder => ({ id: h.id, token: h.token, heldMs: h.heldMs, leaseLeftMs: h.leaseLeftMs, weight: h.weight, mode: h.mode, group: h.group }));
    rows.push({
      name,
      ...(redis.cluster && { master: masterOf.get(name) ?? '-' }),
      kind: info.kind,
      limit: info.limit,
      available: info.available,
      holders,
      queueLength: info.queue.length,
      perGroup: info.perGroup,
      groups: info.groups,
      oldestWaitMs: info.queue.length > 0 ? Math.max(...info.queue.map((w) => w.waitedMs)) : null,
      grantsPerSec: rate.perSec,
      grantsLowerBound: rate.lowerBound,
    });
  }
  grants?.keep(new Set(names));
  return { prefix: options.prefix, locks: rows, truncated };
}

/** The screen (or plain snapshot) of one refresh, at most `rows` lines of at most `cols` characters. */
export function formatTop(s: TopSnapshot, head: string, cols: number, rows: number): string {
  const lines = [head];
  if (s.locks.length === 0) lines.push(`no locks are held or waited for under the prefix "${shown(s.prefix)}"`);
  else {
    const { names, width, kinds, kindWidth } = nameKindCells(s.locks);
    // On a cluster (--cluster): which master holds each name.
    const cluster = s.locks.some((l) => l.master !== undefined);
    const masters = s.locks.map((l) => shown(l.master ?? '-')); // an address from CLUSTER SLOTS: from Redis too
    const masterWidth = Math.max(6, ...masters.map((m) => m.length));
    const masterColumn = (m: string) => (cluster ? `${m.padEnd(masterWidth)}  ` : '');
    // GROUPS only when some name takes turns between groups: without groups the screen is as it was.
    const grouped = s.locks.some(usesGroups);
    lines.push(`${'NAME'.padEnd(width)}  ${masterColumn('MASTER')}${'KIND'.padEnd(kindWidth)}  HOLDERS  QUEUE  ${grouped ? 'GROUPS  ' : ''}OLDEST WAIT  GRANTS/S`);
    s.locks.forEach((l, i) => {
      const wait = l.oldestWaitMs === null ? '-' : formatMs(l.oldestWaitMs);
      const rate = l.grantsPerSec === null ? '-' : `${l.grantsLowerBound ? '>' : ''}${l.grantsPerSec.toFixed(2)}`;
      const inUse = usesGroups(l);
      const groups = grouped ? `${String(inUse ? l.groups.length : '-').padEnd(6)}  ` : '';
      lines.push(
        `${names[i]!.padEnd(width)}  ${masterColumn(masters[i]!)}${kinds[i]!.padEnd(kindWidth)}  ${String(l.holders.length).padEnd(7)}  ${String(l.queueLength).padEnd(5)}  ${groups}${wait.padEnd(11)}  ${rate}`,
      );
      const max = 3;
      for (const h of l.holders.slice(0, max)) {
        const takes = share(l.kind, h);
        const held = formatMs(h.heldMs);
        const group = groupCell(inUse, h.group); // groups come from the user or Redis: escaped by groupCell
        // Ids come from Redis: shown escaped (src/cli/escape-controls.ts).
        lines.push(`    token ${h.token}  held ${held}  lease left ${formatMs(h.leaseLeftMs)}${takes ? `  ${takes}` : ''}${group ? `  ${group}` : ''}  ${shown(h.id)}`);
      }
      if (l.holders.length > max) lines.push(`    ... and ${l.holders.length - max} more holders`);
      if (inUse) lines.push(...groupLines(l.groups, '    ', max, 'group '));
    });
  }
  if (s.truncated) lines.push('(list cut short: more names may exist; see --limit)');
  if (lines.length > rows) lines.splice(rows - 1, lines.length, `... ${lines.length - rows + 1} more lines (a taller terminal shows them)`);
  return lines.map((l) => (l.length > cols ? l.slice(0, Math.max(0, cols - 1)) + '…' : l)).join('\n') + '\n';
}

export function runTop(options: TopOptions): Promise<number> {
  return runCommand(options, async ({ redis, locks }) => {
    if (!options.json) return live(redis, locks(), options);
    const s = await snapshot(redis, locks(), options, undefined, Date.now());
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return EXIT.OK;
  });
}

/** Refreshes until q, Ctrl-C, SIGINT or SIGTERM; restores the terminal on the way out. */
async function live(redis: Connection, locks: FairLocks, options: TopOptions): Promise<number> {
  const out = process.stdout;
  const tty = out.isTTY === true;
  const stdin = process.stdin;
  const keys = tty && stdin.isTTY === true;
  const rate = new GrantRate();
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onKey = (data: Buffer) => {
    const k = data.toString();
    if (k.includes('q') || k.includes('Q') || k.includes('\x03')) stop();
  };
  const onSignal = () => stop();
  // The reader went away (`fairlock top | head`): nothing more to show, stop as a Ctrl-C would.
  const onOutError = () => stop();
  out.on('error', onOutError);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let restored = !tty;
  const restore = () => {
    if (restored) return;
    restored = true;
    if (keys) {
      stdin.off('data', onKey);
      stdin.setRawMode(false);
      stdin.pause();
    }
    out.write(CURSOR_SHOW + ALT_SCREEN_OFF);
  };
  process.once('exit', restore); // whatever happens, never leave the terminal in the alternate screen
  if (tty) {
    out.write(ALT_SCREEN_ON + CURSOR_HIDE + HOME_CLEAR);
    if (keys) {
      stdin.setRawMode(true);
      stdin.on('data', onKey);
      stdin.resume();
    }
  }
  try {
    for (;;) {
      const now = Date.now();
      const clock = new Date().toISOString().slice(11, 19);
      const head = `fairlock top  prefix ${shown(options.prefix)}  every ${formatMs(options.interval)}  ${clock} UTC${tty ? (keys ? '  (q quits)' : '  (Ctrl-C quits)') : ''}`;
      let text: string;
      try {
        const s = await snapshot(redis, locks, options, rate, now);
        text = formatTop(s, head, tty ? out.columns || 80 : Number.MAX_SAFE_INTEGER, tty ? out.rows || 24 : Number.MAX_SAFE_INTEGER);
      } catch (err) {
        text = `${head}\nRedis error (retrying every ${formatMs(options.interval)}): ${shown(toCliError(err).message)}\n`;
      }
      out.write(tty ? `${ESC}H${text.replace(/\n/g, `${ESC}K\n`)}${ESC}J` : `${text}\n`);
      if (await within(stopped, options.interval)) break;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    out.off('error', onOutError);
    restore();
    process.off('exit', restore);
  }
  return EXIT.OK;
}
