/**
 * Forks worker.ts processes for multi-process tests; every child is stopped by PID.
 *
 * Clocks: a child's clock is never compared with another process's. The parent stamps each event
 * with its own `performance.now()` when the message arrives (`receivedAt`): durations between the
 * parent's actions and a child's events use the parent's clock at both ends (the receive stamp is
 * later than the real event, so an upper bound measured this way stays honest). Order across
 * children comes from tokens, queue positions or Redis (see `orderKey` in worker.ts), never from
 * stamps.
 *
 * Lifetime: spawnChild registers the child with the test (killed by PID at its end, SIGCONT first
 * in case it was SIGSTOPped) and in a per-process registry that the file's after.always hook and a
 * process 'exit' hook sweep. A child's waitFor() rejects when its time is up, when the child exits,
 * or when the test ends, so no await on a child can hang the run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { scopeOf, settleWithin, type Scope } from './cleanup.js';
import './exit-on-term.js';
import type { Command, Event } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

/** An event as the parent received it: `receivedAt` is the parent's performance.now() on arrival. */
export type Received = Event & { receivedAt: number };

/** Children forked by this process and not yet reaped. */
const live = new Set<Child>();
process.once('exit', () => {
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL'); // works on a SIGSTOPped process too
    } catch {
      // already gone
    }
  }
});

interface Waiter {
  match: (e: Received) => boolean;
  resolve: (e: Received) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Child {
  readonly events: Received[] = [];
  private waiters: Waiter[] = [];
  /** Why no more events will come (the child exited or was disposed); undefined while it runs. */
  private gone: string | undefined;
  sessionId = '';
  /** The client family the child's FairLocks runs on (FAIRLOCK_TEST_CLIENT, else node-redis 4). */
  family = '';

  constructor(readonly proc: ChildProcess) {
    live.add(this);
    proc.on('message', (e: Event) => {
      const r = { ...e, receivedAt: performance.now() } as Received;
      this.events.push(r);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(r)) return true;
        clearTimeout(w.timer);
        w.resolve(r);
        return false;
      });
    });
    // 'close' comes after 'exit' and after the IPC channel has closed, so no event is still in flight.
    proc.once('close', (code, signal) => {
      live.delete(this);
      this.end(`exited (${signal ?? `code ${code}`})`);
    });
    proc.once('error', (err) => this.end(`failed: ${err.message}`));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  send(c: Command): void {
    if (!this.proc.connected) throw new Error(`child ${this.pid} ${this.gone ?? 'is disconnected'}: cannot send ${c.op}`);
    this.proc.send(c);
  }

  /**
   * Resolves with the first event (already seen or future) that matches; rejects after timeoutMs,
   * or at once when the child has exited or the test has ended.
   */
  waitFor(match: (e: Received) => boolean, timeoutMs = 15_000, what = 'event'): Promise<Received> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    if (this.gone) return Promise.reject(new Error(`child ${this.pid} ${this.gone}: no ${what}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`child ${this.pid}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({ match, resolve, reject: (err) => reject(new Error(`${err.message}: no ${what}`)), timer });
    });
  }

  /** Waits for an event of kind `ev` for request `req` (or an error for it, which rejects). */
  async expect(req: string, ev: Event['ev'], timeoutMs = 15_000): Promise<Received> {
    const e = await this.waitFor((x) => x.req === req && (x.ev === ev || x.ev === 'error'), timeoutMs, `${ev} for ${req}`);
    if (e.ev === 'error' && ev !== 'error') throw new Error(`child ${this.pid} ${req}: ${e.name}: ${e.message}`);
    return e;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, sig);
  }

  /** SIGKILL (the crash the fault tests inject) and wait until it has exited. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    process.kill(this.pid, 'SIGKILL');
    await exited;
  }

  /** Teardown: SIGCONT (it may be SIGSTOPped), SIGKILL, wait (bounded) for it to exit; never rejects. */
  async dispose(): Promise<void> {
    this.end('was stopped at the end of the test');
    if (this.running) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      for (const sig of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(this.pid, sig);
        } catch {
          // already gone
        }
      }
      await settleWithin(exited, 5_000);
    }
    if (this.proc.connected) this.proc.disconnect();
    if (!this.running) live.delete(this);
  }

  /** No more events will come: reject every pending wait now rather than at its timeout. */
  private end(why: string): void {
    this.gone ??= why;
    const pending = this.waiters;
    this.waiters = [];
    for (const w of pending) {
      clearTimeout(w.timer);
      w.reject(new Error(`child ${this.pid} ${why}`));
    }
  }
}

/**
 * Forks a worker and initialises its FairLocks. The child is registered with test `t` (killed by PID
 * when the test ends, whatever the outcome) before anything can fail.
 */
export async function spawnChild(t: ExecutionContext | Scope, url: string, prefix: string, options?: Record<string, number>): Promise<Child> {
  const scope = scopeOf(t);
  if (scope.closed) throw new Error('the test has already ended: no child forked');
  const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const child = new Child(proc);
  scope.add(() => child.dispose());
  child.send({ op: 'init', url, prefix, options });
  // Generous: on a loaded 2-core machine a fresh tsx child took over 20 s to connect and report.
  const ready = await child.waitFor((e) => e.ev === 'ready', 60_000, 'ready');
  if (ready.ev === 'ready') {
    child.sessionId = ready.sessionId;
    child.family = ready.family;
  }
  return child;
}

/** Forks a worker whose acquires go through a quorum over `urls` (worker.ts init-quorum); registered like spawnChild's. */
export async function spawnQuorumChild(t: ExecutionContext | Scope, urls: string[], options?: Record<string, number>): Promise<Child> {
  const scope = scopeOf(t);
  if (scope.closed) throw new Error('the test has already ended: no child forked');
  const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const child = new Child(proc);
  scope.add(() => child.dispose());
  child.send({ op: 'init-quorum', urls, options });
  await child.waitFor((e) => e.ev === 'ready', 60_000, 'ready');
  return child;
}

/** SIGKILLs the given children and waits until they have exited. */
export async function stopAll(children: Iterable<Child>): Promise<void> {
  await Promise.all([...children].map((c) => c.stop()));
}

/** Every child this process forked that has not exited yet (for a file's after.always hook). */
export function liveChildren(): Child[] {
  return [...live];
}

/** after.always: every child still alive is resumed, killed and reaped, bounded. */
export async function disposeAll(children: Iterable<Child> = live): Promise<void> {
  await Promise.all([...new Set([...children, ...live])].map((c) => c.dispose()));
}
