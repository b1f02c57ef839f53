/** The seams for ioredis 5 and 6: `new Redis()` and `new Cluster()`. */
import { debug } from '../debug.js';
import { settledWithin } from './settled.js';
import { OwnConnection } from './own-connection.js';
import type { IORedisClientLike, RedisSeam, ShardSubscriber, Subscription } from './seam.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- ioredis is an optional peer: typed by shape only */
type AnyIORedis = IORedisClientLike & Record<string, any>;

/**
 * ioredis resends the commands in flight after a reconnect by itself (autoResendUnfulfilledCommands);
 * what reaches us is a command given up on: the connection was closed, or it was retried
 * maxRetriesPerRequest times while Redis was unreachable.
 */
function droppedConnection(err: unknown): boolean {
  const e = err as { name?: string; message?: string; code?: unknown } | undefined;
  return e?.message === 'Connection is closed.' || e?.code === 'EPIPE' || e?.code === 'ECONNRESET';
}

/** durability's WAIT connection: a duplicate (`make`) connected on first use, dropped at close. */
function waitConnection(make: () => AnyIORedis): OwnConnection<AnyIORedis> {
  return new OwnConnection(
    () => ready(make()),
    async (c) => c.disconnect(),
  );
}

/** Resolves `c` once ready (a Redis or a Cluster); an end before that rejects. */
function ready(c: AnyIORedis): Promise<AnyIORedis> {
  c.on('error', (err: Error) => debug('WAIT connection error: %s', err?.message));
  if (c.status === 'ready') return Promise.resolve(c);
  return new Promise((resolve, reject) => {
    c.once('ready', () => resolve(c));
    c.once('end', () => reject(new Error('the WAIT connection ended before it was ready')));
  });
}

function send(client: AnyIORedis, args: readonly string[]): Promise<unknown> {
  const [command, ...rest] = args;
  return client.call(command!, ...rest);
}

export class IORedisSeam implements RedisSeam {
  readonly family = 'ioredis' as const;
  readonly cluster = false;
  private readonly waiter = waitConnection(() => this.client.duplicate({ lazyConnect: false, enableOfflineQueue: true }));

  constructor(private readonly client: AnyIORedis) {}

  send(args: readonly string[]): Promise<unknown> {
    return send(this.client, args);
  }

  close(boundMs: number): Promise<void> {
    return this.waiter.close(boundMs);
  }

  async sendAndWait(args: readonly string[], _key: string, replicas: number, timeoutMs: number): Promise<{ reply: unknown; acked: number }> {
    const c = await this.waiter.get();
    // One connection writes commands in call order: WAIT goes out right behind the script (one round trip).
    const script = send(c, args);
    const wait = c.call('WAIT', String(replicas), String(timeoutMs)) as Promise<unknown>;
    wait.catch(() => undefined); // when the script fails, its error is the one reported
    const reply = await script;
    return { reply, acked: Number(await wait) };
  }

  droppedConnection = droppedConnection;

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

  shardSubscriber(): Promise<ShardSubscriber> {
    return Promise.reject(new Error('sharded wake-ups are for cluster clients'));
  }
}

/** ioredis's `new Cluster()`: it routes EVALSHA by its keys, follows MOVED/ASK and retries TRYAGAIN/CLUSTERDOWN. */
export class IORedisClusterSeam implements RedisSeam {
  readonly family = 'ioredis' as const;
  readonly cluster = true;
  private readonly waiter = waitConnection(() => this.client.duplicate([], { lazyConnect: false, enableOfflineQueue: true }));

  constructor(private readonly client: AnyIORedis) {}

  send(args: readonly string[]): Promise<unknown> {
    return send(this.client, args);
  }

  close(boundMs: number): Promise<void> {
    return this.waiter.close(boundMs);
  }

  async sendAndWait(args: readonly string[], key: string, replicas: number, timeoutMs: number): Promise<{ reply: unknown; acked: number }> {
    // The script alone first, so that ioredis follows MOVED/ASK and retries TRYAGAIN for it (in a
    // pipeline with WAIT, a redirect of the script alone comes back as an error). Then WAIT, which has
    // no key: pipelined behind a read of the script's key it goes to that key's master, on the one
    // connection ioredis keeps per node, the one that ran the script.
    const c = await this.waiter.get();
    const reply = await send(c, args);
    const results = (await c.pipeline().call('EXISTS', key).call('WAIT', String(replicas), String(timeoutMs)).exec()) as [Error | null, unknown][];
    for (const [err] of results) if (err) throw err;
    return { reply, acked: Number(results[1]![1]) };
  }

  droppedConnection = droppedConnection;

  subscribe(): Promise<Subscription> {
    return Promise.reject(new Error('a cluster client takes sharded wake-ups'));
  }

  /**
   * A duplicate with `shardedSubscribers`: one subscriber connection per master, each SSUBSCRIBE
   * sent to its slot's owner, re-subscribed when the topology changes. A message published
   * meanwhile is lost: the heartbeat finds that grant.
   */
  async shardSubscriber(onMessage: (channel: string, message: unknown) => void): Promise<ShardSubscriber> {
    const sub = this.client.duplicate([], { shardedSubscribers: true, lazyConnect: false, enableOfflineQueue: true }) as AnyIORedis;
    sub.on('error', (err: Error) => debug('sharded subscriber error: %s', err?.message));
    sub.on('smessage', (channel: string, message: unknown) => onMessage(channel, message));
    return {
      add: async (channel) => {
        await sub.ssubscribe(channel);
      },
      remove: async (channel) => {
        await sub.sunsubscribe(channel);
      },
      close: async (boundMs) => {
        const graceful = sub.quit().catch(() => sub.disconnect());
        if (!(await settledWithin(graceful, boundMs))) sub.disconnect();
      },
    };
  }
}
