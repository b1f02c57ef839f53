import { settledWithin } from './settled.js';

/**
 * A connection a seam makes for itself on first use (the WAIT connection of durable grants) and
 * closes with the FairLocks. A failed connect is forgotten, so the next use tries again.
 */
export class OwnConnection<C> {
  private connection: Promise<C> | undefined;
  private closed = false;

  constructor(
    private readonly open: () => Promise<C>,
    /** Drops the connection at once (no QUIT: see close()). */
    private readonly drop: (c: C) => Promise<void>,
  ) {}

  get(): Promise<C> {
    if (this.closed) return Promise.reject(new Error('the connection was closed'));
    this.connection ??= this.open().catch((err: unknown) => {
      this.connection = undefined;
      throw err;
    });
    return this.connection;
  }

  /**
   * Drops it (no QUIT: a WAIT in flight would hold a QUIT for its whole timeout, and node-redis 4
   * throws from its socket handler when it is then dropped with QUIT pending); never rejects. A
   * connection still being made after `boundMs` is dropped whenever it gets there.
   */
  async close(boundMs: number): Promise<void> {
    this.closed = true;
    const pending = this.connection;
    this.connection = undefined;
    if (!pending) return;
    await settledWithin(pending.then((c) => this.drop(c)).catch(() => undefined), boundMs);
  }
}
