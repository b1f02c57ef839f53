/**
 * The bench's child processes: P workers, each started with tsx and stopped by PID. Each one's clock
 * offset against ours is measured right after it starts (`clockAtStart`) and again by whoever
 * compares its stamps (`measureClock`; see clock.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measureOffset, type ClockOffset } from './clock.js';
import type { WorkerCommand, WorkerReply } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

export class Worker {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  readonly errors: string[] = [];
  /** The worker's clock against ours, measured as soon as it was up. */
  clockAtStart: ClockOffset = { offsetMs: NaN, uncertaintyMs: NaN };

  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (r: WorkerReply) => {
      if (r.id === -1 && !r.ok) this.errors.push(r.error);
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r);
      else p.reject(new Error(`worker ${proc.pid}: ${r.error}`));
    });
    proc.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`worker ${proc.pid} exited`));
      this.pending.clear();
    });
  }

  static async start(): Promise<Worker> {
    const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const w = new Worker(proc);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bench worker did not start within 20 s')), 20_000);
      proc.once('message', () => (clearTimeout(timer), resolve()));
      proc.once('exit', (code) => (clearTimeout(timer), reject(new Error(`bench worker exited with ${code}`))));
    });
    try {
      w.clockAtStart = await w.measureClock();
    } catch (err) {
      await w.stop();
      throw err;
    }
    return w;
  }

  /** The worker's clock against ours now: IPC ping-pongs, the tightest kept (clock.ts measureOffset). */
  async measureClock(rounds = 20): Promise<ClockOffset> {
    const { offsetMs, uncertaintyMs } = await measureOffset(async () => {
      const r = await this.call({ op: 'clock' }, 5_000);
      if (!r.ok || typeof r.clock !== 'number') throw new Error(`worker ${this.pid}: no clock in its answer`);
      return r.clock;
    }, rounds);
    return { offsetMs, uncertaintyMs };
  }

  get pid(): number {
    return this.proc.pid!;
  }

  call(cmd: Body<WorkerCommand>, timeoutMs: number): Promise<WorkerReply> {
    const id = ++this.seq;
    return new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${this.pid}: no reply to ${cmd.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.proc.send({ ...cmd, id });
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    process.kill(this.pid, 'SIGKILL');
    await exited;
  }
}

export async function startPool(n: number): Promise<Worker[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, () => Worker.start()));
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map((w) => w.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return ok;
}

export async function stopPool(pool: Worker[]): Promise<void> {
  await Promise.all(pool.map((w) => w.stop()));
}
