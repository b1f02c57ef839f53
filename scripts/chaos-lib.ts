/**
 * Chaos for fairlock, shared by `npm run chaos` (scripts/chaos.ts) and test/faults/chaos.test.ts.
 *
 * N processes (chaos-worker.ts) contend for a few locks on a Redis of our own, while a driver kills
 * (and respawns), pauses/resumes (SIGSTOP/SIGCONT) and disconnects (CLIENT KILL of their lock
 * connections) them at random, for a bounded time. Then the faults stop, every process is told to
 * finish, and a checker goes over the log of every acquire and critical section:
 *   - overlap: two critical sections of one lock whose leases were both still valid at their end
 *     (signal not aborted) overlap in time;
 *   - token: a token granted twice, or tokens not rising in the order of those sections;
 *   - fenced: a valid section whose fenced write was rejected, or two holders' writes interleaved in
 *     the fenced store's log;
 *   - liveness: an acquire of a process that stayed alive timed out, or never finished;
 *   - fifo: waiter A was queued before waiter B called acquire, A's process saw no fault while A
 *     waited, and yet B got the lock first (lower token).
 * Every loop is bounded in count and time; every process started here is stopped by PID.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../src/scripts.js';
import { fencedLog } from '../test/helpers/fenced.js';
import { connect, newPrefix, startRedis, type RedisServer } from '../test/helpers/redis.js';
import type { WorkerEvent, WorkerInit } from './chaos-worker.js';

const WORKER = fileURLToPath(new URL('./chaos-worker.ts', import.meta.url));

export interface ChaosOptions {
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
}

export const CHAOS_DEFAULTS: ChaosOptions = {
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

export interface ChaosResult {
  grants: number;
  sections: number;
  kills: number;
  pauses: number;
  disconnects: number;
  lost: number;
  acquireErrors: number;
  /** Acquire errors by code (a disconnect can fail an acquire whose script reply was lost). */
  errorCodes: Record<string, number>;
  fifoPairs: number;
  violations: { overlap: number; token: number; fenced: number; liveness: number; fifo: number };
  details: string[];
}

export const totalViolations = (r: ChaosResult): number => Object.values(r.violations).reduce((a, b) => a + b, 0);

export function summary(r: ChaosResult): string {
  const v = r.violations;
  return (
    `chaos: grants=${r.grants} sections=${r.sections} kills=${r.kills} pauses=${r.pauses} disconnects=${r.disconnects} ` +
    `lost-leases=${r.lost} acquire-errors=${r.acquireErrors}${r.acquireErrors ? JSON.stringify(r.errorCodes) : ''} fifo-pairs-checked=${r.fifoPairs} ` +
    `violations=${totalViolations(r)} (overlap=${v.overlap} token=${v.token} fenced=${v.fenced} liveness=${v.liveness} fifo=${v.fifo})`
  );
}

const wall = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the checker needs to know of one process. */
export interface ProcLog {
  pid: number;
  events: WorkerEvent[];
  killed: boolean;
  done: boolean;
  alive: boolean;
  faults: [number, number][];
}

class Proc implements ProcLog {
  readonly events: WorkerEvent[] = [];
  killed = false;
  paused = false;
  done = false;
  /** Intervals during which this process was faulted (paused, disconnected, or from its kill on). */
  readonly faults: [number, number][] = [];
  private readyResolve!: () => void;
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));
  private doneResolve!: () => void;
  readonly finished = new Promise<void>((r) => (this.doneResolve = r));

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (e: WorkerEvent) => {
      this.events.push(e);
      if (e.ev === 'ready') this.readyResolve();
      if (e.ev === 'done') {
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

function spawnProc(init: WorkerInit): Proc {
  const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const p = new Proc(proc);
  proc.send(init);
  return p;
}

const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosResult> {
  const o = { ...CHAOS_DEFAULTS, ...partial };
  const log = o.log ?? (() => undefined);
  const server: RedisServer = await startRedis({ owned: true });
  const procs: Proc[] = [];
  let admin: RedisClient | undefined;
  try {
    admin = await connect(server.url);
    const prefix = newPrefix('chaos');
    const init: WorkerInit = {
      op: 'init',
      url: server.url,
      prefix,
      options: { leaseMs: o.leaseMs, livenessMs: o.livenessMs, heartbeatMs: o.heartbeatMs },
      locks: Array.from({ length: o.locks }, (_, i) => `lock-${i}`),
      contenders: o.contenders,
      holdMaxMs: o.holdMaxMs,
      acquireTimeoutMs: o.acquireTimeoutMs,
    };
    for (let i = 0; i < o.processes; i++) procs.push(spawnProc(init));
    await Promise.all(procs.map((p) => p.ready));
    log(`chaos: ${o.processes} processes x ${o.contenders} contenders on ${o.locks} locks for ${o.durationMs} ms (redis ${server.url})`);

    let kills = 0;
    let pauses = 0;
    let disconnects = 0;
    const pending: Promise<unknown>[] = [];
    const started = Date.now();
    const stopFaultsAt = started + o.durationMs;
    // At most processes * durationMs / 50 faults: the loop is bounded in count and in time.
    for (let n = 0; n < (o.processes * o.durationMs) / 50 && Date.now() < stopFaultsAt; n++) {
      await sleep(o.faultEveryMs * (0.5 + Math.random()));
      if (Date.now() >= stopFaultsAt) break;
      const live = procs.filter((p) => p.alive && !p.killed && !p.paused && p.events.some((e) => e.ev === 'ready'));
      const victim = pick(live);
      if (!victim) continue;
      const kind = Math.random();
      if (kind < 0.25) {
        // Kill, then respawn a fresh process a little later (keeps the population steady).
        kills++;
        victim.killed = true;
        victim.faults.push([wall(), Infinity]);
        await victim.kill();
        pending.push(
          sleep(100 + Math.random() * 300).then(() => {
            if (Date.now() < stopFaultsAt) procs.push(spawnProc(init));
          }),
        );
      } else if (kind < 0.55) {
        // Pause for up to twice the lease: sometimes shorter than liveness, sometimes well past it.
        if (procs.filter((p) => p.paused).length >= Math.max(1, Math.floor(o.processes / 3))) continue;
        pauses++;
        const ms = 50 + Math.random() * 2 * Math.max(o.leaseMs, o.livenessMs);
        const from = wall();
        victim.paused = true;
        victim.signal('SIGSTOP');
        pending.push(
          sleep(ms).then(() => {
            victim.signal('SIGCONT');
            victim.paused = false;
            victim.faults.push([from, wall() + o.livenessMs]);
          }),
        );
      } else {
        // Drop every lock connection of the process (commands and subscriber); node-redis reconnects.
        const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
        const ids = list
          .split('\n')
          .filter((line) => line.includes(` name=chaos-${victim.pid} `))
          .map((line) => /^id=(\d+)/.exec(line)?.[1])
          .filter((id): id is string => id !== undefined);
        if (ids.length === 0) continue;
        disconnects++;
        const at = wall();
        for (const id of ids) await admin.sendCommand(['CLIENT', 'KILL', 'ID', id]).catch(() => undefined);
        victim.faults.push([at, wall() + o.livenessMs]);
      }
    }
    await Promise.all(pending);
    for (const p of procs) {
      if (p.paused) p.signal('SIGCONT');
      p.paused = false;
    }
    log(`chaos: faults stopped after ${Date.now() - started} ms (kills=${kills} pauses=${pauses} disconnects=${disconnects}); letting every waiter finish`);

    // Let every live process finish its current acquire (bounded by its acquire timeout).
    const live = procs.filter((p) => p.alive && !p.killed);
    await Promise.all(live.map((p) => p.ready));
    for (const p of live) if (p.alive) p.proc.send({ op: 'stop' });
    const finishBy = o.acquireTimeoutMs + 10_000;
    await Promise.race([Promise.all(live.map((p) => p.finished)), sleep(finishBy)]);

    const logs = new Map<string, { token: number; value: string }[]>();
    for (const lock of init.locks) logs.set(lock, await fencedLog(admin, `${prefix}:store:${lock}`));
    return check(procs, logs, { kills, pauses, disconnects });
  } finally {
    await Promise.all(procs.map((p) => (p.signal('SIGCONT'), p.kill())));
    await admin?.quit().catch(() => undefined);
    await server.stop();
  }
}

type Ev<K extends WorkerEvent['ev']> = Extract<WorkerEvent, { ev: K }>;

/** Goes over the log; see the header of this file for what each violation means. */
export function check(
  procs: ProcLog[],
  logs: Map<string, { token: number; value: string }[]>,
  counts: { kills: number; pauses: number; disconnects: number },
): ChaosResult {
  const details: string[] = [];
  const v = { overlap: 0, token: 0, fenced: 0, liveness: 0, fifo: 0 };
  const flag = (kind: keyof typeof v, msg: string) => {
    v[kind]++;
    if (details.length < 50) details.push(`${kind}: ${msg}`);
  };
  const all = procs.flatMap((p) => p.events);
  const of = <K extends WorkerEvent['ev']>(k: K) => all.filter((e): e is Ev<K> => e.ev === k);
  const grants = of('granted');
  const sections = of('section');
  const errors = of('acquireError');

  // Tokens: each granted once per lock.
  const seen = new Map<string, string>();
  for (const g of grants) {
    const k = `${g.lock} ${g.token}`;
    if (seen.has(k)) flag('token', `token ${g.token} of ${g.lock} granted to ${seen.get(k)} and ${g.op}`);
    seen.set(k, g.op);
  }

  // Mutual exclusion among sections that were valid to their end; tokens rise in their order.
  const byLock = new Map<string, Ev<'section'>[]>();
  for (const s of sections) {
    if (!s.aborted) byLock.set(s.lock, [...(byLock.get(s.lock) ?? []), s]);
    if (!s.aborted && !(s.wroteBegin && s.wroteEnd)) flag('fenced', `${s.op} held ${s.lock} (token ${s.token}) to its end yet a fenced write was rejected`);
  }
  for (const [lock, ss] of byLock) {
    ss.sort((a, b) => a.start - b.start);
    for (let i = 1; i < ss.length; i++) {
      const [a, b] = [ss[i - 1]!, ss[i]!];
      if (b.start < a.end) flag('overlap', `${lock}: ${b.op} (token ${b.token}) started ${(a.end - b.start).toFixed(3)} ms before ${a.op} (token ${a.token}) ended`);
      if (b.token <= a.token) flag('token', `${lock}: ${b.op} holds token ${b.token} after ${a.op} with ${a.token}`);
    }
  }

  // Fenced store: each holder's writes are contiguous in the accepted log.
  for (const [lock, entries] of logs) {
    const closed = new Set<string>();
    let current = '';
    for (const e of entries) {
      const op = e.value.split(' ')[0]!;
      if (op !== current) {
        if (closed.has(op)) flag('fenced', `${lock}: writes of ${op} interleaved with another holder's`);
        if (current) closed.add(current);
        current = op;
      }
    }
  }

  // Liveness: every acquire of a process that stayed alive ended in a grant (or a non-timeout error).
  for (const p of procs) {
    if (p.killed) continue;
    const calls = p.events.filter((e): e is Ev<'call'> => e.ev === 'call');
    const ended = new Set([...p.events].filter((e) => e.ev === 'granted' || e.ev === 'acquireError').map((e) => (e as Ev<'granted'>).op));
    for (const c of calls) if (!ended.has(c.op)) flag('liveness', `${c.op} on ${c.lock} (live process ${p.pid}) never finished`);
    for (const e of p.events) if (e.ev === 'acquireError' && e.code === 'LOCK_TIMEOUT') flag('liveness', `${e.op} on ${e.lock} (live process ${p.pid}) timed out`);
    if (!p.done && p.alive) flag('liveness', `process ${p.pid} did not finish`);
  }

  // FIFO among waiters whose process saw no fault while they waited.
  let fifoPairs = 0;
  const faulted = new Map(procs.map((p) => [p.pid, p.faults]));
  const clean = (pid: number, from: number, to: number) => !(faulted.get(pid) ?? []).some(([a, b]) => a <= to && b >= from);
  const calls = new Map(of('call').map((c) => [c.op, c]));
  const queued = new Map(of('queued').map((q) => [q.op, q]));
  const grantsByLock = new Map<string, Ev<'granted'>[]>();
  for (const g of grants) grantsByLock.set(g.lock, [...(grantsByLock.get(g.lock) ?? []), g]);
  for (const [lock, gs] of grantsByLock) {
    const firsts = gs
      .map((g) => ({ g, q: queued.get(g.op), c: calls.get(g.op)! }))
      .filter((x) => x.q !== undefined && x.c !== undefined && clean(x.g.pid, x.c.at, x.g.at));
    for (const a of firsts) {
      for (const b of gs) {
        if (b.op === a.g.op) continue;
        const bc = calls.get(b.op);
        if (!bc || !(a.q!.at < bc.at)) continue;
        fifoPairs++;
        if (b.token < a.g.token) flag('fifo', `${lock}: ${a.g.op} queued before ${b.op} called acquire, but ${b.op} got token ${b.token} < ${a.g.token}`);
      }
    }
  }

  for (const e of errors.slice(0, 10)) details.push(`note (not a violation): ${e.op} on ${e.lock}: ${e.code} ${e.message}`);
  return {
    grants: grants.length,
    sections: sections.length,
    kills: counts.kills,
    pauses: counts.pauses,
    disconnects: counts.disconnects,
    lost: sections.filter((s) => s.aborted).length,
    acquireErrors: errors.length,
    errorCodes: errors.reduce<Record<string, number>>((m, e) => ((m[e.code || '?'] = (m[e.code || '?'] ?? 0) + 1), m), {}),
    fifoPairs,
    violations: v,
    details,
  };
}
