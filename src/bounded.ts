/**
 * The one bounded wait of fairlock (library and command line alike): a promise raced against a
 * timer that is always cleared, so that a wait for Redis, a child or a user never hangs its caller
 * and never keeps the process alive after it ended.
 */

/**
 * `work`'s value, or a rejection with `onTimeout()` once `ms` passed first (by default an Error
 * "no answer within N ms"). `work` itself is not cancelled: it goes on, and its outcome is ignored.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => unknown = () => new Error(`no answer within ${ms} ms`)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether `work` fulfilled within `ms`: false when it rejected or is still running. Never rejects:
 * for clean-up that must end (close, quit, a child's exit) and for "stop asked before the next tick?".
 */
export async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  return withTimeout(work, ms).then(
    () => true,
    () => false,
  );
}

/** Whether `work` settled (fulfilled or rejected) within `ms`. Never rejects. */
export function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return within(work.then(
    () => undefined,
    () => undefined,
  ), ms);
}
