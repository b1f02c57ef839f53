import { checkObject, type AcquireOptions } from '../options.js';
import { FairLock, type Engine } from './lock.js';

/**
 * A fair read-write lock: many readers or one writer, in FIFO order. Adjacent readers at the head
 * are granted together; a queued writer holds back the readers behind it, so no writer starves.
 */
export class FairReadWriteLock {
  /** @internal */
  constructor(
    private readonly engine: Engine,
    /** The name this handle locks. */
    readonly name: string,
    private readonly defaults: AcquireOptions,
  ) {}

  /**
   * The shared side: a handle with the lock's API. Inside a write's `using()` scope of this name its
   * acquire returns a nested lease at once (a downgrade: the write covers it).
   */
  read(options?: AcquireOptions): FairLock {
    return new FairLock(this.engine, this.name, { ...this.defaults, ...checkObject(options, 'read options') }, { kind: 'rw', limit: 0, mode: 'r' });
  }

  /**
   * The exclusive side: a handle with the lock's API. Inside a read's `using()` scope of this name its
   * acquire is refused with WouldDeadlockError (it would wait for that read for ever), unless a write's
   * scope encloses that read: then `acquire({ reentrant: true })` returns a nested write.
   */
  write(options?: AcquireOptions): FairLock {
    return new FairLock(this.engine, this.name, { ...this.defaults, ...checkObject(options, 'write options') }, { kind: 'rw', limit: 0, mode: 'w' });
  }
}
