/**
 * The client seam: everything fairlock needs from a Redis client, so that node-redis 4, 5 and 6,
 * ioredis 5 and 6 and Valkey GLIDE 2.3+, each as a single-server client or a cluster client, can
 * serve behind one small interface. The rest of the library sees only this.
 */

/** What fairlock needs from the user's client. */
export interface RedisSeam {
  /** 'node-redis', 'ioredis' or 'glide': for messages and for the few places where they behave differently. */
  readonly family: ClientFamily;
  /**
   * True for a Redis Cluster client: each script runs on the master of its name's slot (routed by
   * `key`), and wake-ups go over sharded pub/sub, one channel per name in that name's slot.
   */
  readonly cluster: boolean;
  /** Sends one command (EVALSHA, EVAL) and resolves its raw reply; `key` (its first key) routes it on a cluster. */
  send(args: readonly string[], key: string): Promise<unknown>;
  /**
   * Sends `args` (a script that writes), then `WAIT replicas timeoutMs` on the same connection, so
   * the count covers that script's writes (and every write before them). Resolves the script's reply
   * and how many replicas acked, within `timeoutMs` plus one round trip whatever other calls do:
   * WAIT holds every command behind it, so it runs on connections of the seam's own (see WaitPool),
   * never on the one that carries the heartbeats. Rejects with WaitNotSent when no WAIT connection was
   * free in time; `signal` aborting means the caller gave up (the call rejects).
   */
  sendAndWait(args: readonly string[], key: string, replicas: number, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: unknown; acked: number }>;
  /** True when `err` says the connection dropped before the reply came: the command may or may not have run. */
  droppedConnection(err: unknown): boolean;
  /**
   * Opens a dedicated subscriber connection (made from the user's client, which is left alone) on
   * `channel`. `onMessage` gets every message; `onReconnect` runs each time the subscriber is back
   * after a drop (a message published meanwhile was lost). Single-server clients only.
   */
  subscribe(channel: string, onMessage: (message: unknown) => void, onReconnect: () => void): Promise<Subscription>;
  /**
   * Opens a dedicated sharded subscriber (a duplicate of the user's cluster client) that follows
   * each channel's slot to the master that owns it. Cluster clients only.
   */
  shardSubscriber(onMessage: (channel: string, message: unknown) => void): Promise<ShardSubscriber>;
  /** Closes the connections the seam made itself (the WAIT connections), or drops them after `boundMs`; never rejects. */
  close(boundMs: number): Promise<void>;
}

export interface Subscription {
  /** Unsubscribes and quits the subscriber connection, or drops it after `boundMs`; never rejects. */
  close(boundMs: number): Promise<void>;
}

/** Sharded subscriptions (SSUBSCRIBE), one channel at a time. */
export interface ShardSubscriber extends Subscription {
  add(channel: string): Promise<void>;
  remove(channel: string): Promise<void>;
}

export type ClientFamily = 'node-redis' | 'ioredis' | 'glide';

/* eslint-disable @typescript-eslint/no-explicit-any -- structural types that every supported client satisfies */

/** A node-redis 4, 5 or 6 client (`createClient()` from 'redis'), connected. */
export interface NodeRedisClientLike {
  /** Sends the scripts (EVALSHA, EVAL). */
  sendCommand(args: any, ...rest: any[]): Promise<any>;
  /** Makes the subscriber connection for wake-ups. */
  duplicate(...args: any[]): any;
  /** Must be true: connect the client first. */
  readonly isOpen: boolean;
}

/** A node-redis 4, 5 or 6 cluster client (`createCluster()` from 'redis'), connected. */
export interface NodeRedisClusterLike {
  /** Sends the scripts to the master of their first key's slot. */
  sendCommand(firstKey: any, isReadonly: any, args: any, ...rest: any[]): Promise<any>;
  /** Makes the sharded subscriber for wake-ups. */
  duplicate(...args: any[]): any;
  /** Must be true: connect the cluster client first. */
  readonly isOpen: boolean;
}

/** An ioredis 5 or 6 client (`new Redis()` from 'ioredis'), or cluster client (`new Cluster()`). */
export interface IORedisClientLike {
  /** Sends the scripts (EVALSHA, EVAL). */
  call(...args: any[]): Promise<any>;
  /** Makes the subscriber connection for wake-ups. */
  duplicate(...args: any[]): any;
  /** Anything but 'end' (a client closed with quit() or disconnect()). */
  readonly status: string;
}

/**
 * A Valkey GLIDE 2.3 or later client (`GlideClient.createClient()` or `GlideClusterClient.createClient()`
 * from '@valkey/valkey-glide'). fairlock makes its subscriber and WAIT connection with the client's
 * class from the configuration the client was made with.
 */
export interface GlideClientLike {
  /** Sends the scripts (EVALSHA, EVAL) and WAIT; on a cluster, routed to the master of the name's slot. */
  customCommand(args: any, ...rest: any[]): Promise<any>;
  /** Closes the client (fairlock closes only the clients it made). */
  close(...args: any[]): void;
}

/** Any client `new FairLocks(client)` accepts. */
export type RedisClientLike = NodeRedisClientLike | NodeRedisClusterLike | IORedisClientLike | GlideClientLike;
