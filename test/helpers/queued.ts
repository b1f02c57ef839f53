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

/**
 * Resolves with the signal's reason once it is aborted, also when it already was: a lease lost before
 * its signal was first read hands out a signal that is aborted from the start and never fires
 * 'abort' (a test that only listened hung for ever on a loaded machine).
 */
export function whenAborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(signal.reason);
      return;
    }
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}
