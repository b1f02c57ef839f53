/** docs/bench.md: the README section (command, machine, tables, chart, targets). */
import type { BenchResults } from './results.js';
import { renderMarkdown, tables } from './tables.js';

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
small adapter (\`scripts/bench/adapters/\`), and writes the raw figures to \`bench-results/latest.json\`
(this run: [docs/bench.json](docs/bench.json)).

![hand-off latency and Redis commands per grant](docs/bench.svg)

${renderMarkdown(tables(r))}
How to read it:

- **Latency** runs in one process with one clock. *Hand-off* is the time from the holder's
  \`release()\` call to the waiter's \`acquire()\` resolving (the waiter had been waiting a few ms).
  Ratios are to the PING p50 of the library's own client, measured interleaved with the lock calls.
  On loopback a PING costs tens of microseconds, so these ratios mostly measure CPU (Lua, parsing,
  JS); through the relay, which delays every chunk ${m.relayDelayMs} ms each way, round trips decide:
  one round trip is ~1x PING. *Round trips / grant* counts the chunks clients send through the relay
  per uncontended acquire+release. Each hand-off loop is bounded in time (1 s), so a library that
  polls every 3 s shows none; \`(n=…)\` marks figures from fewer than 10 hand-offs.
- **Redis commands and CPU per grant** come from \`INFO commandstats\` and \`INFO cpu\` deltas over the
  contention run; commands run inside Lua scripts count too, so a script is not free.
- **Overtaking**: grants that went to a contender while another had called \`acquire()\` more than
  2 ms earlier and was still waiting; the clock is read just before \`acquire()\`, so a process that the
  OS deschedules between that read and sending its request (${m.procs} busy processes and Redis share ${m.cores} cores) shows
  up here too. **FIFO breaks** checks fairlock's actual promise with no slack: a grant to B while some
  A, whose \`onQueued\` had fired before B called \`acquire()\`, was still waiting (peers have no such
  callback). **Jain's index** over grants per contender: 1.0 is perfectly even.
- **Think**: every contender holds 1 ms, then pauses 10 ms before asking again; *held* is the share
  of the run during which someone held the lock (the rest is hand-off gaps and polling sleep).
- **Waiters**: W acquires waiting on a lock that stays held, spread over ${m.procs} processes; commands per
  second over a ${m.waitWindowMs / 1000} s window while they wait, and Redis memory per waiter (\`used_memory\` delta / W).
  fairlock's figure is its heartbeats: one script per process and lock per second, whatever W.
  The 3 s poller's waiters all poll in step, so a 2 s window may catch one round of polls or none.
- Peers run with their defaults: redlock's 10 retries x 200 ms (+ jitter) and redlock-universal's
  3 x 100 ms are re-tried until acquired; redis-semaphore polls every 10 ms; simple-redis-mutex wakes
  every waiter with one PUBLISH per release; the classic \`SET NX PX\` loop polls every 50 ms or 3 s.

fairlock's targets, this run:

| target | goal | this run | |
| --- | --- | --- | --- |
${targets}
`;
}
