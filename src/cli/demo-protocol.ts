/** The messages between `fairlock demo` and its worker processes. */
export type DemoOrder =
  /**
   * `permits`: contend for a fair semaphore of that many permits instead of a lock. `group`: take
   * every permit in that group (`demo --groups`: one worker per tenant).
   */
  | { op: 'init'; url: string; prefix: string; name: string; permits?: number; group?: string }
  /**
   * Take the lock or a permit and hold it until told to release (the demo decides when). `id` names
   * the request when a worker holds several at once (`demo --groups`); 0 when left out.
   */
  | { op: 'take'; id?: number }
  | { op: 'release'; id?: number }
  | { op: 'quit' };

export type DemoReport =
  | { ev: 'ready' }
  | { ev: 'queued'; position: number; at: number; id?: number }
  /**
   * `holders`: the tokens of every holder in Redis (inspect(), read while this one holds). `group`: the
   * group Redis lists this grant in ('' for the default group), from the same inspect().
   */
  | { ev: 'granted'; token: number; at: number; immediate: boolean; waitedMs: number; holders?: number[]; id?: number; group?: string }
  | { ev: 'releasing'; at: number; id?: number }
  | { ev: 'released'; at: number; id?: number }
  | { ev: 'error'; message: string };

/** Milliseconds on CLOCK_MONOTONIC, which every process on the machine shares. */
export const clock = (): number => Number(process.hrtime.bigint()) / 1e6;
