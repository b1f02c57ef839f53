/** Forks worker.ts processes for multi-process tests; every child is stopped by PID. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command, Event } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export class Child {
  readonly events: Event[] = [];
  private waiters: { match: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  sessionId = '';

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (e: Event) => {
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => (w.match(e) ? (w.resolve(e), false) : true));
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  send(c: Command): void {
    this.proc.send(c);
  }

  /** Resolves with the first event (already seen or future) that matches; rejects after timeoutMs. */
  waitFor(match: (e: Event) => boolean, timeoutMs = 15_000, what = 'event'): Promise<Event> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child ${this.pid}: no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  /** Waits for an event of kind `ev` for request `req` (or an error for it, which rejects). */
  async expect(req: string, ev: Event['ev'], timeoutMs = 15_000): Promise<Event> {
    const e = await this.waitFor((x) => x.req === req && (x.ev === ev || x.ev === 'error'), timeoutMs, `${ev} for ${req}`);
    if (e.ev === 'error' && ev !== 'error') throw new Error(`child ${this.pid} ${req}: ${e.name}: ${e.message}`);
    return e;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) process.kill(this.pid, sig);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    process.kill(this.pid, 'SIGKILL');
    await exited;
  }
}

/** Forks a worker and initialises its FairLocks. */
export async function spawnChild(url: string, prefix: string, options?: Record<string, number>): Promise<Child> {
  const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const child = new Child(proc);
  child.send({ op: 'init', url, prefix, options });
  const ready = await child.waitFor((e) => e.ev === 'ready', 20_000, 'ready');
  if (ready.ev === 'ready') child.sessionId = ready.sessionId;
  return child;
}

export async function stopAll(children: Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}
