/**
 * `npm run soak -- [--duration 1h] [--sample-every 10s] [--warmup 12m] [--names 2000] [--residents 2]
 *                  [--churners 3] [--contenders 3] [--churn-every 15s] [--fault-every 20s] [--out docs]`
 * A long run of every primitive over thousands of names, with churning worker processes and faults,
 * against a redis-server of its own (or REDIS_URL, loopback only); see soak-lib.ts. Writes soak.svg,
 * soak.json and soak.md to --out and exits 1 when a series drifts upward after warm-up, a key has no
 * expiry, or keys are left after the last close (checks in soak-check.ts).
 */
import { Command } from 'commander';
import { duration, integerAtLeast, listOf } from './cli-args.js';
import { SERIES, SOAK_DEFAULTS, runSoak, sampleEveryFor, warmupFor, type SeriesName } from './soak-lib.js';
import { writeSoak } from './soak-report.js';

const count = integerAtLeast(0);
const advisory = listOf<SeriesName>('--advisory', Object.keys(SERIES) as SeriesName[]);
// Ctrl-C: exit through process.exit, so the 'exit' hooks kill the workers and redis-server by PID.
process.once('SIGINT', () => process.exit(130));
const d = SOAK_DEFAULTS;
const o = new Command()
  .name('soak')
  .description('fairlock over a long run: no series drifts upward, every key expires, nothing is left behind')
  .option('-d, --duration <time>', 'how long the traffic runs (e.g. 2m, 1h)', duration, d.durationMs)
  .option('--sample-every <time>', `sampling period (default: ${d.sampleEveryMs / 1000} s, or duration/24 for a short run)`, duration)
  .option('--warmup <time>', 'samples before this are not checked for drift (default: 20% of the run, at least 30 s)', duration)
  .option('--names <n>', 'distinct names', count, d.names)
  .option('--residents <n>', 'workers that live the whole run (their heap and handles are checked: at least 1)', integerAtLeast(1), d.residents)
  .option('--churners <n>', 'workers stopped and replaced over time (and SIGKILLed by faults)', count, d.churners)
  .option('--contenders <n>', 'acquire loops per worker', count, d.contenders)
  .option('--churn-every <time>', 'mean time between a churner stopped and replaced', duration, d.churnEveryMs)
  .option('--fault-every <time>', 'mean time between faults (SIGKILL, SIGSTOP/SIGCONT, CLIENT KILL)', duration, d.faultEveryMs)
  .option('--out <dir>', 'where soak.svg, soak.json and soak.md go', 'docs')
  .option('--advisory <series>', `series fitted and reported but not judged, comma-separated (of ${Object.keys(SERIES).join(', ')}): the load-bound ones when the run shares the machine`, advisory, [])
  .parse()
  .opts();
const durationMs: number = o.duration;
const result = await runSoak({
  durationMs,
  sampleEveryMs: o.sampleEvery ?? sampleEveryFor(durationMs),
  warmupMs: o.warmup ?? warmupFor(durationMs),
  names: o.names,
  residents: o.residents,
  churners: o.churners,
  contenders: o.contenders,
  churnEveryMs: o.churnEvery,
  faultEveryMs: o.faultEvery,
  holdMaxMs: d.holdMaxMs,
  longShare: d.longShare,
  longHoldMs: d.longHoldMs,
  pauseMaxMs: d.pauseMaxMs,
  handoffEveryMs: d.handoffEveryMs,
  leaseMs: d.leaseMs,
  livenessMs: d.livenessMs,
  heartbeatMs: d.heartbeatMs,
  advisory: o.advisory,
  log: (line) => console.error(line),
});
writeSoak(o.out, result);
for (const v of result.drift) console.log(`${v.pass ? 'ok  ' : o.advisory.includes(v.series) ? 'note' : 'FAIL'} ${v.series}: ${v.why}${o.advisory.includes(v.series) ? ' (advisory)' : ''}`);
if (result.noExpiry.length > 0) console.log(`FAIL keys without expiry: ${result.noExpiry.slice(0, 10).join(', ')}`);
if (result.leftover.length > 0) console.log(`FAIL keys left after the last close: ${result.leftover.length} (${result.leftover.slice(0, 10).join(', ')})`);
const f = result.faults;
console.log(`soak: ${result.pass ? 'PASS' : 'FAIL'} (${result.samples.length} samples, ${f.kills} kills, ${f.pauses} pauses, ${f.disconnects} disconnects, ${f.churns} churns, ${result.swept} names swept; written to ${o.out}/soak.{svg,json,md})`);
process.exit(result.pass ? 0 : 1);
