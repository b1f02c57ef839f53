/**
 * The client seam: everything fairlock needs from a Redis client, so that node-redis 4, 5 and 6 and
 * ioredis 5 and 6 can serve behind one small interface. The rest of the library sees only this.
 */

/** What fairlock needs from the user's client. */
export interface RedisSeam {
  /** 'node-redis' or 'ioredis': for messages and for the few places where they behave differently. */
  readonly family: ClientFamily;
  /** Sends one command (EVALSHA, EVAL) and resolves its raw reply. */
  send(args: readonly string[]): Promise<unknown>;
  /** True when `err` says the connection dropped before the reply came: the command may or may not have run. */
  droppedConnection(err: unknown): boolean;
  /**
   * Opens a dedicated subscriber connection (made from the user's client, which is left alone) on
   * `channel`. `onMessage` gets every message; `onReconnect` runs each time the subscriber is back
   * after a drop (a message published meanwhile was lost).
   */
  subscribe(channel: string, onMessage: (message: unknown) => void, onReconnect: () => void): Promise<Subscription>;
}

export interface Subscription {
  /** Unsubscribes and quits the subscriber connection, or drops it after `boundMs`; never rejects. */
  close(boundMs: number): Promise<void>;
}

export type ClientFamily = 'node-redis' | 'ioredis';

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

/** An ioredis 5 or 6 client (`new Redis()` from 'ioredis'). */
export interface IORedisClientLike {
  /** Sends the scripts (EVALSHA, EVAL). */
  call(...args: any[]): Promise<any>;
  /** Makes the subscriber connection for wake-ups. */
  duplicate(...args: any[]): any;
  /** Anything but 'end' (a client closed with quit() or disconnect()). */
  readonly status: string;
}

/** Any client `new FairLocks(client)` accepts. */
export type RedisClientLike = NodeRedisClientLike | IORedisClientLike;
