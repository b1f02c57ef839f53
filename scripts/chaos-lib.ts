/**
 * Chaos for fairlock, shared by `npm run chaos` (scripts/chaos.ts) and test/faults/chaos.test.ts.
 *
 * N processes (chaos-worker.ts) contend for a few names, all of one kind (locks, semaphores of
 * `permits` taken with random weights, or read-write locks taken for reading or writing at random),
 * on a Redis of our own, while a driver kills (and respawns), pauses/resumes (SIGSTOP/SIGCONT) and
 * disconnects (CLIENT KILL of their lock connections) them at random, for a bounded time. Then the
 * faults stop, every process is told to finish, and the checker (chaos-check.ts) goes over the
 * evidence.
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
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../test/helpers/redis-client.js';
import { fencedLog } from '../test/helpers/fenced.js';
import { connect, newPrefix, startRedis, type RedisServer } from '../test/helpers/redis.js';
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
  processes: number;
  locks: number;
  contenders: number;
  /** Mean time between two faults. */
  faultEveryMs: number;
  leaseMs: number;
  livenessMs: number;
  heartbeatMs: number;
  holdMaxMs: number;
  /** A live waiter not granted within this is a liveness violation. */
  acquireTimeoutMs: number;
  log?: (line: string) => void;
  /** Write the event log here (it is also written to a temporary file when a violation is found). */
  logFile?: string;
}

export const CHAOS_DEFAULTS: ChaosOptions = {
  kind: 'lock',
  permits: 3,
  maxWeight: 2,
  readRatio: 0.8,
  groups: 0,
  durationMs: 60_000,
  processes: 6,
  locks: 3,
  contenders: 2,
  faultEveryMs: 400,
  leaseMs: 800,
  livenessMs: 1000,
  heartbeatMs: 200,
  holdMaxMs: 20,
  acquireTimeoutMs: 30_000,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Proc {
  killed = false;
  paused = false;
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

const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];

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
  const server: RedisServer = await startRedis({ owned: true });
  const procs: Proc[] = [];
  let admin: RedisClient | undefined;
  let logging = true;
  try {
    admin = await connect(server.url);
    const prefix = newPrefix('chaos');
    const logKey = `${prefix}:chaos:log`;
    // The driver's appends are awaited, so each lands before (or after) the act it stands for.
    const append = async (line: string): Promise<void> => {
      await admin!.rPush(logKey, line);
    };
    // The checker reads the kind from the first line, so a dumped log can be checked alone.
    await append(`kind ${o.kind} ${limit}${o.perGroup === undefined ? '' : ` ${o.perGroup}`}`);
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
    };
    const spawn = async (): Promise<Proc> => {
      const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const p = new Proc(child);
      procs.push(p);
      child.on('exit', (code, sig) => {
        // For the report only (an unexpected exit shows as a process that never logged `done`).
        if (logging && !p.killed) append(`exit ${p.pid} ${code ?? '-'} ${sig ?? '-'}`).catch(() => undefined);
      });
      await append(`spawn ${p.pid}`);
      child.send(init);
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

    const pending: Promise<unknown>[] = [];
    // A fault's effects (a lapsed session, a reaped queue entry) may outlast it: its window closes
    // one liveness period after it ended (after a kill: after the process exited), by the driver's clock.
    const settle = (pid: number, id: string) => pending.push(sleep(o.livenessMs).then(() => append(`settled ${pid} ${id}`)));
    let faults = 0;
    let kills = 0;
    let pauses = 0;
    let disconnects = 0;
    const started = Date.now();
    const stopFaultsAt = started + o.durationMs;
    // At most processes * durationMs / 50 faults: the loop is bounded in count and in time.
    for (let n = 0; n < (o.processes * o.durationMs) / 50 && Date.now() < stopFaultsAt; n++) {
      await sleep(o.faultEveryMs * (0.5 + Math.random()));
      if (Date.now() >= stopFaultsAt) break;
      const live = procs.filter((p) => p.alive && !p.killed && !p.paused && p.ready);
      const victim = pick(live);
      if (!victim) continue;
      const kind = Math.random();
      if (kind < 0.25) {
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
            if (Date.now() < stopFaultsAt) await spawn();
          }),
        );
      } else if (kind < 0.55) {
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
    log(`chaos: faults stopped after ${Date.now() - started} ms (kills=${kills} pauses=${pauses} disconnects=${disconnects}); letting every waiter finish`);

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
    await admin?.quit().catch(() => undefined);
    await server.stop();
  }
}
