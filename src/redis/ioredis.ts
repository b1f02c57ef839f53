/** The seam for ioredis 5 and 6. */
import { debug } from '../debug.js';
import { settledWithin } from './settled.js';
import type { IORedisClientLike, RedisSeam, Subscription } from './seam.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- ioredis is an optional peer: typed by shape only */
type AnyIORedis = IORedisClientLike & Record<string, any>;

export class IORedisSeam implements RedisSeam {
  readonly family = 'ioredis' as const;

  constructor(private readonly client: AnyIORedis) {}

  send(args: readonly string[]): Promise<unknown> {
    const [command, ...rest] = args;
    return this.client.call(command!, ...rest);
  }

  /**
   * ioredis resends the commands in flight after a reconnect by itself (autoResendUnfulfilledCommands);
   * what reaches us is a command given up on: the connection was closed, or it was retried
   * maxRetriesPerRequest times while Redis was unreachable.
   */
  droppedConnection(err: unknown): boolean {
    const e = err as { name?: string; message?: string; code?: unknown } | undefined;
    return e?.message === 'Connection is closed.' || e?.code === 'EPIPE' || e?.code === 'ECONNRESET';
  }

  async subscribe(channel: string, onMessage: (message: unknown) => void, onReconnect: () => void): Promise<Subscription> {
    // Whatever the user's client was told, the subscriber must connect now, queue while offline and
    // resubscribe after a reconnect.
    const sub = this.client.duplicate({ lazyConnect: false, enableOfflineQueue: true, autoResubscribe: true, enableReadyCheck: true }) as AnyIORedis;
    let ready = false;
    sub.on('error', (err: Error) => debug('subscriber error: %s', err?.message));
    sub.on('ready', () => {
      if (ready) onReconnect();
    });
    sub.on('message', (ch: string, message: unknown) => {
      if (ch === channel) onMessage(message);
    });
    try {
      await sub.subscribe(channel);
    } catch (err) {
      sub.disconnect();
      throw err;
    }
    ready = true;
    return {
      close: async (boundMs) => {
        const graceful = (async () => {
          await sub.unsubscribe(channel);
          await sub.quit();
        })().catch(() => sub.disconnect());
        if (!(await settledWithin(graceful, boundMs))) sub.disconnect();
      },
    };
  }
}
