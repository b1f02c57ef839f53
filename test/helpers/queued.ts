/** For tests that must know a waiter is in the Redis queue before they go on. */
export interface WhenQueued {
  /** Pass as `onQueued` to acquire(). */
  onQueued: (position: number) => void;
  /** Resolves with the position once the waiter is in the queue. */
  queued: Promise<number>;
}

export function whenQueued(): WhenQueued {
  let onQueued!: (position: number) => void;
  const queued = new Promise<number>((resolve) => (onQueued = resolve));
  return { onQueued, queued };
}
