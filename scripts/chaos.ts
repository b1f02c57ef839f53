/**
 * `npm run chaos -- [--duration 60s] [--processes 6] [--locks 3] [--contenders 2] [--fault-every 400] [--log-file F]`
 * Runs the chaos driver of chaos-lib.ts against a redis-server of its own and prints a one-line
 * summary; exits 1 on any violation. The evidence is an event log kept in Redis (see chaos-lib.ts);
 * it is written to --log-file, or to a temporary file when a violation is found.
 */
import { Command } from 'commander';
import ms from 'ms';
import { CHAOS_DEFAULTS, runChaos, summary, totalViolations } from './chaos-lib.js';

const duration = (v: string): number => {
  const n = /^\d+$/.test(v) ? Number(v) : ms(v as ms.StringValue);
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new Error(`not a duration: ${v}`);
  return n;
};
const count = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive integer: ${v}`);
  return n;
};

const program = new Command()
  .name('chaos')
  .description('fairlock under random kills, pauses and disconnects, checked for safety, liveness and FIFO')
  .option('-d, --duration <time>', 'how long faults are injected (e.g. 60s, 5m)', duration, CHAOS_DEFAULTS.durationMs)
  .option('-p, --processes <n>', 'contending processes', count, CHAOS_DEFAULTS.processes)
  .option('-l, --locks <n>', 'distinct locks', count, CHAOS_DEFAULTS.locks)
  .option('-c, --contenders <n>', 'concurrent acquire loops per process', count, CHAOS_DEFAULTS.contenders)
  .option('-f, --fault-every <ms>', 'mean time between faults', duration, CHAOS_DEFAULTS.faultEveryMs)
  .option('--lease <ms>', 'leaseMs of every process', duration, CHAOS_DEFAULTS.leaseMs)
  .option('--liveness <ms>', 'livenessMs of every process', duration, CHAOS_DEFAULTS.livenessMs)
  .option('--heartbeat <ms>', 'heartbeatMs of every process', duration, CHAOS_DEFAULTS.heartbeatMs)
  .option('--log-file <path>', 'write the event log and the fenced stores here')
  .option('-v, --verbose', 'print every violation found')
  .parse();

const o = program.opts();
const result = await runChaos({
  durationMs: o.duration,
  processes: o.processes,
  locks: o.locks,
  contenders: o.contenders,
  faultEveryMs: o.faultEvery,
  leaseMs: o.lease,
  livenessMs: o.liveness,
  heartbeatMs: o.heartbeat,
  log: (line) => console.error(line),
  logFile: o.logFile,
});
if (o.verbose || totalViolations(result) > 0) for (const d of result.details) console.error(`  ${d}`);
console.log(summary(result));
process.exit(totalViolations(result) > 0 ? 1 : 0);
