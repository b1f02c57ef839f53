import { Mutex } from 'async-mutex';
import { debug } from '../debug.js';
import type { RedisSeam, Subscription } from '../redis/seam.js';

/**
 * The one subscriber connection of a FairLocks instance, on the one channel of its session.
 * Release scripts publish "waiterId token exp" there; the session routes it to the waiting promise.
 * node-redis resubscribes by itself after a reconnect; a message published while the connection was
 * down is lost, so `onReconnect` runs a heartbeat at once to find grants that happened meanwhile.
 */
export class Wakeups {
  private sub: Subscription | undefined;
  private connecting: Promise<void> | undefined;
  private readonly mutex = new Mutex();
  private ready = false;

  constructor(
    private readonly redis: RedisSeam,
    private readonly channel: string,
    private readonly onMessage: (message: unknown) => void,
    private readonly onReconnect: () => void,
  ) {}

  /** Connects and subscribes once; every waiter awaits this before it enters a queue. */
  start(): Promise<void> {
    if (this.ready) return Promise.resolve();
    this.connecting ??= this.mutex
      .runExclusive(() => this.connect())
      .catch((err: unknown) => {
        this.connecting = undefined; // let the next waiter try again
        throw err;
      });
    return this.connecting;
  }

  private async connect(): Promise<void> {
    this.sub = await this.redis.subscribe(
      this.channel,
      (message) => {
        try {
          this.onMessage(message);
        } catch (err) {
          debug('wake-up handler failed: %s', (err as Error)?.message);
        }
      },
      () => {
        debug('subscriber reconnected');
        try {
          this.onReconnect();
        } catch (err) {
          debug('beat after reconnect failed: %s', (err as Error)?.message);
        }
      },
    );
    this.ready = true;
  }

  /** Unsubscribes and quits; after `boundMs` without an answer, drops the connection instead. */
  async close(boundMs: number): Promise<void> {
    await this.mutex.runExclusive(async () => {
      const sub = this.sub;
      this.sub = undefined;
      this.ready = false;
      this.connecting = undefined;
      await sub?.close(boundMs);
    });
  }
}
