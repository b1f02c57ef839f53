/**
 * Redis's cost per acquisition under contention, fairlock beside redis-semaphore, taken from the
 * same run's contention figures: the lock (the hold 1 ms run, P x C) and the semaphore scenario.
 * CPU is Redis's used_cpu_user + used_cpu_sys delta over the run's window, commands every INFO
 * commandstats entry (the top-level calls and the calls scripts make, which Redis counts there too),
 * without the bench's own INFO and overlap check; both divided by the grants in the window. Commands
 * are counted by name, never by script body, so EVAL/EVALSHA and FCALL engines compare alike.
 */
import type { ContendResult } from './contention.js';
import { isFairlock, type LibResult } from './results.js';
import { round } from './stats.js';

/** The peer every fairlock row is compared with. */
export const COST_PEER = 'redis-semaphore';

/** Top-level script calls, whatever the engine (Lua scripts or Redis Functions). */
export const SCRIPT_CALLS = ['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'];

/** What reproduces these figures alone (main.ts runs every hold time; the lock's row is hold 1 ms). */
export const COST_COMMAND = `npm run bench -- --libs fairlock,${COST_PEER} --scenarios contention,semaphore`;

export interface CostRow {
  /** 'lock' or 'semaphore'. */
  kind: 'lock' | 'semaphore';
  /** The library's row id (fairlock once per client). */
  lib: string;
  procs: number;
  contenders: number;
  holdMs: number;
  /** The semaphore's permits. */
  permits?: number;
  /** Grants (acquisitions) inside the window. */
  grants: number;
  /** Redis CPU (user + sys) per acquisition, µs. */
  cpuUsPerAcquisition: number | null;
  /** Redis commands per acquisition: every commandstats entry, nested calls included. */
  commandsPerAcquisition: number | null;
  /** Of those, the top-level script calls (EVAL*, FCALL*) per acquisition. */
  scriptCallsPerAcquisition: number | null;
  /** This row's figure over redis-semaphore's of the same kind in the same run (null without one). */
  cpuVsPeer: number | null;
  commandsVsPeer: number | null;
}

/** The lock run the tables take their cost from: hold 1 ms if it ran, else the first. */
export const lockRun = (l: LibResult): ContendResult | undefined => l.contention.find((c) => c.holdMs === 1) ?? l.contention[0];

const scriptCalls = (c: ContendResult) => SCRIPT_CALLS.reduce((a, k) => a + (c.commandsByName[k] ?? 0), 0);
const ratio = (a: number | null, b: number | null | undefined) => (a != null && b ? round(a / b, 2) : null);

/** fairlock's rows and redis-semaphore's, for the lock and the semaphore, in that order; empty if neither ran. */
export function contentionCost(libs: LibResult[]): CostRow[] {
  const libsOf = libs.filter((l) => isFairlock(l) || l.id === COST_PEER);
  const out: CostRow[] = [];
  for (const kind of ['lock', 'semaphore'] as const) {
    const runOf = (l: LibResult) => (kind === 'lock' ? lockRun(l) : l.semaphore);
    const rows = libsOf.flatMap((l): CostRow[] => {
      const c = runOf(l);
      if (!c) return [];
      const per = (v: number | null) => (c.grants && v != null ? v / c.grants : null);
      return [{
        kind,
        lib: l.id,
        procs: c.procs,
        contenders: c.contenders,
        holdMs: c.holdMs,
        ...(c.permits === undefined ? {} : { permits: c.permits }),
        grants: c.grants,
        cpuUsPerAcquisition: c.cpuUsPerGrant,
        commandsPerAcquisition: c.commandsPerGrant,
        scriptCallsPerAcquisition: round(per(scriptCalls(c)), 2),
        cpuVsPeer: null,
        commandsVsPeer: null,
      }];
    });
    const peer = rows.find((r) => r.lib === COST_PEER);
    for (const r of rows) {
      r.cpuVsPeer = ratio(r.cpuUsPerAcquisition, peer?.cpuUsPerAcquisition);
      r.commandsVsPeer = ratio(r.commandsPerAcquisition, peer?.commandsPerAcquisition);
    }
    out.push(...rows);
  }
  return out;
}
