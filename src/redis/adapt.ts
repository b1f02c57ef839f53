/**
 * Finds the seam for the client the user handed to `new FairLocks(client)`, or refuses it at once
 * with an InvalidArgumentError that says what was given and what is accepted: anything refused here
 * would otherwise fail later, inside a timer or a subscriber callback.
 */
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../options.js';
import { IORedisClusterSeam, IORedisSeam } from './ioredis.js';
import { NodeRedisClusterSeam, NodeRedisSeam, NodeRedisSentinelSeam } from './node-redis.js';
import type { IORedisClientLike, NodeRedisClientLike, NodeRedisClusterLike, RedisSeam } from './seam.js';

const ACCEPTED =
  'a node-redis 4, 5 or 6 client (createClient(), createCluster() or createSentinel() from "redis", connected) or an ioredis 5 or 6 client (new Redis() or new Cluster() from "ioredis")';

export function adaptClient(client: unknown): RedisSeam {
  const c = client as Record<string, unknown> | null;
  if (!c || typeof c !== 'object') throw new InvalidArgumentError(`client must be ${ACCEPTED}, got ${describe(client)}`);
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
