/**
 * The seams for Valkey GLIDE 2.3 and later (`@valkey/valkey-glide`): `GlideClient` and
 * `GlideClusterClient`. GLIDE has no duplicate(): the subscriber and the WAIT connection are new
 * clients made by the user's client's own class (`createClient`) from the configuration it was made
 * with (`client.config`, kept by GLIDE's BaseClient), with a pub/sub callback added. Scripts and WAIT
 * go through `customCommand`; on a cluster they are routed to the master of the name's slot
 * (`primarySlotKey`). Nothing here imports GLIDE: it is an optional peer, typed by shape only.
 */
import { debug } from '../debug.js';
import { settle, WaitPool } from './wait-pool.js';
import type { GlideClientLike, RedisSeam, ShardSubscriber, Subscription } from './seam.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- GLIDE is an optional peer: typed by shape only */
type AnyGlide = GlideClientLike & Record<string, any>;

/** GLIDE's `Decoder.String`: replies and messages as strings, whatever the user's default decoder. */
const DECODER_STRING = 1;
/** How long a subscribe or unsubscribe waits for Redis to confirm it (GLIDE's own timeout argument). */
const SUBSCRIBE_TIMEOUT_MS = 10_000;

/**
 * GLIDE words the errors Redis answers its own way ("An error was signalled by the server: -
 * NoScriptError: …", "FAIRLOCK_BADKEY: …"): they are put back as Redis sent them ("NOSCRIPT …",
 * "FAIRLOCK_BADKEY …"), so that the rest of fairlock reads them as it reads every other client's.
 * The kinds are those of GLIDE's redis-rs (ServerErrorKind, glide-core/redis-rs/redis/src/types.rs).
 */
const KINDS: Record<string, string> = {
  ResponseError: 'ERR',
  ExecAbortError: 'EXECABORT',
  BusyLoadingError: 'LOADING',
  NoScriptError: 'NOSCRIPT',
  Moved: 'MOVED',
  Ask: 'ASK',
  TryAgain: 'TRYAGAIN',
  ClusterDown: 'CLUSTERDOWN',
  CrossSlot: 'CROSSSLOT',
  MasterDown: 'MASTERDOWN',
  ReadOnly: 'READONLY',
  NotBusy: 'NOTBUSY',
  PermissionDenied: 'NOPERM',
};

export function redisWording(err: unknown): unknown {
  const e = err as Error | undefined;
  if (!(e instanceof Error) || e.name !== 'RequestError') return err; // not an answer from Redis
  const known = /^An error was signalled by the server:\s*-\s*(\w+):?\s?([\s\S]*)$/.exec(e.message);
  if (known && KINDS[known[1]!]) return new Error(`${KINDS[known[1]!]} ${known[2]}`, { cause: err });
  const extension = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(e.message);
  if (extension) return new Error(`${extension[1]} ${extension[2]}`, { cause: err });
  return err;
}

/** GLIDE rejects the commands in flight with ConnectionError when the connection drops (it reconnects by itself). */
function droppedConnection(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'ConnectionError';
}

/**
 * A new client of the user's client's class, from the configuration the user made theirs with, made
 * to connect now, speak RESP3 (GLIDE's pub/sub needs it), read from the primary and decode strings.
 * `pubsub` adds the callback every message goes to (no channel yet: they are subscribed at run time).
 */
function sibling(client: AnyGlide, pubsub?: (message: { channel: unknown; message: unknown }) => void): Promise<AnyGlide> {
  const { pubsubSubscriptions: _theirs, protocol: _protocol, readFrom: _readFrom, ...config } = client.config as Record<string, unknown>;
  const made = {
    ...config,
    lazyConnect: false,
    defaultDecoder: DECODER_STRING,
    ...(pubsub ? { pubsubSubscriptions: { channelsAndPatterns: {}, callback: pubsub } } : {}),
  };
  return (client.constructor as unknown as { createClient(config: unknown): Promise<AnyGlide> }).createClient(made);
}

function closeQuietly(c: AnyGlide): void {
  try {
    c.close();
  } catch (err) {
    debug('closing a GLIDE client failed: %s', (err as Error)?.message);
  }
}

/** The options of one customCommand: strings back, and on a cluster the route to the master of `key`'s slot. */
function commandOptions(cluster: boolean, key: string): Record<string, unknown> {
  return cluster ? { decoder: DECODER_STRING, route: { type: 'primarySlotKey', key } } : { decoder: DECODER_STRING };
}

abstract class GlideSeamBase implements RedisSeam {
  readonly family = 'glide' as const;
  abstract readonly cluster: boolean;
  /** durability's WAIT connections (see WaitPool): clients of their own, so a WAIT holds no other command. */
  private waitPool: WaitPool<AnyGlide> | undefined;

  constructor(protected readonly client: AnyGlide) {}

  async send(args: readonly string[], key: string): Promise<unknown> {
    try {
      return await this.client.customCommand([...args], commandOptions(this.cluster, key));
    } catch (err) {
      throw redisWording(err);
    }
  }

  /**
   * The scripts, then WAIT once their replies are in: on the WAIT client's one connection to that
   * master (routed by the same key on a cluster), so the count covers the scripts' writes. GLIDE lets
   * a WAIT run to its own timeout (it treats WAIT as a blocking command: glide-core/src/client/mod.rs).
   */
  sendAndWait(args: readonly string[], key: string, replicas: number, timeoutMs: number, signal?: AbortSignal): Promise<{ reply: unknown; acked: number }> {
    // Made on first use: `cluster` is set by the subclass, after this class's fields.
    this.waitPool ??= new WaitPool<AnyGlide>({
      open: () => sibling(this.client),
      drop: async (c) => closeQuietly(c),
      acrossKeys: !this.cluster,
      run: async (c, scripts, runKey, n, ms) => {
        const options = commandOptions(this.cluster, runKey);
        const replies = await Promise.allSettled(scripts.map((s) => c.customCommand([...s], options).catch((err: unknown) => Promise.reject(redisWording(err)))));
        const acked = await settle(
          (c.customCommand(['WAIT', String(n), String(ms)], options) as Promise<unknown>).then(Number, (err: unknown) => Promise.reject(redisWording(err))),
        );
        return { replies, acked };
      },
    });
    return this.waitPool.send(args, key, replicas, timeoutMs, signal);
  }

  droppedConnection = droppedConnection;

  async close(boundMs: number): Promise<void> {
    await this.waitPool?.close(boundMs);
  }

  abstract subscribe(channel: string, onMessage: (message: unknown) => void, onReconnect: () => void): Promise<Subscription>;
  abstract shardSubscriber(onMessage: (channel: string, message: unknown) => void): Promise<ShardSubscriber>;
}

/** `GlideClient` (one Valkey or Redis). */
export class GlideSeam extends GlideSeamBase {
  readonly cluster = false;

  /**
   * GLIDE resubscribes by itself after a reconnect, but tells a pub/sub callback nothing of the drop
   * (its "Disconnect" notice is only logged): `onReconnect` is never called, and a wake-up published
   * while the subscriber was away is found by the next heartbeat.
   */
  async subscribe(channel: string, onMessage: (message: unknown) => void): Promise<Subscription> {
    const sub = await sibling(this.client, (m) => {
      if (String(m.channel) === channel) onMessage(m.message);
    });
    try {
      await sub.subscribe(new Set([channel]), SUBSCRIBE_TIMEOUT_MS);
    } catch (err) {
      closeQuietly(sub);
      throw err;
    }
    return {
      // close() drops the connection, and its subscription with it: no UNSUBSCRIBE round trip needed.
      close: async () => closeQuietly(sub),
    };
  }

  shardSubscriber(): Promise<ShardSubscriber> {
    return Promise.reject(new Error('sharded wake-ups are for cluster clients'));
  }
}

/** `GlideClusterClient`: sharded pub/sub, which GLIDE sends to each channel's slot owner and follows across resharding. */
export class GlideClusterSeam extends GlideSeamBase {
  readonly cluster = true;

  subscribe(): Promise<Subscription> {
    return Promise.reject(new Error('a cluster client takes sharded wake-ups'));
  }

  async shardSubscriber(onMessage: (channel: string, message: unknown) => void): Promise<ShardSubscriber> {
    const sub = await sibling(this.client, (m) => onMessage(String(m.channel), m.message));
    return {
      add: async (channel) => {
        await sub.ssubscribe(new Set([channel]), SUBSCRIBE_TIMEOUT_MS);
      },
      remove: async (channel) => {
        await sub.sunsubscribe(new Set([channel]), SUBSCRIBE_TIMEOUT_MS);
      },
      close: async () => closeQuietly(sub),
    };
  }
}
