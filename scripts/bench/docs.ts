/** docs/bench.md: the README section (command, machine, tables, chart, targets). */
import { COST_PEER } from './contention-cost.js';
import { isFairlock, type BenchResults, type LibResult } from './results.js';
import { renderMarkdown, tables } from './tables.js';

const f1 = (x: number | null | undefined, d = 1) => (x == null ? 'n/a' : x.toFixed(d));

/** A few sentences on what this run shows, with its own figures. */
function summary(r: BenchResults): string {
  const f = r.libs.find(isFairlock);
  if (!f) return '';
  const peers = r.libs.filter((l) => !isFairlock(l));
  if (!peers.length) return byClient(r);
  const fh = hot(f);
  const worstJain = Math.min(...peers.map((l) => hot(l)?.jain ?? 1));
  const wMax = Math.max(...f.waiters.map((w) => w.waiters));
  const at = (l: LibResult) => l.waiters.find((w) => w.waiters === wMax)?.commandsPerSec ?? null;
  const pollers = peers.filter((l) => (at(l) ?? 0) > 0);
  const longest = Math.max(...peers.map((l) => hot(l)?.maxWaitMs ?? 0));
  const fifo =
    fh?.fifoViolations === 0
      ? 'no grant passed a waiter that was already queued'
      : `${fh?.fifoViolations ?? 'n/a'} grants passed a waiter that was already queued`;
  const rh = f.relay?.handoff.p50 && f.relay.ping.p50 ? f.relay.handoff.p50 / f.relay.ping.p50 : null;
  return `In short, on ${f.client}: fairlock grants in queue order (Jain ${f1(fh?.jain, 3)} over ${r.meta.procs * r.meta.contenders} contenders,
${fifo}) while the peers let the contender that just released take the lock again
(Jain down to ${f1(worstJain, 2)}, waits up to ${f1(longest / 1000, 1)} s). A release hands the lock on
in about one round trip (${f1(rh, 2)}x PING through the relay), and waiting costs Redis nothing per waiter:
${f1(at(f), 0)} commands/s with ${wMax.toLocaleString('en-US')} waiters (heartbeats), where the polling peers
${pollers.length ? `reach ${pollers.map((l) => `${Math.round(at(l)!).toLocaleString('en-US')} (${l.id})`).join(', ')}` : 'poll'}.
The price is Redis work per grant: two engine calls (${f1(fh?.commandsPerGrant)} commands counted, ${f1(fh?.cpuUsPerGrant, 0)} us of Redis CPU)
against a SET and a small delete script for the simplest peers, and, with no hold time, fewer grants/s than
peers whose releasing process simply grabs the lock again.${vsPeer(r, f)}
${byClient(r)}`;
}

/** fairlock's Redis CPU and commands per acquisition as multiples of redis-semaphore's, this run. */
function vsPeer(r: BenchResults, f: LibResult): string {
  const rows = (r.cost ?? []).filter((c) => c.lib === f.id && c.cpuVsPeer != null);
  if (!rows.length) return '';
  const one = (c: (typeof rows)[number]) => `${c.kind === 'lock' ? 'the lock' : `semaphore(${c.permits ?? '?'})`} ${f1(c.cpuVsPeer, 2)}x its Redis CPU and ${f1(c.commandsVsPeer, 2)}x its commands`;
  const c0 = rows[0]!;
  return `\nPer acquisition beside ${COST_PEER} (${c0.procs}x${c0.contenders}, hold ${c0.holdMs} ms, same run): ${rows.map(one).join('; ')}.`;
}

const hot = (l: LibResult) => l.contention.find((c) => c.holdMs === 1) ?? l.contention[0];

/** What the user's client adds, if fairlock ran on more than one. */
function byClient(r: BenchResults): string {
  const rows = r.libs.filter(isFairlock);
  if (rows.length < 2) return '';
  const x = (a: number | null | undefined, b: number | null | undefined) => (a != null && b ? `${(a / b).toFixed(2)}x` : 'n/a');
  const one = (l: LibResult) =>
    `- ${l.client}: ${x(l.loopback?.acquireRelease.p50, l.loopback?.ping.p50)} / ${x(l.loopback?.handoff.p50, l.loopback?.ping.p50)}, ` +
    `${f1(hot(l)?.grantsPerSec, 0)} grants/s, ${f1(hot(l)?.clientCpuUsPerGrant, 0)} us`;
  return `\nBy client: loopback acquire+release / hand-off as multiples of that client's own PING p50, then grants/s
and the workers' CPU per grant on one hot lock (hold 1 ms):

${rows.map(one).join('\n')}
`;
}

export function markdown(r: BenchResults): string {
  const m = r.meta;
  const targets = r.targets
    .map((t) => `| ${t.what} | ${t.goal} | ${t.value} | ${t.met === null ? 'n/a' : t.met ? 'met' : '**not met**'} |`)
    .join('\n');
  return `## Benchmarks

\`\`\`sh
${m.command}
\`\`\`

Measured on ${m.cpu} (${m.cores} cores, shared and noisy), ${m.os}, Node ${m.node}, Redis ${m.redis} on
loopback, ${m.date.slice(0, 16).replace('T', ' ')} UTC; the whole run took ${Math.round(m.elapsedSec)} s. The bench
starts its own \`redis-server\` on a free port (or uses \`REDIS_URL\`), runs every library behind the same
small adapter (\`scripts/bench/adapters/\`), fairlock once per Redis client (\`--clients\`), and writes
the raw figures to \`bench-results/latest.json\` (this run: [docs/bench.json](docs/bench.json)).

![hand-off latency and Redis commands per grant](docs/bench.svg)

${summary(r)}

${renderMarkdown(tables(r))}
How to read it:

- **Clients**: fairlock has one row per Redis client it ran on, \`fairlock (node-redis 4)\`, \`fairlock (ioredis 5)\`, …
  (node-redis 6 RESP3 is \`createClient({ RESP: 3 })\`). Each row's PING is sent on that row's own client,
  so its ratios are to its own client's round trip. The peers run on the client they are used with
  (\`client\` in the JSON). The targets below are checked on the first fairlock row.
- **Latency** runs in one process with one clock. *Hand-off* is the time from the holder's
  \`release()\` call to the waiter's \`acquire()\` resolving (the waiter had been waiting a few ms).
  Ratios are to the PING p50 of the library's own client, measured interleaved with the lock calls.
  On loopback a PING costs tens of microseconds, so these ratios mostly measure CPU (Lua, parsing,
  JS); through the relay, which delays every chunk ${m.relayDelayMs} ms each way, round trips decide:
  one round trip is ~1x PING. *Round trips / grant* counts the chunks clients send through the relay
  per uncontended acquire+release. Each hand-off loop is bounded in time (1 s), so a library that
  polls every 3 s shows none; \`(n=…)\` marks figures from fewer than 10 hand-offs.
- **Redis commands and CPU per grant** come from \`INFO commandstats\` and \`INFO cpu\` deltas over the
  contention run; commands run inside Lua scripts count too, so a script is not free. *Client CPU / grant*
  is the worker processes' own CPU (\`process.cpuUsage()\`) over the run per grant: the lock library, its
  Redis client and the bench's loop, which is the same for every row.
- **Clocks**: the contenders live in ${m.procs} worker processes, and two processes' clocks are never
  compared raw (a fresh Node process's clock can be several ms off). Each worker's offset is measured
  against the parent by IPC ping-pong (best of 20 round trips, right after it starts and before and
  after every run); its stamps are converted with it, and *worker clocks* gives the run's largest
  offset uncertainty (\`clock\` in the JSON, with each worker's drift). Waits and holds come from one
  contender's own two stamps; only the run's window edges use the offsets.
- **Overtaking**: grants that went to a contender while another had called \`acquire()\` more than
  2 ms earlier and was still waiting. "Earlier" is surely so: between two processes it must hold by
  more than both offsets' uncertainty too. "Still waiting" is decided by fencing tokens where the
  library has them (fairlock: strictly increasing in grant order, so no clock), else likewise. The clock
  is read just before \`acquire()\`, so a process that the OS deschedules between that read and sending
  its request (${m.procs} busy processes and Redis share ${m.cores} cores) shows up here too. **FIFO breaks**
  checks fairlock's actual promise with no slack: a grant to B while some A, whose \`onQueued\` had
  fired before B called \`acquire()\` (beyond the clock uncertainty if in another process), had a
  later token or was still waiting at the end (peers have no such callback). **Jain's index** over
  grants per contender: 1.0 is perfectly even.
- **Think**: every contender holds ${m.thinkHoldMs} ms, then pauses 10 ms before asking again; *held* is the share
  of the run during which someone held the lock (the rest is hand-off gaps and polling sleep).
- **Fair semaphore**: ${m.semaphore ? `${m.semaphore.contenders} contenders (spread over the ${m.procs} processes) share ${m.semaphore.permits} permits, each holding ${m.semaphore.holdMs} ms` : 'contenders share a few permits'}
  then asking again; rows for the libraries that have a semaphore (redis-semaphore's \`Semaphore\`, which
  retries every 10 ms). *Permits in use* is the sum of the hold intervals over the run's length (the
  limit at best). *Over-limit holds* checks mutual exclusion without clocks: every holder \`INCRBY\`s a
  key right after its grant and \`DECRBY\`s it right before its release, and counts a reply over the
  limit; those two commands are left out of the per-grant counts (their round trips are in the hold).
  Overtaking, FIFO breaks and Jain as above.
- **Read-write**: ${m.rw ? `${m.rw.contenders} contenders, each asking for a write with probability ${m.rw.writeShare} (a seeded draw) and a read otherwise, holding ${m.rw.holdMs} ms` : 'contenders asking for reads and a few writes'};
  fairlock only (no peer has a read-write lock). A writer waits for what was ahead of it, never for
  readers that came later: *queued ahead* gives, for the writer that waited longest, its queue position
  minus one when it queued and how many of those were reads. Which requests those were is decided from
  fencing tokens, not clocks: tokens rise in grant order, which FIFO makes queue order, so the requests
  queued ahead of the writer are exactly the queued ones with tokens below the writer's. *Violations*: the same INCRBY check, a write counting for all.
- **Waiters**: W acquires waiting on a lock that stays held, spread over ${m.procs} processes; commands per
  second over a ${m.waitWindowMs / 1000} s window while they wait, and Redis memory per waiter (\`used_memory\` delta / W).
  The window is the span between two \`INFO\`s, timed by Redis's own clock, and counts waiting, not
  enqueuing: for fairlock it opens once every waiter's \`onQueued\` has fired (*all queued*; the wait for
  that is capped at ${(m.waitQueueCapMs ?? 0) / 1000} s, and a cell then says how many were queued), for
  the peers, which have no queue to report, after a fixed settle delay (*settle delay*, up to 0.8 s);
  *window from* gives the longest time that took. Either way it opens 0.5 s after that point: fairlock's
  1 s heartbeats are in phase with it, and a window opened right then would end right on a beat.
  fairlock's figure is its heartbeats: one script per process and lock per second, whatever W.
  The 3 s poller's waiters all poll in step, so a 2 s window may catch one round of polls or none.
  At 10,000 waiters the polling peers are held back by their own processes' CPU (${m.cores} cores for
  everything), so their rates there are lower bounds of what they would ask of a bigger machine's Redis.
- **Tenants** (fair share, DESIGN §7): ${m.tenants ? `a semaphore of ${m.tenants.permits}, every request holding ${m.tenants.holdMs} ms; one tenant sends ${m.tenants.flood.toLocaleString('en-US')} requests at once, ${m.tenants.quiet} quiet tenants send one each every ${m.tenants.intervalMs} ms for ${m.tenants.durationMs / 1000} s` : 'one tenant floods a semaphore, quiet tenants ask now and then'}
  (the flood in one worker process, the quiet tenants in another, one client each). fairlock's first row runs twice, each
  request naming its tenant as its group and with no group (plain FIFO), beside redis-semaphore's polling \`Semaphore\`.
  A quiet tenant's waits come from its own process's two stamps; *flood grants while queued* counts, by fencing
  tokens, the flood's grants during a quiet request's queued span (groups allow one per other active group).
  *Permits busy*: each worker's holds clipped to the quiet window, over permits x window. Redis CPU per
  acquisition: \`used_cpu\` and the script calls' own \`commandstats\` time, from the start until every request ended,
  over every grant. The target's unit, a hand-off, is measured in the same run (loopback, one process).
- Peers run with their defaults: redlock's 10 retries x 200 ms (+ jitter) and redlock-universal's
  3 x 100 ms are re-tried until acquired; redis-semaphore polls every 10 ms; simple-redis-mutex wakes
  every waiter with one PUBLISH per release; the classic \`SET NX PX\` loop polls every 50 ms or 3 s.

fairlock's targets, this run (${r.libs.find(isFairlock)?.id ?? 'fairlock'}):

| target | goal | this run | |
| --- | --- | --- | --- |
${targets}
`;
}

/** README.md's copy of this section sits between these two lines; `npm run bench` with docs rewrites what is between. */
export const README_START = '<!-- bench-start: `npm run bench` (full, or --docs) rewrites everything up to bench-end from its run, as docs/bench.md -->';
export const README_END = '<!-- bench-end -->';

/** README with its bench section replaced by this run's (the section's heading stays README's own); null without the markers. */
export function readmeWithBench(readme: string, r: BenchResults): string | null {
  const i = readme.indexOf(README_START);
  const j = readme.indexOf(README_END);
  if (i < 0 || j < i) return null;
  const body = markdown(r).replace(/^## Benchmarks\n+/, '').trimEnd();
  return `${readme.slice(0, i + README_START.length)}\n\n${body}\n\n${readme.slice(j)}`;
}
