/**
 * Chaos for fairlock, shared by `npm run chaos` (scripts/chaos.ts) and test/faults/chaos.test.ts.
 *
 * N processes (chaos-worker.ts) contend for a few names, all of one kind (locks, semaphores of
 * `permits` taken with random weights, or read-write locks taken for reading or writing at random),
 * on a Redis of our own, while a driver kills (and respawns), pauses/resumes (SIGSTOP/SIGCONT),
 * disconnects (CLIENT KILL of their lock connections) and partitions them at random, for a bounded
 * time (`faults` chooses among these). Then the faults stop, every process is told to finish, and
 * the checker (chaos-check.ts) goes over the evidence.
 *
 * Partitions: each worker's lock connection goes through a TCP proxy of the driver's
 * (test/helpers/proxy.ts) and its wake-up subscriber through a second one. The driver follows the
 * event log (Roles below) to know who holds (an `enter` without its `leave`) and who waits (a
 * `queued` without its `enter` or `acqerr`), and cuts a holder's or a waiter's process (both
 * proxies) or a waiter's subscriber alone, silently (bytes held both ways, delivered on heal) or by
 * reset (connections dropped, new ones refused), then heals it after 50 ms to twice the lease. A
 * holder is told (IPC `stretch`) to stay in its section through the cut, or until its lease's
 * signal aborts, just before the cut: a cut longer than the lease must then end in held=0, never in
 * an overlap.
 *
 * The evidence never compares the clocks of two processes (a fresh process's wall clock can be
 * ms off, which made overlaps appear that never happened). Order comes only from facts that one
 * party orders:
 *   - the event log: one Redis list (`<prefix>:chaos:log`) to which every worker appends each step
 *     and the driver appends the run's kind (first) and each fault, on connections the driver never
 *     kills. One Redis server executes appends one at a time, so positions in the list are a
 *     real-time order. Its lines, and the violations found in it, are listed in chaos-check.ts.
 *   - the fenced store (test/helpers/fenced.ts for a lock; a read/write-aware one in
 *     chaos-worker.ts for a read-write lock; none for a semaphore): a Redis-side check-and-append
 *     whose accepted-writes log is itself in Redis order; each holder writes `<op> b` first and
 *     `<op> e` last in its section.
 *   - fencing tokens: Redis grants them in increasing order per name (tickets, in queue order).
 * Durations (the fault schedule, the settle delay, bounds on waiting) use the driver's own clock.
 * Every loop is bounded in count and time; every process started here is stopped by PID.
 *
 * A quorum run (`quorum: 3 | 5`; the CLI's default is then one name) takes its locks through `FairLocks.quorum` over N
 * independent redis-servers of its own (loopback, free ports, AOF `appendfsync always` so that a
 * killed master can come back with its data), each reached by the workers through a TCP proxy of
 * the driver's (test/helpers/proxy.ts). The server above keeps only the event log and the fenced
 * store and is never faulted. Besides the worker kills and pauses (no disconnects: the lock
 * connections are the masters'), a second loop faults masters (`masterFaults`):
 *   kill       SIGKILL, down for a while, restarted on its port with its AOF (every write kept);
 *   stop       SIGSTOP, then SIGCONT;
 *   restart    SIGKILL, its AOF removed, restarted on its port empty (DESIGN §8 rule 9: safe only
 *              with the engine's restart guard in the client);
 *   partition  its proxy cut, then healed: silent (bytes held both ways, delivered on heal) or
 *              reset (connections dropped, new ones refused until healed).
 * Never more than a minority of masters is down at once (a restarted one counts as down for one
 * lease after it answers: the guard's window). Optionally (`majorityPhaseMs`), after the faults, a
 * majority is stopped or cut for that long: acquires must then fail with QUORUM_LOST within a
 * bound and nothing may hang (chaos-check.ts, "quorum").
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../test/helpers/redis-client.js';
import { fencedLog } from '../test/helpers/fenced.js';
import { rmSync, mkdtempSync } from 'node:fs';
import { startProxy, type Proxy } from '../test/helpers/proxy.js';
import { connect, newPrefix, startRedis, startRedisProcess, type RedisServer } from '../test/helpers/redis.js';
import { QUORUM_DEFAULTS } from '../src/index.js';
import { check, totalViolations, type ChaosKind, type ChaosResult } from './chaos-check.js';
import type { WorkerInit, WorkerMessage } from './chaos-worker.js';

export { check, summary, totalViolations, type ChaosKind, type ChaosResult } from './chaos-check.js';

const WORKER = fileURLToPath(new URL('./chaos-worker.ts', import.meta.url));

export interface ChaosOptions {
  /** What the workers contend for: locks, semaphores or read-write locks. */
  kind: ChaosKind;
  /** Permits of each semaphore (kind 'semaphore'). */
  permits: number;
  /** Each semaphore acquire takes a random weight from 1 to this (at most `permits`; default permits - 1, at least 1). */
  maxWeight: number;
  /** Share of the read-write lock acquires that are reads (kind 'rw'), from 0 to 1. */
  readRatio: number;
  /** Each acquire names one of this many groups at random (lock or semaphore); 0: no group. */
  groups: number;
  /** The semaphore's perGroup cap (kind 'semaphore' with groups); undefined: none. */
  perGroup?: number;
  durationMs: number;
  /**
   * Worker faults to inject at least: the fault loop goes on past durationMs until it has (up to
   * three times durationMs in all). On a loaded machine a short run can draw mostly faults it must
   * skip (a pause while another is paused, a cut with nobody holding): a test that asserts faults
   * were injected sets this rather than trusting the clock. 0: durationMs alone decides.
   */
  minFaults: number;
  processes: number;
  locks: number;
  contenders: number;
  /** Mean time between two faults. */
  faultEveryMs: number;
  /** Which worker faults to inject (a quorum run: kill and pause only). */
  faults: WorkerFault[];
  leaseMs: number;
  livenessMs: number;
  heartbeatMs: number;
  holdMaxMs: number;
  /** A live waiter not granted within this is a liveness violation. */
  acquireTimeoutMs: number;
  log?: (line: string) => void;
  /** Write the event log here (it is also written to a temporary file when a violation is found). */
  logFile?: string;
  /** 0: one Redis (the single-node engine); 3 or 5: a quorum over that many masters (kind 'lock'). */
  quorum: number;
  /** A quorum run: which master faults to inject. */
  masterFaults: MasterFault[];
  /** A quorum run: mean time between two master faults. */
  masterFaultEveryMs: number;
  /** A quorum run: commandTimeoutMs of every worker's quorum. */
  commandTimeoutMs: number;
  /** A quorum run: after the faults, a majority of masters down for this long (0: no such phase). */
  majorityPhaseMs: number;
  /** A quorum run: the quorum's restartGuard (false shows what a restart empty does without it). */
  restartGuard: boolean;
  /** Servers of another driver's (chaos-cluster.ts): the workers lock there, that driver faults them. */
  external?: ExternalServers;
}

/**
 * What a driver of its own servers (scripts/chaos-cluster.ts: a Redis Cluster) adds to a run: the
 * workers lock through them (the event log and the fenced store stay on the run's own server,
 * never faulted), the driver appends its header lines after the kind line, and its fault loop runs
 * beside the worker faults (kills and pauses only: the lock connections are not on the log server)
 * until `stopAt`, pushing what outlasts it to `pending`. `append` resolves to the list's length
 * after the line (so the line's position is that minus 1).
 */
export interface ExternalServers {
  describe: string;
  header: string[];
  worker: Pick<WorkerInit, 'cluster' | 'durability' | 'clusterClient'>;
  faults(ctx: { append: (line: string) => Promise<number>; admin: RedisClient; logKey: string; stopAt: number; pending: Promise<unknown>[] }): Promise<Record<string, number>>;
}

export type WorkerFault = 'kill' | 'pause' | 'disconnect' | 'partition';
export const WORKER_FAULTS: readonly WorkerFault[] = ['kill', 'pause', 'disconnect', 'partition'];
/** How long before a holder's cut it is told to hold on (IPC stretch), so that the cut finds it holding. */
const STRETCH_LEAD_MS = 50;
/** How often each worker fault is drawn, relative to the others that are on. */
const FAULT_WEIGHTS: Record<WorkerFault, number> = { kill: 0.25, pause: 0.3, disconnect: 0.2, partition: 0.25 };

export type MasterFault = 'kill' | 'stop' | 'restart' | 'partition';
export const MASTER_FAULTS: readonly MasterFault[] = ['kill', 'stop', 'restart', 'partition'];

export const CHAOS_DEFAULTS: ChaosOptions = {
  kind: 'lock',
  permits: 3,
  maxWeight: 2,
  readRatio: 0.8,
  groups: 0,
  durationMs: 60_000,
  minFaults: 0,
  processes: 6,
  locks: 3,
  contenders: 2,
  faultEveryMs: 400,
  faults: [...WORKER_FAULTS],
  leaseMs: 800,
  livenessMs: 1000,
  heartbeatMs: 200,
  holdMaxMs: 20,
  acquireTimeoutMs: 30_000,
  quorum: 0,
  masterFaults: [...MASTER_FAULTS],
  masterFaultEveryMs: 2_500,
  commandTimeoutMs: 500,
  majorityPhaseMs: 0,
  restartGuard: true,
};

/**
 * How long an acquire called while a majority is down may take to fail with QUORUM_LOST: each of
 * the (maxRestarts + 1) climbs may wait one command timeout for a master that stopped answering
 * and pauses one heartbeat before the next; plus one lease and one liveness period of slack for a
 * wait on a live master behind a holder that is losing its own lease; plus one heartbeat per
 * concurrent acquire, for the queue on the live masters: every other contender's climb may pass
 * through them first (a 3-minute run over 5 masters saw 5.4 s with 12 contenders, beyond the
 * first three terms' 4.6 s). An approximation, not a proof: what it catches is a hang.
 */
export const quorumLostBoundMs = (o: Pick<ChaosOptions, 'commandTimeoutMs' | 'heartbeatMs' | 'leaseMs' | 'livenessMs' | 'processes' | 'contenders'>): number =>
  (QUORUM_DEFAULTS.maxRestarts + 1) * (o.commandTimeoutMs + o.heartbeatMs) + o.leaseMs + o.livenessMs + o.processes * o.contenders * o.heartbeatMs;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Proc {
  killed = false;
  paused = false;
  /** Cut off by a partition (until healed). */
  cut = false;
  /** A run with partitions: the proxies of its lock connection and of its subscriber. */
  lockProxy?: Proxy;
  subProxy?: Proxy;
  ready = false;
  done = false;
  private readyResolve!: () => void;
  readonly readyPromise = new Promise<void>((r) => (this.readyResolve = r));
  private doneResolve!: () => void;
  readonly finished = new Promise<void>((r) => (this.doneResolve = r));

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: WorkerMessage) => {
      if (m.ev === 'ready') {
        this.ready = true;
        this.readyResolve();
      }
      if (m.ev === 'done') {
        this.done = true;
        this.doneResolve();
      }
    });
    proc.on('exit', () => {
      this.readyResolve();
      this.doneResolve();
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) process.kill(this.pid, sig);
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    process.kill(this.pid, 'SIGKILL');
    await exited;
  }
}

const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];

/** One of `kinds`, drawn by FAULT_WEIGHTS. */
function pickWeighted(kinds: readonly WorkerFault[]): WorkerFault | undefined {
  let r = Math.random() * kinds.reduce((sum, k) => sum + FAULT_WEIGHTS[k], 0);
  for (const k of kinds) if ((r -= FAULT_WEIGHTS[k]) < 0) return k;
  return kinds[kinds.length - 1];
}

/** Cuts a proxy: silent (bytes held both ways) or reset (connections dropped, new ones refused for `ms`). */
function cut(proxy: Proxy, silent: boolean, ms: number): void {
  if (silent) proxy.hold();
  else {
    proxy.refuse(ms);
    for (const c of [...proxy.conns]) (c.down.destroy(), c.up.destroy());
  }
}

function heal(proxy: Proxy, silent: boolean): void {
  if (silent) proxy.heal();
  else proxy.refuse(0);
}

/**
 * Who holds and who waits, by process, as the event log says so far (read on demand, from where the
 * last read stopped): an `enter` without its `leave` holds; a `queued` without its `enter` or `acqerr` waits.
 */
class Roles {
  private read = 0;
  private readonly holding = new Map<number, Set<string>>();
  private readonly waiting = new Map<number, Set<string>>();
  constructor(
    private readonly admin: RedisClient,
    private readonly logKey: string,
  ) {}

  async refresh(): Promise<void> {
    const lines = await this.admin.lRange(this.logKey, this.read, -1);
    this.read += lines.length;
    const of = (m: Map<number, Set<string>>, pid: number) => m.get(pid) ?? m.set(pid, new Set()).get(pid)!;
    for (const text of lines) {
      const [what, p, op] = text.split(' ');
      const pid = Number(p);
      if (op === undefined) continue;
      if (what === 'queued') of(this.waiting, pid).add(op);
      else if (what === 'enter') (of(this.waiting, pid).delete(op), of(this.holding, pid).add(op));
      else if (what === 'acqerr') of(this.waiting, pid).delete(op);
      else if (what === 'leave') of(this.holding, pid).delete(op);
    }
  }

  holds(pid: number): boolean {
    return (this.holding.get(pid)?.size ?? 0) > 0;
  }

  waits(pid: number): boolean {
    return (this.waiting.get(pid)?.size ?? 0) > 0;
  }
}

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosResult> {
  const o = { ...CHAOS_DEFAULTS, ...partial };
  o.maxWeight = partial.maxWeight ?? Math.max(1, o.permits - 1);
  const log = o.log ?? (() => undefined);
  if (!['lock', 'semaphore', 'rw'].includes(o.kind)) throw new Error(`unknown kind ${String(o.kind)}`);
  if (o.kind === 'semaphore' && !(Number.isInteger(o.maxWeight) && o.maxWeight >= 1 && o.maxWeight <= o.permits)) {
    throw new Error(`maxWeight must be from 1 to permits (${o.permits}), got ${o.maxWeight}`);
  }
  if (!(o.readRatio >= 0 && o.readRatio <= 1)) throw new Error(`readRatio must be from 0 to 1, got ${o.readRatio}`);
  if (!(Number.isInteger(o.groups) && o.groups >= 0)) throw new Error(`groups must be a whole number, got ${o.groups}`);
  if (o.groups > 0 && o.kind === 'rw') throw new Error('a read-write lock takes no groups');
  if (o.perGroup !== undefined && !(o.kind === 'semaphore' && o.groups > 0 && Number.isInteger(o.perGroup) && o.perGroup >= o.maxWeight && o.perGroup <= o.permits)) {
    throw new Error(`perGroup needs a semaphore with groups, and must be from maxWeight (${o.maxWeight}) to permits (${o.permits}), got ${o.perGroup}`);
  }
  const limit = o.kind === 'lock' ? 1 : o.kind === 'semaphore' ? o.permits : 0;
  if (o.quorum !== 0 && !(o.quorum >= 3 && o.quorum % 2 === 1)) throw new Error(`quorum must be 0 or an odd number of at least 3, got ${o.quorum}`);
  if (o.quorum && o.kind !== 'lock') throw new Error('a quorum run takes kind lock only (the quorum offers the exclusive lock)');
  for (const f of o.faults) if (!WORKER_FAULTS.includes(f)) throw new Error(`unknown fault ${f} (${WORKER_FAULTS.join(', ')})`);
  // A quorum or cluster run has no disconnect nor partition of a worker: its lock connections are the
  // masters' (the cluster's), faulted by their own loop.
  const faultKinds = o.faults.filter((f) => !(o.quorum || o.external) || f === 'kill' || f === 'pause');
  const partitions = faultKinds.includes('partition');
  for (const f of o.masterFaults) if (!MASTER_FAULTS.includes(f)) throw new Error(`unknown master fault ${f} (${MASTER_FAULTS.join(', ')})`);
  const server: RedisServer = await startRedis({ owned: true });
  const procs: Proc[] = [];
  const masters: QuorumMaster[] = [];
  let admin: RedisClient | undefined;
  let logging = true;
  try {
    for (let i = 0; i < o.quorum; i++) masters.push(await QuorumMaster.start(i));
    admin = await connect(server.url);
    const prefix = newPrefix('chaos');
    const logKey = `${prefix}:chaos:log`;
    // The driver's appends are awaited, so each lands before (or after) the act it stands for.
    const append = (line: string): Promise<number> => admin!.rPush(logKey, line);
    // The checker reads the kind from the first line, so a dumped log can be checked alone.
    await append(`kind ${o.kind} ${limit}${o.perGroup === undefined ? '' : ` ${o.perGroup}`}`);
    if (o.quorum) await append(`quorum ${o.quorum} lease=${o.leaseMs}`);
    for (const h of o.external?.header ?? []) await append(h);
    const init: WorkerInit = {
      op: 'init',
      url: server.url,
      prefix,
      logKey,
      kind: o.kind,
      permits: o.permits,
      maxWeight: o.kind === 'semaphore' ? o.maxWeight : 1,
      readRatio: o.readRatio,
      groups: o.groups,
      perGroup: o.perGroup,
      options: { leaseMs: o.leaseMs, livenessMs: o.livenessMs, heartbeatMs: o.heartbeatMs },
      locks: Array.from({ length: o.locks }, (_, i) => `lock-${i}`),
      contenders: o.contenders,
      holdMaxMs: o.holdMaxMs,
      acquireTimeoutMs: o.acquireTimeoutMs,
      ...o.external?.worker,
      ...(o.quorum ? { masters: masters.map((m) => m.proxy.url), commandTimeoutMs: o.commandTimeoutMs, restartGuard: o.restartGuard } : {}),
    };
    const spawn = async (): Promise<Proc> => {
      const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const p = new Proc(child);
      if (partitions) [p.lockProxy, p.subProxy] = [await startProxy(server.port), await startProxy(server.port)];
      procs.push(p);
      child.on('exit', (code, sig) => {
        // For the report only (an unexpected exit shows as a process that never logged `done`).
        if (logging && !p.killed) append(`exit ${p.pid} ${code ?? '-'} ${sig ?? '-'}`).catch(() => undefined);
      });
      await append(`spawn ${p.pid}`);
      child.send(p.lockProxy && p.subProxy ? { ...init, lockUrl: p.lockProxy.url, subscriberUrl: p.subProxy.url } : init);
      return p;
    };
    for (let i = 0; i < o.processes; i++) await spawn();
    await Promise.all(procs.map((p) => p.readyPromise));
    const what =
      o.kind === 'lock'
        ? 'locks'
        : o.kind === 'semaphore'
          ? `semaphores of ${o.permits} permits (weights 1..${o.maxWeight})`
          : `read-write locks (${Math.round(o.readRatio * 100)}% reads)`;
    const groups = o.groups > 0 ? ` in ${o.groups} groups${o.perGroup === undefined ? '' : ` (at most ${o.perGroup} per group)`}` : '';
    log(`chaos: ${o.processes} processes x ${o.contenders} contenders on ${o.locks} ${what}${groups} for ${o.durationMs} ms (redis ${server.url})`);
    if (o.quorum) {
      log(`chaos: a quorum of ${o.quorum} masters (ports ${masters.map((m) => m.server.port).join(', ')}, each behind a proxy); master faults: ${o.masterFaults.join(', ') || 'none'} every ~${o.masterFaultEveryMs} ms${o.restartGuard ? '' : '; restart guard OFF'}`);
    }

    const pending: Promise<unknown>[] = [];
    // A fault's effects (a lapsed session, a reaped queue entry) may outlast it: its window closes
    // one liveness period after it ended (after a kill: after the process exited), by the driver's clock.
    const settle = (pid: number, id: string) => pending.push(sleep(o.livenessMs).then(() => append(`settled ${pid} ${id}`)));
    let faults = 0;
    let kills = 0;
    let pauses = 0;
    let disconnects = 0;
    const cuts = { holder: 0, waiter: 0, subscriber: 0 };
    const roles = new Roles(admin, logKey);
    const started = Date.now();
    const stopFaultsAt = started + o.durationMs;
    // Master faults run beside the worker faults, in a loop of their own (a quorum run).
    const settleMasterMs = o.leaseMs + o.livenessMs + o.commandTimeoutMs;
    const masterLoop = o.external
      ? o.external.faults({ append, admin, logKey, stopAt: stopFaultsAt, pending })
      : o.quorum && o.masterFaults.length > 0
        ? masterFaultLoop(masters, o, stopFaultsAt, append, pending, settleMasterMs)
        : Promise.resolve({} as Record<string, number>);
    if (o.external) log(`chaos: ${o.external.describe}`);
    // Until durationMs has passed and minFaults were injected, but never past three durations;
    // at most processes * 3 * durationMs / 50 draws: the loop is bounded in count and in time.
    const injected = () => kills + pauses + disconnects + cuts.holder + cuts.waiter + cuts.subscriber;
    const loopEndsAt = () => (injected() < o.minFaults ? started + 3 * o.durationMs : stopFaultsAt);
    let faulting = true;
    for (let n = 0; n < (o.processes * 3 * o.durationMs) / 50 && Date.now() < loopEndsAt(); n++) {
      await sleep(Math.min(o.faultEveryMs * (0.5 + Math.random()), loopEndsAt() - Date.now()));
      if (Date.now() >= loopEndsAt()) break;
      const live = procs.filter((p) => p.alive && !p.killed && !p.paused && !p.cut && p.ready);
      const victim = pick(live);
      if (!victim) continue;
      const kind = pickWeighted(faultKinds);
      if (kind === undefined) break;
      if (kind === 'kill') {
        // Kill, then respawn a fresh process a little later (keeps the population steady).
        kills++;
        victim.killed = true;
        const id = `f${++faults}`;
        await append(`kill ${victim.pid} ${id}`);
        await victim.kill();
        // Its session lapses within one liveness period of the kill: no grant to it after `settled`.
        settle(victim.pid, id);
        pending.push(
          sleep(100 + Math.random() * 300).then(async () => {
            if (faulting) await spawn();
          }),
        );
      } else if (kind === 'pause') {
        // Pause for up to twice the lease: sometimes shorter than liveness, sometimes well past it.
        if (procs.filter((p) => p.paused).length >= Math.max(1, Math.floor(o.processes / 3))) continue;
        pauses++;
        const ms = 50 + Math.random() * 2 * Math.max(o.leaseMs, o.livenessMs);
        victim.paused = true;
        const id = `f${++faults}`;
        await append(`pause ${victim.pid} ${id}`);
        victim.signal('SIGSTOP');
        pending.push(
          sleep(ms).then(async () => {
            victim.signal('SIGCONT');
            victim.paused = false;
            await append(`resume ${victim.pid} ${id}`);
            settle(victim.pid, id);
          }),
        );
      } else if (kind === 'partition') {
        // Cut a holder's process, a waiter's, or a waiter's subscriber alone; at most a third of the
        // processes cut at once (as for pauses).
        if (procs.filter((p) => p.cut).length >= Math.max(1, Math.floor(o.processes / 3))) continue;
        await roles.refresh();
        const what = pick(['holder', 'waiter', 'subscriber'] as const)!;
        const cutOff = pick(live.filter((p) => (what === 'holder' ? roles.holds(p.pid) : roles.waits(p.pid))));
        if (!cutOff?.lockProxy || !cutOff.subProxy) continue;
        const ms = 50 + Math.random() * 2 * Math.max(o.leaseMs, o.livenessMs);
        if (what === 'holder') {
          // A section lasts at most holdMaxMs, less than it takes to cut: the holder is told first to
          // hold on through the cut (or until it learns its lease is lost), then cut if it still holds.
          cutOff.proc.send({ op: 'stretch', ms: ms + STRETCH_LEAD_MS });
          await sleep(STRETCH_LEAD_MS);
          await roles.refresh();
          if (!roles.holds(cutOff.pid) || !cutOff.alive || cutOff.paused) {
            if (cutOff.alive) cutOff.proc.send({ op: 'stretch', ms: 0 });
            continue;
          }
        }
        cuts[what]++;
        const silent = Math.random() < 0.5;
        const proxies = what === 'subscriber' ? [cutOff.subProxy] : [cutOff.lockProxy, cutOff.subProxy];
        const id = `f${++faults}`;
        cutOff.cut = true;
        await append(`partition ${cutOff.pid} ${id} ${what} ${silent ? 'silent' : 'reset'}`);
        for (const x of proxies) cut(x, silent, ms);
        pending.push(
          sleep(ms).then(async () => {
            for (const x of proxies) heal(x, silent);
            cutOff.cut = false;
            await append(`healed ${cutOff.pid} ${id}`);
            settle(cutOff.pid, id);
          }),
        );
      } else {
        // Drop every lock connection of the process (commands and subscriber); node-redis reconnects.
        // The event log connection (evlog-<pid>) and the fenced store's (store-<pid>) are kept.
        const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
        const ids = list
          .split('\n')
          .filter((line) => line.includes(` name=chaos-${victim.pid} `))
          .map((line) => /^id=(\d+)/.exec(line)?.[1])
          .filter((id): id is string => id !== undefined);
        if (ids.length === 0) continue;
        disconnects++;
        const id = `f${++faults}`;
        await append(`disconnect ${victim.pid} ${id}`);
        for (const client of ids) await admin.sendCommand(['CLIENT', 'KILL', 'ID', client]).catch(() => undefined);
        await append(`disconnected ${victim.pid} ${id}`);
        settle(victim.pid, id);
      }
    }
    faulting = false;
    const masterCounts = await masterLoop;
    // Settles are pushed while pauses end: wait until no more are added.
    for (let seen = 0; seen < pending.length; ) {
      const n = pending.length;
      await Promise.all(pending.slice(seen));
      seen = n;
    }
    for (const p of procs) {
      if (p.paused) p.signal('SIGCONT');
      p.paused = false;
    }
    const mc = Object.entries(masterCounts).map(([k, n]) => ` master-${k}=${n}`).join('');
    const pc = partitions ? ` partitions=${cuts.holder + cuts.waiter + cuts.subscriber} (holder ${cuts.holder}, waiter ${cuts.waiter}, subscriber ${cuts.subscriber})` : '';
    log(`chaos: faults stopped after ${Date.now() - started} ms (kills=${kills} pauses=${pauses} disconnects=${disconnects}${pc}${mc}); letting every waiter finish`);

    if (o.quorum && o.majorityPhaseMs > 0) {
      // A majority down at once: each stopped (SIGSTOP) or cut silently, for majorityPhaseMs.
      const majority = Math.floor(o.quorum / 2) + 1;
      const chosen = [...masters].sort(() => Math.random() - 0.5).slice(0, majority).sort((a, b) => a.index - b.index);
      const how = chosen.map(() => (Math.random() < 0.5 ? 'stop' : 'partition'));
      const bound = quorumLostBoundMs(o);
      await append(`majority down p1 ${chosen.map((m, k) => `${m.index}:${how[k]}`).join(',')} bound=${bound}`);
      chosen.forEach((m, k) => (how[k] === 'stop' ? m.stop() : m.proxy.hold()));
      await append('majority downed p1');
      log(`chaos: majority phase: masters ${chosen.map((m, k) => `${m.index} (${how[k]})`).join(', ')} down for ${o.majorityPhaseMs} ms`);
      await sleep(o.majorityPhaseMs);
      await append('majority up p1');
      chosen.forEach((m, k) => (how[k] === 'stop' ? m.cont() : m.proxy.heal()));
      await sleep(settleMasterMs);
      await append('majority settled p1');
    }

    // Let every live process finish its current acquire (bounded by its acquire timeout).
    const live = procs.filter((p) => p.alive && !p.killed);
    await Promise.all(live.map((p) => p.readyPromise));
    for (const p of live) if (p.alive) p.proc.send({ op: 'stop' });
    const finishBy = o.acquireTimeoutMs + 10_000;
    await Promise.race([Promise.all(live.map((p) => p.finished)), sleep(finishBy)]);

    logging = false;
    const events = await admin.lRange(logKey, 0, -1);
    const fenced = new Map<string, { token: number; value: string }[]>();
    for (const lock of init.locks) fenced.set(lock, await fencedLog(admin, `${prefix}:store:${lock}`));
    const result = check(events, fenced);
    const dump = o.logFile ?? (totalViolations(result) > 0 ? join(tmpdir(), `fairlock-${prefix}.log`) : undefined);
    if (dump) {
      const store = [...fenced].flatMap(([lock, es]) => es.map((e, i) => `store ${lock} #${i} ${e.token} ${e.value}`));
      writeFileSync(dump, [...events.map((e, i) => `#${i} ${e}`), ...store].join('\n') + '\n');
      result.details.push(`note: event log (${events.length} lines) and fenced store written to ${dump}`);
    }
    return result;
  } finally {
    logging = false;
    await Promise.all(procs.map((p) => (p.signal('SIGCONT'), p.kill())));
    await Promise.all(procs.flatMap((p) => [p.lockProxy, p.subProxy]).map((x) => x?.stop().catch(() => undefined)));
    await admin?.quit().catch(() => undefined);
    await Promise.all(masters.map((m) => m.close()));
    await server.stop();
  }
}

/** One master of a quorum run: a redis-server of its own (AOF on, in a dir of ours) behind a proxy. */
class QuorumMaster {
  stopped = false;
  private constructor(
    readonly index: number,
    readonly server: RedisServer,
    readonly proxy: Proxy,
    private readonly dir: string,
  ) {}

  static async start(index: number): Promise<QuorumMaster> {
    const dir = mkdtempSync(join(tmpdir(), 'fairlock-chaos-master-'));
    // `--dir` after the helper's own: the last one wins, so the AOF lives where restartEmpty() finds it.
    const server = await startRedisProcess({ appendonly: true, args: ['--dir', dir] });
    return new QuorumMaster(index, server, await startProxy(server.port), dir);
  }

  stop(): void {
    if (this.server.pid !== undefined) process.kill(this.server.pid, 'SIGSTOP');
    this.stopped = true;
  }

  cont(): void {
    if (this.server.pid !== undefined) process.kill(this.server.pid, 'SIGCONT');
    this.stopped = false;
  }

  kill(): Promise<void> {
    return this.server.kill();
  }

  /** Starts it again on its port; `empty`: its AOF removed first (no data, no run_id in common). */
  async restart(empty: boolean): Promise<void> {
    if (empty) {
      rmSync(join(this.dir, 'appendonlydir'), { recursive: true, force: true });
      rmSync(join(this.dir, 'dump.rdb'), { force: true });
    }
    // Bounded: a port taken meanwhile (another helper's process) fails the run rather than hang it.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.server.restart();
        return;
      } catch (err) {
        if (attempt >= 3) throw err;
        await sleep(200);
      }
    }
  }

  async close(): Promise<void> {
    if (this.stopped) this.cont();
    this.proxy.heal();
    await this.proxy.stop().catch(() => undefined);
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The master fault loop of a quorum run: until `stopAt`, every ~masterFaultEveryMs, one master that
 * is up (never more than a minority down) gets one of `o.masterFaults`, for 200 ms to twice the
 * lease; each is logged before it acts (`master M <kind> F`), after the master is back (`back`),
 * and one settle period later (`settled`). Returns the counts by kind.
 */
async function masterFaultLoop(
  masters: QuorumMaster[],
  o: ChaosOptions,
  stopAt: number,
  append: (line: string) => Promise<unknown>,
  pending: Promise<unknown>[],
  settleMs: number,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = Object.fromEntries(o.masterFaults.map((k) => [k, 0]));
  const minority = Math.floor(masters.length / 2);
  const down = new Set<QuorumMaster>();
  let n = 0;
  for (let round = 0; round < o.durationMs / 50 && Date.now() < stopAt; round++) {
    await sleep(Math.min(o.masterFaultEveryMs * (0.5 + Math.random()), stopAt - Date.now()));
    if (Date.now() >= stopAt) break;
    if (down.size >= minority) continue;
    const m = pick(masters.filter((x) => !down.has(x)))!;
    const kind = pick(o.masterFaults as MasterFault[])!;
    const id = `m${++n}`;
    const ms = 200 + Math.random() * 2 * Math.max(o.leaseMs, o.livenessMs);
    counts[kind]!++;
    down.add(m);
    const silent = Math.random() < 0.5;
    await append(`master ${m.index} ${kind} ${id}${kind === 'partition' ? (silent ? ' silent' : ' reset') : ''}`);
    if (kind === 'kill' || kind === 'restart') await m.kill();
    else if (kind === 'stop') m.stop();
    else if (silent) m.proxy.hold();
    else {
      // Every connection dropped, new ones refused until the heal.
      m.proxy.refuse(ms);
      for (const c of [...m.proxy.conns]) (c.down.destroy(), c.up.destroy());
    }
    pending.push(
      (async () => {
        await sleep(ms);
        if (kind === 'kill' || kind === 'restart') await m.restart(kind === 'restart');
        else if (kind === 'stop') m.cont();
        else if (silent) m.proxy.heal();
        else m.proxy.refuse(0);
        await append(`master ${m.index} back ${id}`);
        // A master restarted empty counts as down for one more lease: the restart guard's window.
        if (kind === 'restart') await sleep(o.leaseMs);
        down.delete(m);
        await sleep(settleMs);
        await append(`master ${m.index} settled ${id}`);
      })(),
    );
  }
  return counts;
}
