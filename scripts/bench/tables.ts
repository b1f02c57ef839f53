/** The result tables, as rows of strings: rendered for the terminal and as Markdown. */
import { COST_COMMAND, COST_PEER, contentionCost, type CostRow } from './contention-cost.js';
import type { ContendResult } from './contention.js';
import type { BenchResults, LibResult } from './results.js';
import { TENANTS_PEER, type TenantsResult } from './tenants.js';
import type { WaitersResult } from './waiters.js';

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  /** A line under the table (e.g. the command that reproduces it). */
  note?: string;
}

const us = (ms: number | null | undefined) =>
  ms == null ? 'n/a' : ms >= 10 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(1)} ms` : `${(ms * 1000).toFixed(0)} us`;
const ms1 = (ms: number | null | undefined) => (ms == null ? 'n/a' : ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
const x = (a: number | null | undefined, b: number | null | undefined) =>
  a != null && b ? (a / b >= 100 ? `${(a / b).toFixed(0)}x` : `${(a / b).toFixed(2)}x`) : 'n/a';
const n = (v: number | null | undefined, d = 1) => (v == null ? 'n/a' : v.toFixed(d));
const pct = (v: number | null | undefined, d = 1) => (v == null ? 'n/a' : `${(v * 100).toFixed(d)}%`);
const big = (v: number | null | undefined) => (v == null ? 'n/a' : v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));

/** Memory deltas of a few bytes either way are noise (allocator, client buffers). */
const bytes = (v: number | null | undefined) => (v == null ? 'n/a' : Math.abs(v) < 16 ? '~0' : v.toFixed(0));

/** The rate; if the queue cap was hit, how many waiters were queued when the window started. */
function waitCell(x: WaitersResult | undefined): string {
  if (!x) return 'n/a';
  const short = x.queued != null && x.queued < x.waiters ? ` (${x.queued.toLocaleString('en-US')} queued)` : '';
  return `${big(x.commandsPerSec)}${short}`;
}

/** What the rows' windows waited for, and how long that took at most (older runs: not recorded). */
function windowFrom(ws: WaitersResult[]): string {
  const ready = Math.max(...ws.map((x) => x.readyMs ?? NaN));
  const upTo = Number.isFinite(ready) ? ` (<= ${ms1(ready)} ms)` : '';
  if (ws.length && ws.every((x) => x.windowFrom === 'queued')) return `all queued${upTo}`;
  if (ws.length && ws.every((x) => x.windowFrom === 'settle')) return `settle delay${upTo}`;
  return 'n/a';
}

/** "3 (2 reads)": what was queued ahead of the writer that waited longest. */
function ahead(c: ContendResult | undefined): string {
  const w = c?.rw?.longestWriter;
  if (!w) return 'n/a';
  if (w.queuedAhead === null) return 'not queued yet, still waiting';
  return `${w.queuedAhead} (${w.readsAhead ?? '?'} reads)${w.granted ? '' : ', still waiting'}`;
}

/** Tables for the semaphore and read-write scenarios: a row per library that has the primitive. */
function kindTables(r: BenchResults): Table[] {
  const out: Table[] = [];
  const sem = r.libs.filter((l) => l.kinds?.semaphore && (l.semaphore || l.errors.length));
  const s0 = sem.find((l) => l.semaphore)?.semaphore;
  if (s0) {
    out.push({
      title: `Fair semaphore: ${s0.permits} permits, ${s0.procs}x${s0.contenders} contenders (processes x contenders), each holding ${s0.holdMs} ms`,
      headers: ['library', 'grants/s', 'longest wait', 'Jain', 'overtaking grants', 'FIFO breaks', 'permits in use (avg)', 'over-limit holds', 'Redis cmds / grant', 'Redis CPU / grant'],
      rows: sem.map((l) => {
        const c = l.semaphore;
        return [
          l.id,
          big(c?.grantsPerSec),
          c?.maxWaitMs == null ? 'n/a' : `${ms1(c.maxWaitMs)} ms`,
          n(c?.jain, 3),
          c ? `${c.overtook} (${pct(c.overtakingShare)})` : 'n/a',
          c?.fifoViolations == null ? '-' : String(c.fifoViolations),
          n(c?.heldShare, 2),
          c?.violations == null ? 'n/a' : String(c.violations),
          n(c?.commandsPerGrant, 1),
          c?.cpuUsPerGrant == null ? 'n/a' : `${c.cpuUsPerGrant.toFixed(0)} us`,
        ];
      }),
    });
  }
  const rw = r.libs.filter((l) => l.kinds?.rw && (l.rw || l.errors.length));
  const r0 = rw.find((l) => l.rw)?.rw;
  if (r0) {
    const w = r0.writeShare ?? 0;
    const without = r.libs.filter((l) => !l.kinds?.rw).map((l) => l.id);
    out.push({
      title:
        `Read-write lock: ${Math.round((1 - w) * 100)}% reads, ${Math.round(w * 100)}% writes, ${r0.procs}x${r0.contenders} contenders, each holding ${r0.holdMs} ms` +
        (without.length ? ` (${without.join(', ')}: no read-write lock)` : ''),
      headers: [
        'library', 'reads/s', 'writes/s', 'longest wait: reader', 'writer', 'writer wait p50',
        'queued ahead of the longest-waiting writer', 'most reads ahead of a writer', 'FIFO breaks', 'violations', 'Jain', 'Redis cmds / grant',
      ],
      rows: rw.map((l) => {
        const c = l.rw;
        const x = c?.rw;
        return [
          l.id,
          big(x?.readsPerSec),
          big(x?.writesPerSec),
          x?.readerMaxWaitMs == null ? 'n/a' : `${ms1(x.readerMaxWaitMs)} ms`,
          x?.writerMaxWaitMs == null ? 'n/a' : `${ms1(x.writerMaxWaitMs)} ms`,
          x?.writerWaitP50Ms == null ? 'n/a' : `${ms1(x.writerWaitP50Ms)} ms`,
          ahead(c),
          x?.maxReadsAheadOfWriter == null ? 'n/a' : String(x.maxReadsAheadOfWriter),
          c?.fifoViolations == null ? '-' : String(c.fifoViolations),
          c?.violations == null ? 'n/a' : String(c.violations),
          n(c?.jain, 3),
          n(c?.commandsPerGrant, 1),
        ];
      }),
    });
  }
  return out;
}

/** The tenants scenario's rows, in order: fairlock with groups, without, then redis-semaphore. */
export function tenantRows(r: BenchResults): { lib: LibResult; run: TenantsResult }[] {
  const order: TenantsResult['mode'][] = ['groups', 'fifo', 'peer'];
  return r.libs
    .flatMap((lib) => (lib.tenants ?? []).map((run) => ({ lib, run })))
    .sort((a, b) => order.indexOf(a.run.mode) - order.indexOf(b.run.mode));
}

const MODE = { groups: 'groups (tenant = group)', fifo: 'no groups (FIFO)', peer: 'no groups (its Semaphore, polling)' } as const;

/** Fair share between tenants: the quiet tenants' waits, permits busy, Redis cost, with and without groups. */
function tenantsTable(r: BenchResults): Table | undefined {
  const rows = tenantRows(r);
  const t0 = rows[0]?.run;
  if (!t0) return undefined;
  const fifo = rows.find((x) => x.run.mode === 'fifo')?.run;
  const ho = rows.find((x) => x.run.handoff)?.run.handoff;
  const wait = (w: TenantsResult['quiet'][number] | undefined) =>
    w ? `${ms1(w.wait.p50)} / ${ms1(w.wait.p99)} ms${w.stillWaiting ? ` (${w.stillWaiting} still waiting)` : ''}` : 'n/a';
  const tenants = [...new Set(rows.flatMap((x) => x.run.quiet.map((q) => q.tenant)))];
  return {
    title:
      `Fair share between tenants: a semaphore of ${t0.permits}, each request holding ${t0.holdMs} ms; one tenant sends ${t0.flood.toLocaleString('en-US')} ` +
      `requests at once, ${tenants.length} quiet tenants one each every ${t0.intervalMs} ms for ${t0.durationMs / 1000} s`,
    headers: ['library', 'mode', ...tenants.map((q) => `${q} wait p50 / p99`), 'quiet granted / sent', 'flood grants while a quiet one queued (max)', 'flood left at window end', 'permits busy', 'Redis CPU / acq', 'x no groups', 'in scripts / acq', 'x no groups', 'Redis cmds / acq', 'run'],
    rows: rows.map(({ lib, run }) => [
      lib.id,
      MODE[run.mode],
      ...tenants.map((q) => wait(run.quiet.find((x) => x.tenant === q))),
      `${run.quiet.reduce((a, q) => a + q.granted, 0)} / ${run.quiet.reduce((a, q) => a + q.sent, 0)}`,
      run.quiet.some((q) => q.floodGrantsWhileQueued?.max != null) ? String(Math.max(...run.quiet.map((q) => q.floodGrantsWhileQueued?.max ?? 0))) : 'n/a',
      String(run.floodQueuedAtWindowEnd),
      pct(run.permitsBusy),
      run.cpuUsPerAcquisition == null ? 'n/a' : `${run.cpuUsPerAcquisition.toFixed(0)} us`,
      run.mode === 'fifo' ? '-' : x(run.cpuUsPerAcquisition, fifo?.cpuUsPerAcquisition),
      run.scriptUsPerAcquisition == null ? 'n/a' : `${run.scriptUsPerAcquisition.toFixed(0)} us`,
      run.mode === 'fifo' ? '-' : x(run.scriptUsPerAcquisition, fifo?.scriptUsPerAcquisition),
      n(run.commandsPerAcquisition, 1),
      `${run.elapsedSec.toFixed(1)} s${run.capped ? ' (cap: abandoned)' : ''}`,
    ]),
    note:
      'Waits: send to grant, each from its own process\'s two stamps. Flood grants while queued: by fencing tokens (Redis\'s µs clock at each grant) over the quiet request\'s queued span, an upper bound. ' +
      'Permits busy: the holds inside the quiet window over permits x window. ' +
      'Redis CPU (used_cpu), time in scripts (commandstats usec of FCALL/EVALSHA) and commands: INFO deltas from the start until every request ended, over every grant (flood and quiet). ' +
      (ho ? `Hand-off on loopback this run: p50 ${us(ho.p50Ms)}, p99 ${us(ho.p99Ms)} (PING p50 ${us(ho.pingP50Ms)}). ` : '') +
      `Alone: \`npm run bench -- --libs fairlock,${TENANTS_PEER} --scenarios tenants\``,
  };
}

/** "lock, 4x4, hold 1 ms" / "semaphore(4), 4x4, hold 1 ms": the run a cost row comes from. */
const costCase = (c: CostRow) => `${c.kind === 'lock' ? 'lock' : `semaphore(${c.permits ?? '?'})`}, ${c.procs}x${c.contenders}, hold ${c.holdMs} ms`;

/** Redis CPU and commands per acquisition, fairlock beside redis-semaphore, with the ratio of the same run. */
function costTable(r: BenchResults): Table | undefined {
  const rows = r.cost ?? contentionCost(r.libs);
  if (!rows.some((c) => c.lib !== COST_PEER)) return undefined;
  return {
    title: `Redis cost per acquisition under contention, beside ${COST_PEER} in the same run (processes x contenders)`,
    headers: ['case', 'library', 'acquisitions', 'Redis CPU / acq', `x ${COST_PEER}`, 'Redis cmds / acq', 'of which script calls', `x ${COST_PEER}`],
    rows: rows.map((c) => [
      costCase(c),
      c.lib,
      String(c.grants),
      c.cpuUsPerAcquisition == null ? 'n/a' : `${c.cpuUsPerAcquisition.toFixed(0)} us`,
      c.lib === COST_PEER ? '-' : c.cpuVsPeer == null ? 'n/a' : `${c.cpuVsPeer.toFixed(2)}x`,
      n(c.commandsPerAcquisition, 1),
      n(c.scriptCallsPerAcquisition, 2),
      c.lib === COST_PEER ? '-' : c.commandsVsPeer == null ? 'n/a' : `${c.commandsVsPeer.toFixed(2)}x`,
    ]),
    note:
      'Redis CPU: used_cpu_user + used_cpu_sys delta over the run\'s window; commands: every INFO commandstats entry, ' +
      `calls made inside scripts included; both per acquisition in the window. Alone: \`${COST_COMMAND}\``,
  };
}

/** What reproduces the quorum tables alone. */
export const QUORUM_COMMAND = 'npm run bench -- --scenarios quorum';

/** The quorum scenario: round trips per N, and the contention run. */
function quorumTables(r: BenchResults): Table[] {
  const q = r.quorum;
  if (!q) return [];
  const o = q.options;
  const rt = (v: number | null | undefined) => (v == null ? 'n/a' : v.toFixed(2));
  const lat: Table = {
    title: `Quorum lock over N independent redis-servers, each behind a relay delaying every chunk ${o.delayMs} ms each way: round trips = p50 / PING p50 (master 0's client)`,
    headers: ['library', 'N', 'PING p50', 'acquire p50 / p99', 'round trips', 'hand-off p50 / p99', 'round trips', 'commit calls / acquire, / hand-off', 'requests / acquire+release by master', 'Redis cmds / acquire+release'],
    rows: q.latency.map((L) => [
      L.lib,
      String(L.masters),
      us(L.ping.p50),
      `${us(L.acquire.p50)} / ${us(L.acquire.p99)} (n=${L.acquire.n})`,
      rt(L.acquireRoundTrips),
      `${us(L.handoff.p50)} / ${us(L.handoff.p99)} (n=${L.handoff.n}${L.handoffTimedOut ? ', timed out' : ''})`,
      rt(L.handoffRoundTrips),
      L.commitsPerAcquire == null ? '-' : `${L.commitsPerAcquire}, ${L.commitsPerHandoff ?? 'n/a'}`,
      L.requestsByMaster ? L.requestsByMaster.map((v) => v.toFixed(1)).join(' + ') : 'n/a',
      n(L.commandsPerAcquire, 1),
    ]),
    note: `Uncontended: the acquire() call alone (release outside the timing). Hand-off: holder's release() -> the waiter's acquire() resolving (fairlock: the waiter queued first). ${q.libs.map((l) => `${l.id}: ${l.label}`).join('; ')}. Alone: \`${QUORUM_COMMAND}\``,
  };
  const c0 = q.contention[0];
  const cont: Table | undefined = c0 && {
    title: `Quorum lock under contention: ${c0.workers} clients x ${c0.perWorker} acquisitions at each hold, ${c0.masters} masters behind the relays (one process, one clock)`,
    headers: ['library', 'hold', 'grants (still waiting)', 'grants/s', 'unfair grants', 'FIFO breaks', 'longest wait', 'Jain', 'Redis CPU / acquisition (less idle)', 'in scripts', 'Redis cmds / acquisition', 'script calls / acquisition', 'commit calls / grant'],
    rows: q.contention.map((c) => [
      c.lib,
      `${c.holdMs} ms`,
      `${c.grants} (${c.pending})`,
      big(c.grantsPerSec),
      `${c.unfair} (${pct(c.unfairShare)})`,
      c.fifoBreaks == null ? '-' : String(c.fifoBreaks),
      c.maxWaitMs == null ? 'n/a' : `${ms1(c.maxWaitMs)} ms`,
      n(c.jain, 3),
      c.cpuUsPerAcquisition == null ? 'n/a' : `${c.cpuUsPerAcquisition.toFixed(0)} us (${c.netCpuUsPerAcquisition?.toFixed(0) ?? 'n/a'} us)`,
      c.scriptUsPerAcquisition == null ? 'n/a' : `${c.scriptUsPerAcquisition.toFixed(0)} us`,
      n(c.commandsPerAcquisition, 1),
      n(c.scriptCallsPerAcquisition, 1),
      c.commitsPerGrant == null ? '-' : n(c.commitsPerGrant, 2),
    ]),
    note:
      `Unfair: a grant whose acquire() began more than ${c0.slackMs} ms (a relay round trip) after another's that was still waiting (order of grants: fencing tokens where the library has them, else this process's stamps). ` +
      `FIFO breaks (fairlock): that waiter had been told it was queued before the grantee called acquire(). Redis CPU: used_cpu_user + used_cpu_sys summed over the masters over the run, per grant; less idle: less the masters' CPU rate while nobody asked (the mean of ${o.idleMs / 1000} s just before the run and ${o.idleMs / 1000} s just after; the masters run at hz 1), times the run's length. ` +
      'In scripts: commandstats usec of the EVALSHA/FCALL calls (their commands included). Commands: INFO commandstats, nested calls included, PINGs left out. ' +
      'At each hold the two libraries run one after the other; a longer hold gives redlock\'s waiters more failed retries per grant (every 200 ms +- 100 ms), while ours make the same calls.',
  };
  return cont ? [lat, cont] : [lat];
}

export function tables(r: BenchResults): Table[] {
  // a run of some scenarios only (--scenarios) leaves the others' tables out
  const ran = (k: 'loopback' | 'relay' | 'contention' | 'waiters') =>
    r.libs.some((l) => (k === 'contention' ? l.contention.length > 0 || l.think : k === 'waiters' ? l.waiters.length > 0 : l[k]));
  const holds = [...new Set(r.libs.flatMap((l) => l.contention.map((c) => c.holdMs)))];
  const waiters = [...new Set(r.libs.flatMap((l) => l.waiters.map((w) => w.waiters)))];
  const shape = `${r.meta.procs}x${r.meta.contenders}`;
  const cont = (l: LibResult, h: number) => l.contention.find((c) => c.holdMs === h);
  const main = holds.includes(1) ? 1 : holds[0]!;
  const base: (Table | false)[] = [
    ran('loopback') && {
      title: 'Latency on loopback (one process; ratios to the PING p50 of each row\'s own client)',
      headers: ['library', 'PING p50 / p99', 'acquire+release p50 / p99', 'x PING', 'hand-off p50 / p99', 'x PING', 'Redis cmds / grant'],
      rows: r.libs.map((l) => {
        const L = l.loopback;
        return [
          l.id,
          `${us(L?.ping.p50)} / ${us(L?.ping.p99)}`,
          `${us(L?.acquireRelease.p50)} / ${us(L?.acquireRelease.p99)}`,
          x(L?.acquireRelease.p50, L?.ping.p50),
          `${us(L?.handoff.p50)} / ${us(L?.handoff.p99)}${L?.handoff.n ? '' : ''}${L && L.handoff.n < 10 ? ` (n=${L.handoff.n})` : ''}`,
          x(L?.handoff.p50, L?.ping.p50),
          n(L?.commandsPerGrant, 1),
        ];
      }),
    },
    ran('relay') && {
      title: `Latency through a relay delaying every chunk ${r.meta.relayDelayMs} ms each way (round trips decide)`,
      headers: ['library', 'PING p50', 'acquire+release p50', 'x PING', 'hand-off p50 / p99', 'x PING', 'round trips / grant'],
      rows: r.libs.map((l) => {
        const R = l.relay;
        return [
          l.id,
          us(R?.ping.p50),
          us(R?.acquireRelease.p50),
          x(R?.acquireRelease.p50, R?.ping.p50),
          `${us(R?.handoff.p50)} / ${us(R?.handoff.p99)}${R && R.handoff.n < 10 ? ` (n=${R.handoff.n})` : ''}`,
          x(R?.handoff.p50, R?.ping.p50),
          n(R?.roundTripsPerGrant, 2),
        ];
      }),
    },
    ran('contention') && {
      title: `One hot lock, ${shape} (processes x contenders); fairness and Redis cost from the hold ${main} ms run`,
      headers: [
        'library',
        ...holds.map((h) => `grants/s hold ${h} ms`),
        'Redis cmds / grant',
        'Redis CPU / grant',
        'client CPU / grant',
        'overtaking grants',
        'FIFO breaks',
        'longest wait',
        'Jain',
        `think: grants/s`,
        'held',
        'worker clocks',
      ],
      rows: r.libs.map((l) => {
        const c = cont(l, main);
        return [
          l.id,
          ...holds.map((h) => big(cont(l, h)?.grantsPerSec)),
          n(c?.commandsPerGrant, 1),
          c?.cpuUsPerGrant == null ? 'n/a' : `${c.cpuUsPerGrant.toFixed(0)} us`,
          us(c?.clientCpuUsPerGrant == null ? null : c.clientCpuUsPerGrant / 1000),
          c ? `${c.overtook} (${pct(c.overtakingShare)})` : 'n/a',
          c?.fifoViolations == null ? '-' : String(c.fifoViolations),
          c?.maxWaitMs == null ? 'n/a' : `${ms1(c.maxWaitMs)} ms`,
          n(c?.jain, 3),
          big(l.think?.grantsPerSec),
          pct(l.think?.heldShare),
          c?.clock == null ? 'n/a' : `±${us(c.clock.uncertaintyMs)}`,
        ];
      }),
    },
    ran('waiters') && {
      title: 'W waiters on a held lock: Redis commands per second while they wait, Redis memory per waiter',
      headers: [
        'library',
        ...waiters.map((w) => `cmds/s W=${w.toLocaleString('en-US')}`),
        `bytes / waiter (W=${Math.max(...waiters).toLocaleString('en-US')})`,
        'window from',
      ],
      rows: r.libs.map((l) => [
        l.id,
        ...waiters.map((w) => waitCell(l.waiters.find((x) => x.waiters === w))),
        bytes(l.waiters.find((x) => x.waiters === Math.max(...waiters))?.bytesPerWaiter),
        windowFrom(l.waiters),
      ]),
    },
  ];
  const cost = costTable(r);
  const ten = tenantsTable(r);
  return [...base.filter((t): t is Table => t !== false), ...kindTables(r), ...(cost ? [cost] : []), ...(ten ? [ten] : []), ...quorumTables(r)];
}

export function renderTerminal(ts: Table[]): string {
  const out: string[] = [];
  for (const t of ts) {
    const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    out.push('', t.title, line(t.headers), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line));
    if (t.note) out.push(t.note);
  }
  return out.join('\n');
}

export function renderMarkdown(ts: Table[]): string {
  const out: string[] = [];
  for (const t of ts) {
    out.push(`**${t.title}**`, '', `| ${t.headers.join(' | ')} |`, `| ${t.headers.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
    for (const r of t.rows) out.push(`| ${r.join(' | ')} |`);
    out.push('');
    if (t.note) out.push(t.note, '');
  }
  return out.join('\n');
}
