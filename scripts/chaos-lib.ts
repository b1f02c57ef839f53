/**
 * Chaos for fairlock, shared by `npm run chaos` (scripts/chaos.ts) and test/faults/chaos.test.ts.
 *
 * N processes (chaos-worker.ts) contend for a few locks on a Redis of our own, while a driver kills
 * (and respawns), pauses/resumes (SIGSTOP/SIGCONT) and disconnects (CLIENT KILL of their lock
 * connections) them at random, for a bounded time. Then the faults stop, every process is told to
 * finish, and a checker goes over the evidence.
 *
 * The evidence never compares the clocks of two processes (a fresh process's wall clock can be
 * ms off, which made overlaps appear that never happened). Order comes only from facts that one
 * party orders:
 *   - the event log: one Redis list (`<prefix>:chaos:log`) to which every worker appends each step
 *     and the driver appends each fault, on connections the driver never kills. One Redis server
 *     executes appends one at a time, so positions in the list are a real-time order. Lines:
 *       spawn P | ready P | done P | exit P code signal           process P's life (driver / worker)
 *       kill P F | pause P F | resume P F | disconnect P F | disconnected P F
 *                                   fault F (f1, f2, ...) of P, logged by the driver before (kill,
 *                                   pause, disconnect) or after (resume, disconnected) it acts
 *       settled P F                 one liveness period (driver's own clock) after fault F ended
 *       call P op lock              before acquire() is called
 *       queued P op lock position   from onQueued: the enqueue script has run in Redis
 *       enter P op lock token       after acquire() resolved, before the critical section
 *       leave P op lock token entered=0|1   after the section; entered: signal not aborted when
 *                                   read right after `enter` landed
 *       verdict P op lock token held=0|1    signal not aborted when read after `leave` landed; a
 *                                   lease only goes from held to lost, so held=1 proves it was
 *                                   believed held at every moment from `enter` to `leave` in the log
 *       acqerr P op lock code message | relerr P op lock token code
 *   - the fenced store (test/helpers/fenced.ts): a Redis-side check-and-append whose accepted-writes
 *     log is itself in Redis order; each holder writes `<op> b` first and `<op> e` last in its section.
 *   - fencing tokens: Redis grants them in increasing order per lock.
 * Violations:
 *   - overlap: a section with held=1, and another token's `enter` with entered=1 on the same lock
 *     strictly between its `enter` and `leave` (both believed they held when that `enter` landed);
 *     also a lease believed lost at `enter` yet held at `leave` (a lost lease came back).
 *   - token: a token entered twice on a lock; or, among sections with entered=1 on one lock, a token
 *     lower than the one entered before it in the log (a holder believed in a grant older than one
 *     another holder had already believed in).
 *   - fenced: a section with held=1 whose `b` or `e` write is missing from the accepted log, or two
 *     holders' writes interleaved in it.
 *   - liveness: a process that was never killed whose acquire failed with LOCK_TIMEOUT, whose `call`
 *     has no outcome (enter or acqerr), or that never logged `done`.
 *   - fifo: `queued` of A precedes `call` of B on one lock in the log, both entered, and yet
 *     token(B) < token(A); excused when a fault window of A's process (from the kill/pause/
 *     disconnect line of a fault to its `settled` line, or to the end for a kill) overlaps A's
 *     wait from `queued` to `enter`: a faulted waiter may lose its place by re-entering.
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
import type { WorkerInit, WorkerMessage } from './chaos-worker.js';

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
  /** Write the event log here (it is also written to a temporary file when a violation is found). */
  logFile?: string;
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
  const log = o.log ?? (() => undefined);
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
    const init: WorkerInit = {
      op: 'init',
      url: server.url,
      prefix,
      logKey,
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
    log(`chaos: ${o.processes} processes x ${o.contenders} contenders on ${o.locks} locks for ${o.durationMs} ms (redis ${server.url})`);

    const pending: Promise<unknown>[] = [];
    // A fault's effects (a lapsed session, a reaped queue entry) may outlast it: its window closes
    // one liveness period after it ended, by the driver's clock.
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
        await append(`kill ${victim.pid} f${++faults}`);
        await victim.kill();
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

// ---------------------------------------------------------------------------------------------
// The checker: a pure function of the event log and the fenced stores' accepted-writes logs.

/** One acquire call, put together from its lines (positions are indices in the event log). */
interface Op {
  op: string;
  pid: number;
  lock: string;
  call?: number;
  queued?: number;
  enter?: number;
  token?: number;
  leave?: number;
  entered?: boolean;
  verdict?: number;
  held?: boolean;
  acqerr?: { at: number; code: string; message: string };
}

interface Pid {
  pid: number;
  killed: boolean;
  done: boolean;
  exit?: string;
  /** Fault windows by fault id: from the kill/pause/disconnect line to the settled line (or the end). */
  faults: Map<string, { from: number; to: number }>;
}

/** Number of elements of the ascending array `xs` that are < x. */
function countBelow(xs: number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Goes over the logs; see the header of this file for what each violation means. */
export function check(log: readonly string[], fenced: Map<string, { token: number; value: string }[]>): ChaosResult {
  const details: string[] = [];
  const notes: string[] = [];
  const v = { overlap: 0, token: 0, fenced: 0, liveness: 0, fifo: 0 };
  const flag = (kind: keyof typeof v, msg: string) => {
    v[kind]++;
    if (details.length < 50) details.push(`${kind}: ${msg}`);
  };
  const line = (at: number | undefined) => (at === undefined ? '(none)' : `#${at} "${log[at]}"`);

  const ops = new Map<string, Op>();
  const pids = new Map<number, Pid>();
  const pidOf = (pid: number): Pid => {
    let p = pids.get(pid);
    if (!p) pids.set(pid, (p = { pid, killed: false, done: false, faults: new Map() }));
    return p;
  };
  const counts = { kills: 0, pauses: 0, disconnects: 0 };
  let releaseErrors = 0;

  log.forEach((text, at) => {
    const f = text.split(' ');
    const kind = f[0]!;
    const pid = Number(f[1]);
    if (!Number.isInteger(pid)) {
      if (notes.length < 10) notes.push(`note: unreadable log line ${line(at)}`);
      return;
    }
    const p = pidOf(pid);
    switch (kind) {
      case 'spawn':
      case 'ready':
      case 'resume':
      case 'disconnected':
        return;
      case 'done':
        p.done = true;
        return;
      case 'exit':
        p.exit = f.slice(2).join(' ');
        return;
      case 'settled': {
        const w = p.faults.get(f[2] ?? '');
        if (w && w.to === Infinity) w.to = at;
        else if (notes.length < 10) notes.push(`note: ${line(at)} settles no open fault`);
        return;
      }
      case 'kill':
      case 'pause':
      case 'disconnect':
        if (kind === 'kill') p.killed = true;
        counts[kind === 'kill' ? 'kills' : kind === 'pause' ? 'pauses' : 'disconnects']++;
        if (!p.faults.has(f[2] ?? '')) p.faults.set(f[2] ?? '', { from: at, to: Infinity });
        else if (notes.length < 10) notes.push(`note: ${line(at)} reuses a fault id`);
        return;
    }
    const [opName, lock] = [f[2], f[3]];
    if (opName === undefined || lock === undefined) {
      if (notes.length < 10) notes.push(`note: unreadable log line ${line(at)}`);
      return;
    }
    let o = ops.get(opName);
    if (!o) ops.set(opName, (o = { op: opName, pid, lock }));
    // A line repeated (a retried append whose first attempt landed) keeps its first position.
    switch (kind) {
      case 'call':
        o.call ??= at;
        break;
      case 'queued':
        o.queued ??= at;
        break;
      case 'enter':
        if (o.enter === undefined) [o.enter, o.token] = [at, Number(f[4])];
        break;
      case 'leave':
        if (o.leave === undefined) [o.leave, o.entered] = [at, f[5] === 'entered=1'];
        break;
      case 'verdict':
        if (o.verdict === undefined) [o.verdict, o.held] = [at, f[5] === 'held=1'];
        break;
      case 'acqerr':
        o.acqerr ??= { at, code: f[4] ?? '?', message: f.slice(5).join(' ') };
        break;
      case 'relerr':
        releaseErrors++;
        break;
      default:
        if (notes.length < 10) notes.push(`note: unknown log line ${line(at)}`);
    }
  });

  const all = [...ops.values()];
  const byLock = new Map<string, Op[]>();
  for (const o of all) {
    if (o.enter === undefined) continue;
    const list = byLock.get(o.lock);
    if (list) list.push(o);
    else byLock.set(o.lock, [o]);
  }
  for (const list of byLock.values()) list.sort((a, b) => a.enter! - b.enter!);

  for (const [lock, entered] of byLock) {
    // Tokens: each entered once per lock.
    const seen = new Map<number, Op>();
    for (const o of entered) {
      const first = seen.get(o.token!);
      if (first) flag('token', `${lock}: token ${o.token} entered twice: ${line(first.enter)} and ${line(o.enter)}`);
      else seen.set(o.token!, o);
    }

    // Mutual exclusion: sweep the enters in log order, keeping the sections with held=1 still open.
    let open: Op[] = [];
    let prev: Op | undefined; // the last section with entered=1
    for (const b of entered) {
      open = open.filter((a) => a.leave! > b.enter!);
      if (b.held && !b.entered) flag('overlap', `${lock}: ${b.op} was believed lost at ${line(b.enter)} yet held at ${line(b.verdict)}`);
      if (b.entered) {
        for (const a of open) {
          if (a.token !== b.token) flag('overlap', `${lock}: ${line(b.enter)} (entered=1) lies inside the held=1 section ${line(a.enter)} .. ${line(a.leave)}`);
        }
        if (prev && b.token! < prev.token!) flag('token', `${lock}: ${line(b.enter)} (entered=1) after ${line(prev.enter)} (entered=1): the token fell`);
        prev = b;
      }
      if (b.held && b.leave !== undefined) open.push(b);
    }
  }

  // Fenced store: a holder believed valid to its end had both writes accepted; each holder's
  // writes are contiguous in the accepted log.
  for (const [lock, entries] of fenced) {
    const accepted = new Set(entries.map((e) => `${e.token} ${e.value}`));
    for (const o of byLock.get(lock) ?? []) {
      if (!o.held) continue;
      for (const w of ['b', 'e']) {
        if (!accepted.has(`${o.token} ${o.op} ${w}`)) flag('fenced', `${lock}: ${o.op} (token ${o.token}) held to ${line(o.verdict)} yet its "${w}" write is not in the store's accepted log`);
      }
    }
    const closed = new Set<string>();
    let current = '';
    entries.forEach((e, i) => {
      const op = e.value.split(' ')[0]!;
      if (op !== current) {
        if (closed.has(op)) flag('fenced', `${lock}: store write #${i} "${e.token} ${e.value}" comes after another holder's writes began`);
        if (current) closed.add(current);
        current = op;
      }
    });
  }

  // Liveness: every acquire of a process that was never killed ended, and not in a timeout.
  for (const o of all) {
    if (pids.get(o.pid)?.killed) continue;
    if (o.call !== undefined && o.enter === undefined && o.acqerr === undefined) flag('liveness', `${o.lock}: ${line(o.call)} of a live process has no outcome`);
    if (o.acqerr?.code === 'LOCK_TIMEOUT') flag('liveness', `${o.lock}: ${line(o.acqerr.at)} (a process that was never killed)`);
  }
  for (const p of pids.values()) {
    if (!p.killed && !p.done) flag('liveness', `process ${p.pid} was never killed yet did not log "done"${p.exit ? ` (exit ${p.exit})` : ''}`);
  }

  // FIFO: queued(A) before call(B) on one lock, both entered, A's wait free of faults of its
  // process => token(A) < token(B). Pairs are counted with a Fenwick tree over token ranks.
  const faultedDuring = (pid: number, from: number, to: number): boolean => {
    for (const w of pids.get(pid)?.faults.values() ?? []) if (w.from < to && w.to > from) return true;
    return false;
  };
  let fifoPairs = 0;
  for (const [lock, entered] of byLock) {
    const as = entered.filter((a) => a.queued !== undefined && !faultedDuring(a.pid, a.queued, a.enter!)).sort((x, y) => y.queued! - x.queued!);
    const bs = entered.filter((b) => b.call !== undefined).sort((x, y) => y.call! - x.call!);
    const tokens = [...new Set(entered.map((o) => o.token!))].sort((x, y) => x - y);
    const rank = (t: number) => countBelow(tokens, t) + 1; // 1-based
    const tree = new Array<number>(tokens.length + 1).fill(0);
    const add = (i: number) => {
      for (; i < tree.length; i += i & -i) tree[i]!++;
    };
    const below = (i: number) => {
      let s = 0;
      for (; i > 0; i -= i & -i) s += tree[i]!;
      return s;
    };
    let j = 0;
    for (const a of as) {
      for (; j < bs.length && bs[j]!.call! > a.queued!; j++) add(rank(bs[j]!.token!));
      fifoPairs += j;
      const bad = below(rank(a.token!) - 1);
      if (bad === 0) continue;
      v.fifo += bad;
      if (details.length < 50) {
        const b = bs.slice(0, j).reduce((m, x) => (x.token! < m.token! ? x : m));
        details.push(
          `fifo: ${lock}: ${line(a.queued)} precedes ${line(b.call)}, yet ${line(b.enter)} has a lower token than ${line(a.enter)}` +
            (bad > 1 ? ` (and ${bad - 1} more called after A queued got in first)` : ''),
        );
      }
    }
  }

  const errors = all.filter((o) => o.acqerr !== undefined);
  for (const o of errors.slice(0, 10)) details.push(`note (not a violation): ${line(o.acqerr!.at)}`);
  if (releaseErrors) details.push(`note (not a violation): ${releaseErrors} release errors`);
  details.push(...notes);
  const verdicts = all.filter((o) => o.verdict !== undefined);
  return {
    grants: all.filter((o) => o.enter !== undefined).length,
    sections: verdicts.length,
    kills: counts.kills,
    pauses: counts.pauses,
    disconnects: counts.disconnects,
    lost: verdicts.filter((o) => !o.held).length,
    acquireErrors: errors.length,
    errorCodes: errors.reduce<Record<string, number>>((m, o) => ((m[o.acqerr!.code] = (m[o.acqerr!.code] ?? 0) + 1), m), {}),
    fifoPairs,
    violations: v,
    details,
  };
}
