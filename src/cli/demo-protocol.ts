/** The messages between `fairlock demo` and its worker processes. */
export type DemoOrder =
  /** `permits`: contend for a fair semaphore of that many permits instead of a lock. */
  | { op: 'init'; url: string; prefix: string; name: string; permits?: number }
  /** Take the lock or a permit and hold it until told to release (the demo decides when). */
  | { op: 'take' }
  | { op: 'release' }
  | { op: 'quit' };

export type DemoReport =
  | { ev: 'ready' }
  | { ev: 'queued'; position: number; at: number }
  /** `holders`: the tokens of every holder in Redis (inspect(), read while this one holds). */
  | { ev: 'granted'; token: number; at: number; immediate: boolean; waitedMs: number; holders?: number[] }
  | { ev: 'releasing'; at: number }
  | { ev: 'released'; at: number }
  | { ev: 'error'; message: string };

/** Milliseconds on CLOCK_MONOTONIC, which every process on the machine shares. */
export const clock = (): number => Number(process.hrtime.bigint()) / 1e6;
