/**
 * Teardown for everything a test creates, whatever the outcome: a failed assertion that throws, an
 * `expect()` that rejects or a timeout must not leave a FairLocks, a client, a child process or a
 * redis-server open, else ava waits for the worker to exit and prints "Failed to exit".
 *
 * Each helper registers its resource with the test's Scope (one `t.teardown` per test) as soon as it
 * exists. At the end of the test the scope closes them last-in first-out (locks before the client
 * under them, children and locks before the server), each one bounded in time and with errors
 * ignored, so that a teardown can neither hang nor hide the test's own failure. Closing something
 * the test already closed is harmless.
 */
import type { ExecutionContext } from 'ava';
import { FairLocks, type FairLocksOptions } from '../../src/index.js';
import type { RedisClient } from './redis-client.js';
import type { RedisClientLike } from '../../src/redis/seam.js';
import { connect, startRedis, type RedisServer, type StartOptions } from './redis.js';

/** How long one closer may take before the teardown moves on (the work goes on unawaited). */
export const CLOSE_LIMIT_MS = 3_000;

/** Waits for `p`, but no longer than `ms`; never rejects. True when `p` settled in time. */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    timeout,
  ]);
  clearTimeout(timer);
  return done;
}

type Closer = () => unknown;

/** A last-in first-out list of closers: one per test (t.teardown) or per file (after.always). */
export class Scope {
  private readonly closers: Closer[] = [];
  private ended = false;

  /** Registers `closer`; once the scope has closed, runs it at once and throws (the test is over). */
  add(closer: Closer): void {
    if (this.ended) {
      void settleWithin(Promise.resolve().then(closer), CLOSE_LIMIT_MS);
      throw new Error('the test has already ended: resource closed right away');
    }
    this.closers.push(closer);
  }

  get closed(): boolean {
    return this.ended;
  }

  async close(): Promise<void> {
    this.ended = true;
    for (let closer = this.closers.pop(); closer; closer = this.closers.pop()) {
      await settleWithin(Promise.resolve().then(closer), CLOSE_LIMIT_MS);
    }
  }
}

const scopes = new WeakMap<ExecutionContext, Scope>();

/** The scope of test `t`, closed by a `t.teardown` registered on first use. Also takes a Scope. */
export function scopeOf(t: ExecutionContext | Scope): Scope {
  if (t instanceof Scope) return t;
  let scope = scopes.get(t);
  if (!scope) {
    const created = new Scope();
    scopes.set(t, created);
    t.teardown(() => created.close());
    scope = created;
  }
  return scope;
}

// ---- Redis clients ----

/** Clients duplicated from a tracked client (a FairLocks's subscriber is one), closed with it. */
const duplicates = new WeakMap<RedisClient, Set<RedisClient>>();

/**
 * Remembers every duplicate() of `client`, so that closing the client also closes them: a FairLocks
 * whose close() could not finish (its Redis is down or paused) would otherwise keep its subscriber
 * reconnecting for ever.
 */
export function trackDuplicates<C extends RedisClient>(client: C): C {
  if (duplicates.has(client)) return client;
  if (typeof (client as { duplicate?: unknown }).duplicate !== 'function') return client; // GLIDE: fairlock closes the clients it makes
  const dups = new Set<RedisClient>();
  duplicates.set(client, dups);
  const original = client.duplicate.bind(client);
  (client as { duplicate: unknown }).duplicate = (...args: unknown[]) => {
    const dup = (original as (...a: unknown[]) => RedisClient)(...args);
    dups.add(dup);
    return dup;
  };
  return client;
}

/** Disconnects `client` and its tracked duplicates; never rejects. */
export async function closeClient(client: RedisClient): Promise<void> {
  const all = [...(duplicates.get(client) ?? []), client];
  // node-redis (client or cluster) has isOpen; ioredis (Redis or Cluster) only disconnect().
  await Promise.all(
    all.map(async (c) => {
      const any = c as unknown as { isOpen?: boolean; disconnect?: () => unknown };
      if (any.isOpen === false || typeof any.disconnect !== 'function') return;
      try {
        await any.disconnect();
      } catch {
        // already closed
      }
    }),
  );
}

/** A connected client (see redis.ts `connect`), disconnected when the test ends. */
export async function openClient(t: ExecutionContext | Scope, url: string): Promise<RedisClient> {
  const scope = scopeOf(t);
  const client = trackDuplicates(await connect(url));
  scope.add(() => closeClient(client));
  return client;
}

/**
 * A client whose reconnects wait `delayMs` each, and so do its duplicates' (a FairLocks subscriber):
 * a subscriber kept out of the server stays out that long, so a wake-up published meanwhile is lost.
 * Closed when the test ends.
 */
export async function openSlowReconnectClient(t: ExecutionContext | Scope, url: string, delayMs = 2_000): Promise<RedisClient> {
  const { createClient } = await import('redis');
  const client = track(t, createClient({ url, socket: { reconnectStrategy: () => delayMs } }) as RedisClient);
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

// ---- FairLocks ----

/** A FairLocks on `client`, closed when the test ends (bounded: a dead Redis cannot hang it). */
export function newLocks(t: ExecutionContext | Scope, client: RedisClient | RedisClientLike, options?: FairLocksOptions): FairLocks {
  const scope = scopeOf(t);
  trackDuplicates(client as RedisClient); // in case the client came from elsewhere (e.g. the fixture); any family
  const locks = new FairLocks(client, options);
  scope.add(() => locks.close());
  return locks;
}

// ---- servers ----

/** A Redis of the test's own (see redis.ts `startRedis`), stopped when the test ends. */
export async function ownRedis(t: ExecutionContext | Scope, options: StartOptions & { owned?: boolean } = {}): Promise<RedisServer> {
  const scope = scopeOf(t);
  const server = await startRedis(options);
  scope.add(() => server.stop());
  return server;
}

// ---- anything ----

interface Stoppable {
  stop(): Promise<unknown>;
}
interface Disposable {
  dispose(): Promise<unknown>;
}
type Trackable = FairLocks | RedisClient | RedisServer | Disposable | Stoppable;

/**
 * Registers things created some other way (a client from createClient, a child) for teardown at the
 * end of the test: FairLocks are closed, clients disconnected, children killed, servers stopped.
 */
export function track<T extends Trackable>(t: ExecutionContext | Scope, thing: T): T {
  const scope = scopeOf(t);
  if (thing instanceof FairLocks) {
    scope.add(() => thing.close());
  } else if ('dispose' in thing && typeof thing.dispose === 'function') {
    scope.add(() => (thing as Disposable).dispose());
  } else if ('disconnect' in thing && 'duplicate' in thing) {
    trackDuplicates(thing as RedisClient);
    scope.add(() => closeClient(thing as RedisClient));
  } else if ('stop' in thing && typeof thing.stop === 'function') {
    scope.add(() => (thing as Stoppable).stop());
  } else {
    throw new TypeError('track(): nothing known to close');
  }
  return thing;
}
