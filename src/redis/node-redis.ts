/** The seam for node-redis 4, 5 and 6: their `sendCommand`, `duplicate` and `subscribe` agree. */
import { debug } from '../debug.js';
import type { NodeRedisClientLike, RedisSeam, Subscription } from './seam.js';
import { settledWithin } from './settled.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the three majors' types differ; only the shared shape is used */
type AnyNodeRedis = NodeRedisClientLike & Record<string, any>;

export class NodeRedisSeam implements RedisSeam {
  readonly family = 'node-redis' as const;

  constructor(private readonly client: AnyNodeRedis) {}

  send(args: readonly string[]): Promise<unknown> {
    return this.client.sendCommand([...args]);
  }

  /**
   * node-redis rejects the commands in flight with SocketClosedUnexpectedlyError when the socket
   * drops; a write to a socket the server just closed fails with EPIPE or ECONNRESET.
   */
  droppedConnection(err: unknown): boolean {
    const e = err as { constructor?: { name?: string }; name?: string; code?: unknown } | undefined;
    return e?.constructor?.name === 'SocketClosedUnexpectedlyError' || e?.name === 'SocketClosedUnexpectedlyError' || e?.code === 'EPIPE' || e?.code === 'ECONNRESET';
  }

  async subscribe(channel: string, onMessage: (message: unknown) => void, onReconnect: () => void): Promise<Subscription> {
    const sub = this.client.duplicate() as AnyNodeRedis;
    let ready = false;
    sub.on('error', (err: Error) => debug('subscriber error: %s', err?.message));
    // node-redis resubscribes by itself after a reconnect; what was published meanwhile is lost.
    sub.on('ready', () => {
      if (ready) onReconnect();
    });
    try {
      await sub.connect();
      await sub.subscribe(channel, (message: unknown) => onMessage(message));
    } catch (err) {
      await closeQuietly(sub, false);
      throw err;
    }
    ready = true;
    return {
      close: async (boundMs) => {
        const graceful = (async () => {
          await sub.unsubscribe(channel).catch(() => undefined);
          await closeQuietly(sub, true);
        })();
        if (!(await settledWithin(graceful, boundMs))) await closeQuietly(sub, false);
      },
    };
  }
}

/** v5 and v6 name them close()/destroy(); v4 quit()/disconnect(). */
async function closeQuietly(client: AnyNodeRedis, graceful: boolean): Promise<void> {
  try {
    if (graceful) await (typeof client.close === 'function' ? client.close() : client.quit());
    else await (typeof client.destroy === 'function' ? client.destroy() : client.disconnect());
  } catch {
    try {
      await (typeof client.destroy === 'function' ? client.destroy() : client.disconnect());
    } catch {
      // already closed
    }
  }
}
