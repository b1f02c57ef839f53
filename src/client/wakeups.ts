import { Mutex } from 'async-mutex';
import { debug } from '../debug.js';
import { FairLockError } from '../errors.js';
import { shardWakeChannel, wakeChannel } from '../protocol/keys.js';
import type { RedisSeam, ShardSubscriber, Subscription } from '../redis/seam.js';

/** How long a name's shard channel stays subscribed after its last waiter: a busy name is not re-subscribed at every wait. */
const SHARD_IDLE_MS = 30_000;

/** One shard channel's wanted and actual state; `chain` runs its SSUBSCRIBE / SUNSUBSCRIBE one at a time. */
interface ShardChannel {
  want: boolean;
  on: boolean;
  /** Steps queued on `chain` and not done: a refresh then waits for them instead of adding its own. */
  busy: number;
  chain: Promise<unknown>;
  idle: NodeJS.Timeout | undefined;
}

/**
 * The wake-up subscriber of a FairLocks instance. Release scripts publish "waiterId token exp"; the
 * session routes it to the waiting promise. A message published while the subscriber was away is
 * lost, so the heartbeat (and `onReconnect`, at once) finds the grants that happened meanwhile.
 *
 * One Redis: one connection on the one channel of the session (PUBLISH).
 * A cluster: sharded pub/sub, one channel per name and session in the name's slot (SPUBLISH), so a
 * wake-up stays in the shard that owns the name. A name's channel is subscribed when the session
 * first queues on it (then a beat finds a grant made before the subscription took) and dropped
 * SHARD_IDLE_MS after the session stops using the name.
 */
export class Wakeups {
  private sub: Subscription | undefined;
  private shard: ShardSubscriber | undefined;
  private readonly channels = new Map<string, ShardChannel>();
  private connecting: Promise<void> | undefined;
  private readonly mutex = new Mutex();
  private ready = false;
  private closed = false;

  constructor(
    private readonly redis: RedisSeam,
    private readonly prefix: string,
    private readonly sessionId: string,
    private readonly onMessage: (message: unknown) => void,
    private readonly onReconnect: () => void,
  ) {}

  get sharded(): boolean {
    return this.redis.cluster;
  }

  /** Connects (and on one Redis subscribes) once; every waiter awaits this before it enters a queue. */
  start(): Promise<void> {
    // A step of a channel's chain still running when close() came must not open a new subscriber.
    if (this.closed) return Promise.reject(new Error('the wake-up subscriber is closed'));
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
    const deliver = (message: unknown) => {
      try {
        this.onMessage(message);
      } catch (err) {
        debug('wake-up handler failed: %s', (err as Error)?.message);
      }
    };
    if (this.redis.cluster) {
      await this.checkShardedPubSub();
      const shard = await this.redis.shardSubscriber((_channel, message) => deliver(message));
      if (this.closed) {
        await shard.close(1_000); // close() came while it connected
        throw new Error('the wake-up subscriber is closed');
      }
      this.shard = shard;
    } else {
      this.sub = await this.redis.subscribe(wakeChannel(this.prefix, this.sessionId), deliver, () => {
        debug('subscriber reconnected');
        try {
          this.onReconnect();
        } catch (err) {
          debug('beat after reconnect failed: %s', (err as Error)?.message);
        }
      });
    }
    this.ready = true;
  }

  /**
   * A Redis Cluster before 7.0 has no sharded pub/sub: no wake-up would ever arrive (every hand-off
   * would wait for the next heartbeat), so waits are refused at once, naming the server. Classic
   * PUBLISH would work but sends every wake-up to every node of the cluster (README, "Supported
   * servers": scripts/bench/cluster-pubsub.ts measured it). INFO's redis_version answers (Valkey
   * reports 7.2); when INFO is refused (an ACL) the subscription reports a missing SSUBSCRIBE instead.
   * (A probe SPUBLISH through an ioredis 5 Cluster client made the cluster property suite fail, for
   * a reason not found; INFO does not.)
   */
  private async checkShardedPubSub(): Promise<void> {
    const key = shardWakeChannel(this.prefix, 'probe', this.sessionId);
    let version: string | undefined;
    try {
      version = /^redis_version:(\S+)/m.exec(String(await this.redis.send(['INFO', 'server'], key)))?.[1];
    } catch {
      return;
    }
    if (!version || Number(version.split('.')[0]) >= 7) return;
    throw new FairLockError(
      `this Redis Cluster runs Redis ${version}, which has no sharded pub/sub (SPUBLISH, SSUBSCRIBE: Redis 7.0 or later, or Valkey): ` +
        'fairlock cannot wake a waiter on it, so acquire() is refused (tryAcquire() and acquire({ timeoutMs: 0 }), which never wait, work). ' +
        'Use Redis 7.0 or later, Valkey, or one Redis (6.2 is supported there)',
      'UNSUPPORTED_SERVER',
    );
  }

  /**
   * Cluster: makes sure the shard channel of `name` is subscribed. Resolves true when this call
   * subscribed it (a grant published before may have been missed: the caller beats once).
   */
  async watch(name: string): Promise<boolean> {
    if (!this.redis.cluster || this.closed) return false;
    const channel = shardWakeChannel(this.prefix, name, this.sessionId);
    let c = this.channels.get(channel);
    if (!c) {
      c = { want: true, on: false, busy: 0, chain: Promise.resolve(), idle: undefined };
      this.channels.set(channel, c);
    }
    clearTimeout(c.idle);
    c.idle = undefined;
    c.want = true;
    if (c.on) return false;
    await this.sync(channel, c);
    return true;
  }

  /** Cluster: the session no longer waits on `name`; its channel goes after SHARD_IDLE_MS unless watched again. */
  unwatch(name: string): void {
    const channel = shardWakeChannel(this.prefix, name, this.sessionId);
    const c = this.channels.get(channel);
    if (!c || c.idle) return;
    c.idle = setTimeout(() => {
      c.idle = undefined;
      c.want = false;
      this.sync(channel, c).catch(() => undefined);
    }, SHARD_IDLE_MS);
    c.idle.unref();
  }

  /**
   * Cluster: the node that owns the name has no subscriber on this session's channel (a beat asked
   * it). The client library is subscribed on a node that no longer owns the slot (a failover or a
   * migration it did not follow), or not at all: subscribe again, which goes to the slot's owner now.
   */
  refresh(name: string): void {
    const channel = shardWakeChannel(this.prefix, name, this.sessionId);
    const c = this.channels.get(channel);
    // A subscription still on its way (a beat saw 0 before it landed) is not refreshed.
    if (!c?.want || c.busy > 0) return;
    debug('re-subscribing %s', channel);
    c.busy++;
    const step = c.chain.then(async () => {
      if (this.closed) return;
      if (c.on) {
        c.on = false;
        await this.shard?.remove(channel).catch(() => undefined);
      }
      if (c.want) {
        await this.start();
        await this.shard!.add(channel);
        c.on = true;
      }
    });
    c.chain = step.catch((err: unknown) => debug('re-subscribing %s failed: %s', channel, (err as Error)?.message)).finally(() => c.busy--);
  }

  /** Brings one channel to what is wanted, after the operations already queued on it. */
  private sync(channel: string, c: ShardChannel): Promise<void> {
    c.busy++;
    const step = c.chain.then(async () => {
      if (this.closed) return;
      if (c.want && !c.on) {
        await this.start();
        await this.shard!.add(channel);
        c.on = true;
      } else if (!c.want && c.on) {
        c.on = false;
        await this.shard?.remove(channel);
      }
      if (!c.want && !c.on && this.channels.get(channel) === c) this.channels.delete(channel);
    });
    c.chain = step.catch(() => undefined).finally(() => c.busy--);
    return step;
  }

  /** Unsubscribes and quits; after `boundMs` without an answer, drops the connection instead. */
  async close(boundMs: number): Promise<void> {
    this.closed = true;
    for (const c of this.channels.values()) clearTimeout(c.idle);
    this.channels.clear();
    await this.mutex.runExclusive(async () => {
      const sub = this.sub ?? this.shard;
      this.sub = undefined;
      this.shard = undefined;
      this.ready = false;
      this.connecting = undefined;
      await sub?.close(boundMs);
    });
  }
}
