/** The seams for node-redis 4, 5 and 6: their `sendCommand`, `duplicate` and (s)subscribe agree. */
import { debug } from '../debug.js';
import type { NodeRedisClientLike, NodeRedisClusterLike, RedisSeam, ShardSubscriber, Subscription } from './seam.js';
import { settledWithin } from '../bounded.js';
import { settle, WaitPool } from './wait-pool.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the three majors' types differ; only the shared shape is used */
type AnyNodeRedis = NodeRedisClientLike & Record<string, any>;
type AnyNodeCluster = NodeRedisClusterLike & Record<string, any>;

/**
 * node-redis rejects the commands in flight with SocketClosedUnexpectedlyError when the socket
 * drops; a write to a socket the server just closed fails with EPIPE or ECONNRESET.
 */
function droppedConnection(err: unknown): boolean {
  const e = err as { constructor?: { name?: string }; name?: string; code?: unknown } | undefined;
  return e?.constructor?.name === 'SocketClosedUnexpectedlyError' || e?.name === 'SocketClosedUnexpectedlyError' || e?.code === 'EPIPE' || e?.code === 'ECONNRESET';
}

export class NodeRedisSeam implements RedisSeam {
  readonly family = 'node-redis' as const;
  readonly cluster = false;
  private readonly waits = new WaitPool<AnyNodeRedis>({
    open: () => connectedDuplicate(this.client, 'WAIT connection'),
    drop: (c) => closeQuietly(c, false),
    acrossKeys: true,
    run: async (c, scripts, _key, replicas, timeoutMs) => {
      // One connection writes commands in call order: WAIT goes out right behind the scripts (one round trip).
      const replies = scripts.map((s) => c.sendCommand([...s]) as Promise<unknown>);
      const acked = settle(c.sendCommand(['WAIT', String(replicas), String(timeoutMs)]).then(Number));
      return { replies: await Promise.allSettled(replies), acked: await acked };
    },
  });

  constructor(private readonly client: AnyNodeRedis) {}

  send(args: readonly string[]): Promise<unknown> {
    return this.client.sendCommand([...args]);
  }

  sendAndWait(args: readonly string[], key: string, replicas: number, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: unknown; acked: number }> {
    return this.waits.send(args, key, replicas, timeoutMs, signal);
  }

  close(boundMs: number): Promise<void> {
    return this.waits.close(boundMs);
  }

  droppedConnection = droppedConnection;

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

  shardSubscriber(): Promise<ShardSubscriber> {
    return Promise.reject(new Error('sharded wake-ups are for cluster clients'));
  }
}

/** node-redis's `createCluster()`: scripts go to the master of their first key's slot. */
export class NodeRedisClusterSeam implements RedisSeam {
  readonly family = 'node-redis' as const;
  readonly cluster = true;
  private readonly waits = new WaitPool<AnyNodeCluster>({
    open: () => connectedDuplicate(this.client, 'WAIT connection'),
    drop: (c) => closeQuietly(c as unknown as AnyNodeRedis, false),
    acrossKeys: false,
    run: async (c, scripts, key, replicas, timeoutMs) => {
      // A cluster client of its own keeps one connection per master; routed by the same key, WAIT
      // takes the scripts' connection. Sent after their replies: a redirect may have moved a script.
      const replies = await Promise.allSettled(scripts.map((s) => c.sendCommand(key, false, [...s]) as Promise<unknown>));
      return { replies, acked: await settle(c.sendCommand(key, false, ['WAIT', String(replicas), String(timeoutMs)]).then(Number)) };
    },
  });

  constructor(private readonly client: AnyNodeCluster) {}

  send(args: readonly string[], key: string): Promise<unknown> {
    return this.client.sendCommand(key, false, [...args]);
  }

  sendAndWait(args: readonly string[], key: string, replicas: number, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: unknown; acked: number }> {
    return this.waits.send(args, key, replicas, timeoutMs, signal);
  }

  close(boundMs: number): Promise<void> {
    return this.waits.close(boundMs);
  }

  droppedConnection = droppedConnection;

  subscribe(): Promise<Subscription> {
    return Promise.reject(new Error('a cluster client takes sharded wake-ups'));
  }

  /**
   * node-redis keeps one sharded subscriber connection per master in the duplicate, sends each
   * SSUBSCRIBE to the channel's slot owner, follows MOVED, and re-subscribes a channel whose slot
   * migrated (Redis then sends SUNSUBSCRIBE). A message published meanwhile is lost: the heartbeat
   * finds that grant.
   */
  async shardSubscriber(onMessage: (channel: string, message: unknown) => void): Promise<ShardSubscriber> {
    const sub = await connectedDuplicate(this.client, 'sharded subscriber');
    const listener = (message: unknown, channel: unknown) => onMessage(String(channel), message);
    return {
      add: (channel) => sub.sSubscribe(channel, listener),
      remove: (channel) => sub.sUnsubscribe(channel, listener),
      close: async (boundMs) => {
        if (!(await settledWithin(closeQuietly(sub as unknown as AnyNodeRedis, true), boundMs))) await closeQuietly(sub as unknown as AnyNodeRedis, false);
      },
    };
  }
}

/**
 * node-redis 5 and 6's `createSentinel()`: commands go to the master the sentinels name, through
 * its pool; it has no duplicate(), so the wake-ups ride on its own subscriber, which follows the
 * master after a failover.
 */
export class NodeRedisSentinelSeam implements RedisSeam {
  readonly family = 'node-redis' as const;
  readonly cluster = false;

  constructor(private readonly client: AnyNodeRedis) {}

  send(args: readonly string[]): Promise<unknown> {
    return this.client.sendCommand(false, [...args]);
  }

  /** A pool lease: the script and WAIT on one connection, which nobody else uses meanwhile. */
  async sendAndWait(args: readonly string[], _key: string, replicas: number, timeoutMs: number): Promise<{ reply: unknown; acked: number }> {
    const lease = await this.client.acquire();
    try {
      const script = lease.sendCommand([...args]) as Promise<unknown>;
      const wait = lease.sendCommand(['WAIT', String(replicas), String(timeoutMs)]) as Promise<unknown>;
      wait.catch(() => undefined);
      const reply = await script;
      return { reply, acked: Number(await wait) };
    } finally {
      lease.release();
    }
  }

  droppedConnection = droppedConnection;

  /** Nothing of its own to close: WAIT runs on a lease of the sentinel client's master pool. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  async subscribe(channel: string, onMessage: (message: unknown) => void, onReconnect: () => void): Promise<Subscription> {
    const listener = (message: unknown) => onMessage(message);
    // A new master: what was published while the subscriber moved is lost, so beat at once.
    const onTopology = (event: { type?: string } | undefined) => {
      if (event?.type === 'MASTER_CHANGE') onReconnect();
    };
    this.client.on('topology-change', onTopology);
    try {
      await this.client.subscribe(channel, listener);
    } catch (err) {
      this.client.off('topology-change', onTopology);
      throw err;
    }
    return {
      close: async (boundMs) => {
        this.client.off('topology-change', onTopology);
        await settledWithin(this.client.unsubscribe(channel, listener), boundMs);
      },
    };
  }

  shardSubscriber(): Promise<ShardSubscriber> {
    return Promise.reject(new Error('sharded wake-ups are for cluster clients'));
  }
}

/** A connected duplicate of `client` (a client or a cluster client) whose errors are logged as `role`'s; dropped if it cannot connect. */
async function connectedDuplicate<C extends AnyNodeRedis | AnyNodeCluster>(client: C, role: string): Promise<C> {
  const c = client.duplicate() as C;
  c.on('error', (err: Error) => debug('%s error: %s', role, err?.message));
  try {
    await c.connect();
  } catch (err) {
    await closeQuietly(c as unknown as AnyNodeRedis, false);
    throw err;
  }
  return c;
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
