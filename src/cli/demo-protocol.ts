/** The messages between `fairlock demo` and its worker processes. */
export type DemoOrder = { op: 'init'; url: string; prefix: string; name: string } | { op: 'acquire'; holdMs: number } | { op: 'quit' };

export type DemoReport =
  | { ev: 'ready' }
  | { ev: 'queued'; position: number; at: number }
  | { ev: 'granted'; token: number; at: number; immediate: boolean; waitedMs: number }
  | { ev: 'releasing'; at: number }
  | { ev: 'released'; at: number }
  | { ev: 'error'; message: string };

/** Milliseconds on CLOCK_MONOTONIC, which every process on the machine shares. */
export const clock = (): number => Number(process.hrtime.bigint()) / 1e6;

