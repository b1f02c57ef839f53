/**
 * Finds the seam for the client the user handed to `new FairLocks(client)`, or refuses it at once
 * with an InvalidArgumentError that says what was given and what is accepted: anything refused here
 * would otherwise fail later, inside a timer or a subscriber callback.
 */
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../options.js';
import { GlideClusterSeam, GlideSeam } from './glide.js';
import { IORedisClusterSeam, IORedisSeam } from './ioredis.js';
import { NodeRedisClusterSeam, NodeRedisSeam, NodeRedisSentinelSeam } from './node-redis.js';
import type { IORedisClientLike, NodeRedisClientLike, NodeRedisClusterLike, RedisSeam } from './seam.js';

const ACCEPTED =
  'a node-redis 4, 5 or 6 client (createClient(), createCluster() or createSentinel() from "redis", connected) or an ioredis 5 or 6 client (new Redis() or new Cluster() from "ioredis") or a Valkey GLIDE 2.3+ client (GlideClient or GlideClusterClient from "@valkey/valkey-glide")';

export function adaptClient(client: unknown): RedisSeam {
  const c = client as Record<string, unknown> | null;
  if (!c || typeof c !== 'object') throw new InvalidArgumentError(`client must be ${ACCEPTED}, got ${describe(client)}`);
  if (typeof c.customCommand === 'function' && typeof c.getPubSubMessage === 'function') return adaptGlide(c);
  if (c.isCluster === true && typeof c.call === 'function' && typeof c.duplicate === 'function' && typeof c.status === 'string') {
    if (c.status === 'end') throw new InvalidArgumentError('client (ioredis Cluster) was closed with quit() or disconnect(): pass a client that is open');
    return new IORedisClusterSeam(client as IORedisClientLike);
  }
  if ('masters' in c && typeof c.nodeClient === 'function' && typeof c.sendCommand === 'function' && typeof c.duplicate === 'function') {
    if (c.isOpen !== true) throw new InvalidArgumentError('client (node-redis cluster) is not connected: await cluster.connect() first');
    return new NodeRedisClusterSeam(client as NodeRedisClusterLike);
  }
  if (typeof c.getMasterNode === 'function' && typeof c.getSentinelNode === 'function' && typeof c.acquire === 'function') {
    if (c.isOpen !== true) throw new InvalidArgumentError('client (node-redis sentinel) is not connected: await sentinel.connect() first');
    return new NodeRedisSentinelSeam(client as NodeRedisClientLike);
  }
  if (typeof c.execute === 'function' && typeof c.sendCommand === 'function' && typeof c.duplicate !== 'function') {
    throw new InvalidArgumentError('client is a node-redis client pool, which cannot make the dedicated subscriber connection fairlock needs: pass a client (createClient())');
  }
  if (typeof c.call === 'function' && typeof c.duplicate === 'function' && typeof c.status === 'string') {
    if (c.status === 'end') throw new InvalidArgumentError('client (ioredis) was closed with quit() or disconnect(): pass a client that is open');
    return new IORedisSeam(client as IORedisClientLike);
  }
  if (typeof c.sendCommand === 'function' && typeof c.duplicate === 'function' && 'isOpen' in c) {
    const options = c.options as { legacyMode?: unknown } | undefined;
    if (options?.legacyMode) {
      throw new InvalidArgumentError(
        'client (node-redis) was made with legacyMode: true, whose callback replies fairlock cannot use: pass a client made without it (createClient() from "redis")',
      );
    }
    if (c.isOpen !== true) throw new InvalidArgumentError('client (node-redis) is not connected: await client.connect() first');
    return new NodeRedisSeam(client as NodeRedisClientLike);
  }
  throw new InvalidArgumentError(`client must be ${ACCEPTED}, got ${describe(client)}`);
}

/**
 * A Valkey GLIDE client, known by its shape (GLIDE is not imported). fairlock needs pub/sub at run
 * time (subscribe, and ssubscribe on a cluster: GLIDE 2.3 and later) and the configuration the
 * client was made with, to make its own subscriber and WAIT connection (GLIDE has no duplicate()).
 */
function adaptGlide(c: Record<string, unknown>): RedisSeam {
  const cluster = typeof c.invokeScriptWithRoute === 'function';
  const kind = cluster ? 'GlideClusterClient' : 'GlideClient';
  if (c.isClosed === true) throw new InvalidArgumentError(`client (Valkey GLIDE ${kind}) was closed with close(): pass a client that is open`);
  if (typeof c.subscribe !== 'function' || (cluster && typeof c.ssubscribe !== 'function')) {
    throw new InvalidArgumentError(
      `client (Valkey GLIDE ${kind}) cannot subscribe at run time (${cluster ? 'ssubscribe()' : 'subscribe()'} came in @valkey/valkey-glide 2.3), which fairlock's wake-ups need: upgrade to @valkey/valkey-glide 2.3 or later`,
    );
  }
  const ctor = (c as { constructor?: { createClient?: unknown } }).constructor;
  if (typeof ctor?.createClient !== 'function' || !c.config || typeof c.config !== 'object') {
    throw new InvalidArgumentError(
      `client (Valkey GLIDE ${kind}) does not show the configuration it was made with, from which fairlock makes its subscriber (GLIDE has no duplicate()): pass a client made by ${kind}.createClient()`,
    );
  }
  return cluster ? new GlideClusterSeam(c as never) : new GlideSeam(c as never);
}
