/** fairlock's targets (issue 3; the semaphore and read-write ones: issue 9), checked against one run's figures. */
import { isFairlock, type LibResult, type Target } from './results.js';

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b ? a / b : null);
const fx = (x: number | null, d = 2) => (x === null ? 'n/a' : x.toFixed(d));

/** Checked on fairlock's first row (node-redis 4 unless --clients says otherwise); the other clients' rows are in the tables. */
export function checkTargets(libs: LibResult[], scenarios?: readonly string[]): Target[] {
  const f = libs.find(isFairlock);
  if (!f) return [];
  const ran = (x: string) => !scenarios || scenarios.includes(x);
  const all: Target[] = [];
  let scenario = '';
  /** Each target is of one scenario: a run without it (--scenarios) leaves the target out. */
  const out = { push: (t: Target) => void (ran(scenario) && all.push(t)) };
  const of = (x: string) => void (scenario = x);
  const add = (what: string, goal: string, x: number | null, ok: (x: number) => boolean, value = fx(x)) =>
    out.push({ what, goal, value, met: x === null ? null : ok(x) });
  const r = f.relay;
  const l = f.loopback;
  of('relay');
  add('relay: hand-off p50 / PING p50', '<= 1.2', ratio(r?.handoff.p50, r?.ping.p50), (x) => x <= 1.2);
  add('relay: acquire+release p50 / PING p50', '<= 2.2', ratio(r?.acquireRelease.p50, r?.ping.p50), (x) => x <= 2.2);
  of('latency');
  add('loopback: hand-off p50 / PING p50', '<= 1.5', ratio(l?.handoff.p50, l?.ping.p50), (x) => x <= 1.5);
  add('loopback: acquire+release p50 / PING p50', '<= 2.5', ratio(l?.acquireRelease.p50, l?.ping.p50), (x) => x <= 2.5);
  of('waiters');
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
  of('contention');
  for (const c of f.contention) {
    out.push({
      what: `${c.procs}x${c.contenders}, hold ${c.holdMs} ms: overtaking grants, Jain`,
      goal: '0, >= 0.99',
      value: `${c.overtook} (FIFO breaks by onQueued: ${c.fifoViolations ?? 'n/a'}; overtaken head start <= ${c.overtakenLeadMaxMs ?? 0} ms; worker clocks ±${c.clock?.uncertaintyMs ?? 'n/a'} ms), ${fx(c.jain, 4)}`,
      met: c.jain === null ? null : c.overtook === 0 && c.jain >= 0.99,
    });
  }
  of('think');
  add('think 10 ms: share of time held', '>= 90%', f.think?.heldShare ?? null, (x) => x >= 0.9, f.think?.heldShare == null ? 'n/a' : `${(f.think.heldShare * 100).toFixed(1)}%`);
  of('relay');
  add('client round trips per uncontended grant (relay chunks)', '2', r?.roundTripsPerGrant ?? null, (x) => Math.round(x * 10) / 10 <= 2);
  of('contention');
  const cpu = (lib: LibResult) => lib.contention.find((c) => c.holdMs === 1)?.cpuUsPerGrant ?? null;
  const peers = libs.filter((x) => !isFairlock(x)).map(cpu).filter((x): x is number => x !== null);
  const mine = cpu(f);
  out.push({
    what: 'Redis CPU per grant (hold 1 ms) vs cheapest peer',
    goal: 'no higher',
    value: `${fx(mine, 1)} us vs ${peers.length ? fx(Math.min(...peers), 1) : 'n/a'} us`,
    met: mine === null || peers.length === 0 ? null : mine <= Math.min(...peers),
  });
  of('semaphore');
  const s = f.semaphore;
  out.push({
    what: `semaphore of ${s?.permits ?? '?'}, ${s ? s.procs * s.contenders : '?'} contenders: over-limit holds, FIFO breaks, Jain`,
    goal: '0, 0, >= 0.99',
    value: s ? `${s.violations ?? 'n/a'}, ${s.fifoViolations ?? 'n/a'} (overtaking grants ${s.overtook}), ${fx(s.jain, 4)}` : 'n/a',
    met: s?.jain == null || s.violations == null ? null : s.violations === 0 && s.fifoViolations === 0 && s.jain >= 0.99,
  });
  of('rw');
  const r2 = f.rw;
  const lw = r2?.rw?.longestWriter;
  out.push({
    what: `read-write ${r2 ? r2.procs * r2.contenders : '?'} contenders: violations, FIFO breaks (longest writer wait, with what was queued ahead of it)`,
    goal: '0, 0',
    value: r2
      ? `${r2.violations ?? 'n/a'}, ${r2.fifoViolations ?? 'n/a'} (${r2.rw?.writerMaxWaitMs ?? 'n/a'} ms behind ${lw ? `${lw.queuedAhead} queued, ${lw.readsAhead ?? '?'} of them reads` : 'n/a'})`
      : 'n/a',
    met: r2?.violations == null ? null : r2.violations === 0 && r2.fifoViolations === 0,
  });
  of('tenants');
  const t = (mode: string) => f.tenants?.find((x) => x.mode === mode);
  const g = t('groups');
  const fifo = t('fifo');
  const ho = g?.handoff?.p50Ms ?? null;
  const budget = g && ho !== null ? 2 * g.holdMs + 2 * ho : null;
  const p99 = g?.quiet.length ? Math.max(...g.quiet.map((q) => q.wait.p99 ?? Infinity)) : null;
  out.push({
    what: `tenants: quiet tenants' wait p99 with groups (${g ? `${g.flood} flooding` : 'n/a'}), worst tenant`,
    goal: budget === null ? '<= 2 holds + 2 hand-offs' : `<= 2 holds + 2 hand-offs = ${fx(budget, 1)} ms (hand-off p50 ${fx(ho, 2)} ms, this run)`,
    value: p99 === null ? 'n/a' : `${fx(p99, 1)} ms${g!.quiet.some((q) => q.stillWaiting) ? ' (some still waiting)' : ''}`,
    met: p99 === null || budget === null ? null : p99 <= budget && !g!.quiet.some((q) => q.stillWaiting),
  });
  const busy = (x: typeof g) => x?.permitsBusy ?? null;
  out.push({
    what: 'tenants: permits busy, groups vs no groups (FIFO)',
    goal: 'within 5 points',
    value: `${busy(g) === null ? 'n/a' : `${(busy(g)! * 100).toFixed(1)}%`} vs ${busy(fifo) === null ? 'n/a' : `${(busy(fifo)! * 100).toFixed(1)}%`}`,
    met: busy(g) === null || busy(fifo) === null ? null : busy(g)! >= busy(fifo)! - 0.05,
  });
  add('tenants: Redis CPU per acquisition, groups / no groups', '<= 1.2', ratio(g?.cpuUsPerAcquisition, fifo?.cpuUsPerAcquisition), (x) => x <= 1.2,
    g && fifo
      ? `${fx(ratio(g.cpuUsPerAcquisition, fifo.cpuUsPerAcquisition))} (${g.cpuUsPerAcquisition ?? 'n/a'} vs ${fifo.cpuUsPerAcquisition ?? 'n/a'} us; in scripts ` +
        `${fx(ratio(g.scriptUsPerAcquisition, fifo.scriptUsPerAcquisition))}x; commands ${g.commandsPerAcquisition ?? 'n/a'} vs ${fifo.commandsPerAcquisition ?? 'n/a'})`
      : 'n/a');
  return all;
}
