/**
 * `fairlock status [NAME]`: the holder and queue of one lock, or the locks under the prefix.
 * Read only: it uses `inspect()`, and SCAN (bounded) to find lock names for the listing.
 */
import { Command, Option } from 'commander';
import { FairLocks, type LockInfo } from '../index.js';
import { unescapeName } from '../keys.js';
import { bounded, closeRedis, connectRedis, formatMs, parseCount, redisOptions, say, toCliError, type Client } from './common.js';

export interface StatusOptions {
  redis: string;
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
  holder: LockInfo['holder'];
  queueLength: number;
}

/** SCAN at most this many times (COUNT 1000 each) and for at most this long. */
const SCAN_MAX_CALLS = 1_000;
const SCAN_MAX_MS = 10_000;

export function statusCommand(): Command {
  const cmd = new Command('status')
    .summary('show the holder and queue of a lock, or list the locks')
    .description(
      'With NAME: the holder (id, fencing token, lease left) and the queue in order, with how long ' +
        'each waiter has waited. Without NAME: the locks under the prefix that are held or have waiters ' +
        '(found with a bounded SCAN), with their queue lengths.',
    )
    .argument('[name]', 'lock name')
    .option('--json', 'print JSON instead of text')
    .option('--all', 'without NAME: also list idle locks (only their token counter is left)')
    .addOption(new Option('--limit <n>', 'without NAME: list at most this many locks').argParser(parseCount(1, 100_000)).default(1_000));
  for (const o of redisOptions()) cmd.addOption(o);
  cmd.addHelpText('after', '\nExamples:\n  fairlock status nightly-report\n  fairlock status --json\n\nExit codes: 0 ok; 64 bad usage; 69 Redis unreachable; 70 internal error.');
  cmd.action(async (name: string | undefined, options: StatusOptions) => {
    process.exitCode = await runStatus(name, options);
  });
  return cmd;
}

export async function runStatus(name: string | undefined, options: StatusOptions): Promise<number> {
  let client: Client | undefined;
  let locks: FairLocks | undefined;
  try {
    client = await connectRedis(options.redis);
    locks = new FairLocks(client, { prefix: options.prefix });
    if (name !== undefined) {
      const info = await locks.inspect(name);
      const status: LockStatus = { name, prefix: options.prefix, ...info };
      process.stdout.write(options.json ? JSON.stringify(status, null, 2) + '\n' : formatLock(status));
    } else {
      const { names, truncated } = await listNames(client, options);
      const rows: LockSummary[] = [];
      for (const n of names) {
        const info = await locks.inspect(n);
        if (info.holder || info.queue.length > 0 || options.all) rows.push({ name: n, holder: info.holder, queueLength: info.queue.length });
      }
      const out = { prefix: options.prefix, locks: rows, truncated };
      process.stdout.write(options.json ? JSON.stringify(out, null, 2) + '\n' : formatList(out));
    }
    return 0;
  } catch (err) {
    const e = toCliError(err);
    say(e.message);
    return e.exitCode;
  } finally {
    if (locks) await bounded(locks.close(), 2_000);
    await closeRedis(client);
  }
}

/** Lock names under the prefix, from a SCAN bounded in calls, time and names. Sorted. */
async function listNames(client: Client, options: StatusOptions): Promise<{ names: string[]; truncated: boolean }> {
  const head = `${options.prefix}:{`;
  const pattern = `${globEscape(head)}*`;
  const wanted = options.all ? /^(owner|queue|counter)$/ : /^(owner|queue)$/;
  const names = new Set<string>();
  const until = Date.now() + SCAN_MAX_MS;
  let cursor = '0';
  let truncated = false;
  for (let calls = 0; ; calls++) {
    if (calls >= SCAN_MAX_CALLS || Date.now() > until || names.size >= options.limit) {
      truncated = true;
      break;
    }
    const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
    for (const key of keys) {
      // ${prefix}:{escaped name}:suffix; an escaped name holds no brace.
      const close = key.indexOf('}', head.length);
      if (!key.startsWith(head) || close < 0 || key[close + 1] !== ':') continue;
      if (!wanted.test(key.slice(close + 2))) continue;
      if (names.size < options.limit) names.add(unescapeName(key.slice(head.length, close)));
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

export function formatLock(s: LockStatus): string {
  const lines = [`lock "${s.name}" (prefix ${s.prefix})`];
  if (s.holder) lines.push(`holder  ${s.holder.id}  token ${s.holder.token}  lease left ${formatMs(s.holder.leaseLeftMs)}`);
  else lines.push('holder  none (the lock is free)');
  if (s.queue.length === 0) lines.push('queue   empty');
  else {
    lines.push(`queue   ${s.queue.length} waiting, next first:`);
    for (const w of s.queue) lines.push(`  ${String(w.position).padStart(3)}. ${w.id}  waited ${formatMs(w.waitedMs)}`);
  }
  return lines.join('\n') + '\n';
}

function formatList(out: { prefix: string; locks: LockSummary[]; truncated: boolean }): string {
  if (out.locks.length === 0) return `no locks are held or waited for under the prefix "${out.prefix}"\n`;
  const width = Math.min(40, Math.max(4, ...out.locks.map((l) => l.name.length)));
  const lines = [`${'NAME'.padEnd(width)}  ${'TOKEN'.padEnd(18)}  ${'LEASE LEFT'.padEnd(10)}  QUEUE`];
  for (const l of out.locks) {
    const token = l.holder ? String(l.holder.token) : '-';
    const left = l.holder ? formatMs(l.holder.leaseLeftMs) : 'free';
    lines.push(`${l.name.padEnd(width)}  ${token.padEnd(18)}  ${left.padEnd(10)}  ${l.queueLength}`);
  }
  if (out.truncated) lines.push(`(list cut short: more locks may exist; see --limit)`);
  return lines.join('\n') + '\n';
}
