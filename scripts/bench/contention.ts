/**
 * One hot lock, P processes x C contenders: throughput, Redis commands and CPU per grant, fairness
 * (overtaking, longest wait, Jain's index) and the share of time the lock is held.
 */
import type { Adapter } from './adapters/types.js';
import { now, sleep } from './clock.js';
import type { Worker } from './pool.js';
import { RedisStats } from './redis-stats.js';
import { fifoViolations, heldMs, jain, overtaking, round, type Grant } from './stats.js';

export interface ContendOptions {
  contenders: number;
  holdMs: number;
  thinkMs: number;
  durationMs: number;
  leadMs: number;
  drainMs: number;
  maxGrants: number;
  /** A grant overtook a waiter that started waiting more than this much earlier. */
  slackMs: number;
}

export interface ContendResult {
  procs: number;
  contenders: number;
  holdMs: number;
  thinkMs: number;
  durationMs: number;
  grants: number;
  grantsPerSec: number;
  commandsPerGrant: number | null;
  cpuUsPerGrant: number | null;
  commandsByName: Record<string, number>;
  /** Microseconds inside each command per grant (INFO commandstats usec; a script's includes its commands). */
  commandUsPerGrant: Record<string, number>;
  overtook: number;
  overtakingShare: number | null;
  /** Grants that passed a waiter already queued (onQueued fired) before the grantee called acquire(); fairlock only. */
  fifoViolations: number | null;
  /** Of the overtaken waiters, the longest head start one had (ms): a few ms is client-side scheduling. */
  overtakenLeadMaxMs: number | null;
  maxWaitMs: number | null;
  jain: number | null;
  heldShare: number | null;
  pendingAtEnd: number;
}

export async function runContention(
  pool: Worker[],
  stats: RedisStats,
  adapter: Adapter,
  url: string,
  prefix: string,
  name: string,
  o: ContendOptions,
): Promise<ContendResult> {
  const startAt = now() + o.leadMs;
  const end = startAt + o.durationMs;
  const replies = Promise.all(
    pool.map((w) =>
      w.call(
        { op: 'contend', lib: adapter.id, url, prefix, name, contenders: o.contenders, holdMs: o.holdMs, thinkMs: o.thinkMs,
          startAt, durationMs: o.durationMs, drainMs: o.drainMs, maxGrants: o.maxGrants },
        o.durationMs + o.drainMs + 15_000,
      ),
    ),
  );
  await sleep(startAt - now());
  const s1 = await stats.snapshot();
  await sleep(end - now());
  const s2 = await stats.snapshot();
  const all = await replies;
  const grants: Grant[] = all.flatMap((r) => (r.ok ? (r.grants ?? []) : []));
  const pending = all.flatMap((r) => (r.ok ? (r.pending ?? []) : []));
  const inWindow = grants.filter((g) => g.got >= startAt && g.got <= end);
  const d = RedisStats.delta(s1, s2);
  const perContender = new Map<string, number>();
  for (const w of pool) for (let i = 0; i < o.contenders; i++) perContender.set(`${w.pid}:${i}`, 0);
  for (const g of inWindow) perContender.set(g.contender, (perContender.get(g.contender) ?? 0) + 1);
  const waits = grants.map((g) => g.got - g.start);
  const lastSeen = Math.max(end, ...grants.map((g) => g.got));
  for (const p of pending) waits.push(lastSeen - p.start);
  const ov = overtaking(grants, pending, o.slackMs);
  const n = inWindow.length;
  return {
    procs: pool.length,
    contenders: o.contenders,
    holdMs: o.holdMs,
    thinkMs: o.thinkMs,
    durationMs: o.durationMs,
    grants: n,
    grantsPerSec: round((n / o.durationMs) * 1000, 1)!,
    commandsPerGrant: n ? round(d.commands / n, 2) : null,
    cpuUsPerGrant: n ? round((d.cpuSeconds * 1e6) / n, 1) : null,
    commandsByName: d.byCommand,
    commandUsPerGrant: Object.fromEntries(Object.entries(d.usecByCommand).map(([k, v]) => [k, n ? round(v / n, 2)! : 0])),
    overtook: ov.overtook,
    overtakingShare: round(ov.share, 4),
    overtakenLeadMaxMs: round(ov.maxLeadMs, 1),
    fifoViolations: fifoViolations(grants),
    maxWaitMs: waits.length ? round(Math.max(...waits), 1) : null,
    jain: round(jain([...perContender.values()]), 4),
    heldShare: round(heldMs(grants, startAt, end) / o.durationMs, 4),
    pendingAtEnd: pending.length,
  };
}
