/** fairlock's targets (issue 3), checked against one run's figures. */
import { isFairlock, type LibResult, type Target } from './results.js';

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b ? a / b : null);
const fx = (x: number | null, d = 2) => (x === null ? 'n/a' : x.toFixed(d));

/** Checked on fairlock's first row (node-redis 4 unless --clients says otherwise); the other clients' rows are in the tables. */
export function checkTargets(libs: LibResult[]): Target[] {
  const f = libs.find(isFairlock);
  if (!f) return [];
  const out: Target[] = [];
  const add = (what: string, goal: string, x: number | null, ok: (x: number) => boolean, value = fx(x)) =>
    out.push({ what, goal, value, met: x === null ? null : ok(x) });
  const r = f.relay;
  const l = f.loopback;
  add('relay: hand-off p50 / PING p50', '<= 1.2', ratio(r?.handoff.p50, r?.ping.p50), (x) => x <= 1.2);
  add('relay: acquire+release p50 / PING p50', '<= 2.2', ratio(r?.acquireRelease.p50, r?.ping.p50), (x) => x <= 2.2);
  add('loopback: hand-off p50 / PING p50', '<= 1.5', ratio(l?.handoff.p50, l?.ping.p50), (x) => x <= 1.5);
  add('loopback: acquire+release p50 / PING p50', '<= 2.5', ratio(l?.acquireRelease.p50, l?.ping.p50), (x) => x <= 2.5);
  const w = (n: number) => f.waiters.find((x) => x.waiters === n)?.commandsPerSec ?? null;
  const wMax = Math.max(...f.waiters.map((x) => x.waiters));
  const w10 = w(10);
  const wm = w(wMax);
  out.push({
    what: `Redis cmds/s with ${wMax} waiters vs 10`,
    goal: 'no higher',
    value: `${fx(wm, 1)} vs ${fx(w10, 1)}`,
    met: wm === null || w10 === null ? null : wm <= w10,
  });
  for (const c of f.contention) {
    out.push({
      what: `${c.procs}x${c.contenders}, hold ${c.holdMs} ms: overtaking grants, Jain`,
      goal: '0, >= 0.99',
      value: `${c.overtook} (FIFO breaks by onQueued: ${c.fifoViolations ?? 'n/a'}; overtaken head start <= ${c.overtakenLeadMaxMs ?? 0} ms; worker clocks ±${c.clock?.uncertaintyMs ?? 'n/a'} ms), ${fx(c.jain, 4)}`,
      met: c.jain === null ? null : c.overtook === 0 && c.jain >= 0.99,
    });
  }
  add('think 10 ms: share of time held', '>= 90%', f.think?.heldShare ?? null, (x) => x >= 0.9, f.think?.heldShare == null ? 'n/a' : `${(f.think.heldShare * 100).toFixed(1)}%`);
  add('client round trips per uncontended grant (relay chunks)', '2', r?.roundTripsPerGrant ?? null, (x) => Math.round(x * 10) / 10 <= 2);
  const cpu = (lib: LibResult) => lib.contention.find((c) => c.holdMs === 1)?.cpuUsPerGrant ?? null;
  const peers = libs.filter((x) => !isFairlock(x)).map(cpu).filter((x): x is number => x !== null);
  const mine = cpu(f);
  out.push({
    what: 'Redis CPU per grant (hold 1 ms) vs cheapest peer',
    goal: 'no higher',
    value: `${fx(mine, 1)} us vs ${peers.length ? fx(Math.min(...peers), 1) : 'n/a'} us`,
    met: mine === null || peers.length === 0 ? null : mine <= Math.min(...peers),
  });
  return out;
}
