/** The seams for ioredis 5 and 6: `new Redis()` and `new Cluster()`. */
import { debug } from '../debug.js';
import { settledWithin } from '../bounded.js';
import { settle, WaitPool, type WaitDriver } from './wait-pool.js';
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

/** durability's WAIT connections: duplicates (`make`) connected on demand, dropped at close. */
function waitPool(make: () => AnyIORedis, acrossKeys: boolean, run: WaitDriver<AnyIORedis>['run']): WaitPool<AnyIORedis> {
  return new WaitPool({ open: () => ready(make()), drop: async (c) => c.disconnect(), acrossKeys, run });
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

/** What both ioredis seams do alike: commands through `call`, WAIT through their pool, the dropped-connection test. */
abstract class IORedisBase {
  protected abstract readonly waits: WaitPool<AnyIORedis>;

  constructor(protected readonly client: AnyIORedis) {}

  send(args: readonly string[]): Promise<unknown> {
    return send(this.client, args);
  }

  close(boundMs: number): Promise<void> {
    return this.waits.close(boundMs);
  }

  sendAndWait(args: readonly string[], key: string, replicas: number, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: unknown; acked: number }> {
    return this.waits.send(args, key, replicas, timeoutMs, signal);
  }

  droppedConnection = droppedConnection;
}

export class IORedisSeam extends IORedisBase implements RedisSeam {
  readonly family = 'ioredis' as const;
  readonly cluster = false;
  protected readonly waits = waitPool(() => this.client.duplicate({ lazyConnect: false, enableOfflineQueue: true }), true, async (c, scripts, _key, replicas, timeoutMs) => {
    // One connection writes commands in call order: WAIT goes out right behind the scripts (one round trip).
    const replies = scripts.map((s) => send(c, s));
    const acked = settle((c.call('WAIT', String(replicas), String(timeoutMs)) as Promise<unknown>).then(Number));
    return { replies: await Promise.allSettled(replies), acked: await acked };
  });


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
export class IORedisClusterSeam extends IORedisBase implements RedisSeam {
  readonly family = 'ioredis' as const;
  readonly cluster = true;
  protected readonly waits = waitPool(() => this.client.duplicate([], { lazyConnect: false, enableOfflineQueue: true }), false, async (c, scripts, key, replicas, timeoutMs) => {
    // The scripts alone first, so that ioredis follows MOVED/ASK and retries TRYAGAIN for them (in a
    // pipeline with WAIT, a redirect of a script alone comes back as an error). Then WAIT, which has
    // no key: pipelined behind a read of the scripts' key it goes to that key's master, on the one
    // connection ioredis keeps per node, the one that ran the scripts.
    const replies = await Promise.allSettled(scripts.map((s) => send(c, s)));
    const acked = settle(
      (c.pipeline().call('EXISTS', key).call('WAIT', String(replicas), String(timeoutMs)).exec() as Promise<[Error | null, unknown][]>).then((results) => {
        for (const [err] of results) if (err) throw err;
        return Number(results[1]![1]);
      }),
    );
    return { replies, acked: await acked };
  });


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
