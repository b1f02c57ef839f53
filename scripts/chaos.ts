/**
 * `npm run chaos -- [--kind lock|semaphore|rw] [--permits 3] [--max-weight 2] [--read-ratio 0.8]
 *                   [--groups N] [--per-group N] [--duration 60s] [--processes 6] [--locks 3] [--contenders 2] [--fault-every 400] [--faults kill,pause,disconnect,partition] [--log-file F]
 *                   [--quorum 3|5 [--master-faults kill,stop,restart,partition] [--master-fault-every 2500]
 *                    [--command-timeout 500] [--majority-phase 8s]]
 *                   [--cluster [--durability 1|0] [--cluster-faults kill,failover,migrate,partition,replica] [--cluster-fault-every 1500]]`
 * With --cluster the workers lock through a cluster client on a 3-master + 3-replica Redis Cluster
 * of the run's own, whose servers are faulted one at a time (scripts/chaos-cluster.ts); a table of
 * the faults (count, time to the next grant, lost-and-reported grants) follows the summary.
 * With --quorum N the workers lock through FairLocks.quorum over N redis-servers of the run's own
 * (each behind a TCP proxy), one name unless --locks says otherwise, while masters are also killed
 * (and restarted with their AOF), stopped, restarted empty and cut off, never more than a minority
 * at once; --majority-phase adds a phase with a majority down (acquires must fail with QUORUM_LOST
 * in bound). See chaos-lib.ts.
 * Runs the chaos driver of chaos-lib.ts against a redis-server of its own and prints a one-line
 * summary; exits 1 on any violation. The evidence is an event log kept in Redis (see chaos-lib.ts,
 * and chaos-check.ts for its lines and the checks); it is written to --log-file, or to a temporary
 * file when a violation is found.
 */
import { Command, InvalidArgumentError } from 'commander';
import { duration, integerAtLeast, listOf } from './cli-args.js';
import { CLUSTER_CHAOS_DEFAULTS, CLUSTER_FAULTS, faultTable, runClusterChaos, type ClusterFault } from './chaos-cluster.js';
import { CHAOS_DEFAULTS, MASTER_FAULTS, WORKER_FAULTS, runChaos, summary, totalViolations, type ChaosKind, type ChaosOptions, type MasterFault, type WorkerFault } from './chaos-lib.js';

const ratio = (v: string): number => {
  const n = Number(v.endsWith('%') ? v.slice(0, -1) : v) / (v.endsWith('%') ? 100 : 1);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`not a ratio from 0 to 1 (or 0% to 100%): ${v}`);
  return n;
};
const quorumSize = (v: string): number => {
  const n = Number(v);
  if (n !== 3 && n !== 5) throw new InvalidArgumentError(`--quorum is 3 or 5, not ${v}`);
  return n;
};
const durability = (v: string): 0 | 1 => {
  if (v !== '0' && v !== '1') throw new InvalidArgumentError(`--durability is 1 or 0, not ${v}`);
  return Number(v) as 0 | 1;
};
const count = integerAtLeast(1);
const masterFaults = listOf<MasterFault>('--master-faults', MASTER_FAULTS);
const clusterFaults = listOf<ClusterFault>('--cluster-faults', CLUSTER_FAULTS);
const workerFaults = listOf<WorkerFault>('--faults', WORKER_FAULTS);
const kind = (v: string): ChaosKind => {
  if (v !== 'lock' && v !== 'semaphore' && v !== 'rw') throw new InvalidArgumentError(`--kind is lock, semaphore or rw, not ${v}`);
  return v;
};

const program = new Command()
  .name('chaos')
  .description('fairlock under random kills, pauses, disconnects and partitions, checked for safety, liveness and FIFO')
  .option('-k, --kind <kind>', 'what the processes contend for: lock, semaphore or rw (read-write lock)', kind, CHAOS_DEFAULTS.kind)
  .option('--permits <n>', 'permits of each semaphore (--kind semaphore)', count, CHAOS_DEFAULTS.permits)
  .option('--max-weight <n>', 'semaphore acquires take a random weight from 1 to n (default: permits - 1, at least 1)', count)
  .option('--read-ratio <r>', 'share of read-write lock acquires that are reads, e.g. 0.8 or 80% (--kind rw)', ratio, CHAOS_DEFAULTS.readRatio)
  .option('-g, --groups <n>', 'each acquire names one of n groups at random (lock or semaphore; fair share, DESIGN §7)', count)
  .option('--per-group <n>', "the semaphore's perGroup cap (with --groups)", count)
  .option('-d, --duration <time>', 'how long faults are injected (e.g. 60s, 5m)', duration, CHAOS_DEFAULTS.durationMs)
  .option('--min-faults <n>', 'go on injecting worker faults past --duration (up to three durations) until this many were injected', integerAtLeast(0), CHAOS_DEFAULTS.minFaults)
  .option('-p, --processes <n>', 'contending processes', count, CHAOS_DEFAULTS.processes)
  .option('-l, --locks <n>', 'distinct locks', count, CHAOS_DEFAULTS.locks)
  .option('-c, --contenders <n>', 'concurrent acquire loops per process', count, CHAOS_DEFAULTS.contenders)
  .option('-f, --fault-every <ms>', 'mean time between faults', duration, CHAOS_DEFAULTS.faultEveryMs)
  .option('--faults <list>', `worker faults, comma-separated: ${WORKER_FAULTS.join(',')} or none (a quorum run: kill and pause only)`, workerFaults, [...WORKER_FAULTS])
  .option('--lease <ms>', 'leaseMs of every process', duration, CHAOS_DEFAULTS.leaseMs)
  .option('--liveness <ms>', 'livenessMs of every process', duration, CHAOS_DEFAULTS.livenessMs)
  .option('--heartbeat <ms>', 'heartbeatMs of every process', duration, CHAOS_DEFAULTS.heartbeatMs)
  .option('--seconds <n>', 'how long faults are injected, in seconds (the same as --duration <n>s)', count)
  .option('--log-file <path>', 'write the event log and the fenced stores here')
  .option('-q, --quorum <n>', 'lock through FairLocks.quorum over 3 or 5 masters of its own (kind lock; --locks defaults to 1)', quorumSize)
  .option('--master-faults <list>', `master faults of a quorum run, comma-separated: ${MASTER_FAULTS.join(',')} or none`, masterFaults, [...MASTER_FAULTS])
  .option('--master-fault-every <ms>', 'mean time between master faults (a quorum run)', duration, CHAOS_DEFAULTS.masterFaultEveryMs)
  .option('--command-timeout <ms>', 'commandTimeoutMs of the quorum (a quorum run)', duration, CHAOS_DEFAULTS.commandTimeoutMs)
  .option('--no-restart-guard', 'a quorum run without the restart guard (a restart empty may then give two holders: DESIGN §8 rule 9)')
  .option('--majority-phase <time>', 'after the faults, a majority of masters down for this long (a quorum run)', duration)
  .option('--cluster', 'lock through a cluster client on a 3-master + 3-replica Redis Cluster of its own, faulted one fault at a time')
  .option('--durability <n>', 'a cluster run: durability.replicas of every acquire, 1 or 0', durability, CLUSTER_CHAOS_DEFAULTS.durability)
  .option('--cluster-faults <list>', `a cluster run's faults, comma-separated: ${CLUSTER_FAULTS.join(',')} or none`, clusterFaults, [...CLUSTER_FAULTS])
  .option('--cluster-fault-every <ms>', 'a cluster run: mean pause between one fault settling and the next', duration, CLUSTER_CHAOS_DEFAULTS.faultEveryMs)
  .option('--cluster-client <family>', 'a cluster run: the workers\' cluster client, redis4 (node-redis 4) or redis6', (v: string) => {
    if (v !== 'redis4' && v !== 'redis6') throw new InvalidArgumentError(`--cluster-client is redis4 or redis6, not ${v}`);
    return v;
  }, CLUSTER_CHAOS_DEFAULTS.client)
  .option('-v, --verbose', 'print every violation found')
  .parse();

const o = program.opts();
const maxWeight: number = o.maxWeight ?? Math.max(1, o.permits - 1);
if (o.quorum && o.kind !== 'lock') program.error('--quorum takes --kind lock only (the quorum offers the exclusive lock)');
if (o.kind === 'semaphore' && maxWeight > o.permits) program.error(`--max-weight (${maxWeight}) is more than --permits (${o.permits})`);
if (o.groups !== undefined && o.kind === 'rw') program.error('--groups takes a lock or a semaphore: a read-write lock takes no groups');
if (o.perGroup !== undefined && (o.kind !== 'semaphore' || o.groups === undefined)) program.error('--per-group needs --kind semaphore and --groups');
if (o.perGroup !== undefined && (o.perGroup > o.permits || o.perGroup < maxWeight)) program.error(`--per-group (${o.perGroup}) must be from --max-weight (${maxWeight}) to --permits (${o.permits})`);
if (o.cluster && o.quorum) program.error('--cluster and --quorum are two different runs');
const options: Partial<ChaosOptions> = {
  kind: o.kind,
  permits: o.permits,
  maxWeight,
  readRatio: o.readRatio,
  groups: o.groups ?? 0,
  perGroup: o.perGroup,
  durationMs: o.seconds !== undefined ? o.seconds * 1000 : o.duration,
  minFaults: o.minFaults,
  processes: o.processes,
  locks: o.quorum && o.locks === CHAOS_DEFAULTS.locks && program.getOptionValueSource('locks') === 'default' ? 1 : o.locks,
  contenders: o.contenders,
  faultEveryMs: o.faultEvery,
  faults: o.faults,
  leaseMs: o.lease,
  livenessMs: o.liveness,
  heartbeatMs: o.heartbeat,
  log: (line) => console.error(line),
  logFile: o.logFile,
  quorum: o.quorum ?? 0,
  masterFaults: o.masterFaults,
  masterFaultEveryMs: o.masterFaultEvery,
  commandTimeoutMs: o.commandTimeout,
  majorityPhaseMs: o.majorityPhase ?? 0,
  restartGuard: o.restartGuard,
};
const clusterRun = o.cluster ? await runClusterChaos(options, { durability: o.durability, faults: o.clusterFaults, faultEveryMs: o.clusterFaultEvery, client: o.clusterClient }) : undefined;
const result = clusterRun?.result ?? (await runChaos(options));
if (o.verbose || totalViolations(result) > 0) for (const d of result.details) console.error(`  ${d}`);
console.log(summary(result));
if (clusterRun) for (const row of faultTable(clusterRun)) console.log(`  ${row}`);
process.exit(totalViolations(result) > 0 ? 1 : 0);
