/**
 * One connected client of each supported family, made the way a user would, for the tests that run
 * the same checks against every client. Each comes with `close()` (never rejects, bounded) and
 * `killCommandConnection()`: the CLIENT KILL of its command connection that a network fault would be.
 */
import { GlideClient, GlideClusterClient, Logger } from '@valkey/valkey-glide';
import { Cluster as IORedisCluster5, Redis as IORedis5 } from 'ioredis';
import { Cluster as IORedisCluster6, Redis as IORedis6 } from 'ioredis-v6';
import { createClient as createClient4, createCluster as createCluster4 } from 'redis';
import { createClient as createClient5, createCluster as createCluster5 } from 'redis-v5';
import { createClient as createClient6, createCluster as createCluster6 } from 'redis-v6';
import type { RedisClientLike } from '../../src/redis/seam.js';

export interface TestClient {
  family: string;
  client: RedisClientLike;
  /** CLIENT ID of the command connection (not the subscriber fairlock duplicates from it). */
  id(): Promise<number>;
  close(): Promise<void>;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- five client types, one shape used */
type Any = any;

// GLIDE logs every error reply (a NOSCRIPT after SCRIPT FLUSH too) to the console at "warn".
Logger.setLoggerConfig('off');

const reconnect = (n: number) => Math.min(50 * n, 500);

function nodeRedis(family: string, make: () => Any): () => Promise<TestClient> {
  return async () => {
    const client = make();
    client.on('error', () => undefined);
    await client.connect();
    return {
      family,
      client,
      id: async () => Number(await client.sendCommand(['CLIENT', 'ID'])),
      close: () => within(typeof client.destroy === 'function' ? Promise.resolve(client.destroy()) : client.disconnect()),
    };
  };
}

function ioredis(family: string, make: () => Any): () => Promise<TestClient> {
  return async () => {
    const client = make();
    client.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve);
      client.once('end', () => reject(new Error('ioredis ended before ready')));
    });
    return {
      family,
      client,
      id: async () => Number(await client.call('CLIENT', 'ID')),
      close: () => within(Promise.resolve(client.disconnect())),
    };
  };
}

/** A connected GLIDE client (`make` is GlideClient.createClient or GlideClusterClient.createClient). */
function glide(family: string, make: () => Promise<Any>): () => Promise<TestClient> {
  return async () => {
    const client = await make();
    return {
      family,
      client,
      id: async () => Number(await client.customCommand(['CLIENT', 'ID'])),
      close: () => within(Promise.resolve().then(() => client.close())),
    };
  };
}

/**
 * GLIDE fails a command not answered within `requestTimeout`, 250 ms by default: a call held by a
 * CLIENT PAUSE, or resent while GLIDE reconnects, would fail for that alone. README tells GLIDE users
 * to give fairlock's client a longer one, as here.
 */
const GLIDE_REQUEST_TIMEOUT_MS = 2_000;

/** host and port of a `redis://` URL, for GLIDE's `addresses`. */
function address(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

/**
 * The families the client tests run: every supported major, and RESP3 where the client has it. `id`
 * is what FAIRLOCK_TEST_CLIENT takes (the same names as the bench's --clients).
 */
export function clientFamilies(url: string): { id: string; name: string; connect: () => Promise<TestClient> }[] {
  const socket = { reconnectStrategy: reconnect };
  return [
    { id: 'redis4', name: 'node-redis 4', connect: nodeRedis('node-redis 4', () => createClient4({ url, socket })) },
    { id: 'redis5', name: 'node-redis 5', connect: nodeRedis('node-redis 5', () => createClient5({ url, socket })) },
    { id: 'redis6', name: 'node-redis 6', connect: nodeRedis('node-redis 6', () => createClient6({ url, socket })) },
    { id: 'redis6-resp3', name: 'node-redis 6 RESP3', connect: nodeRedis('node-redis 6 RESP3', () => createClient6({ url, socket, RESP: 3 })) },
    { id: 'ioredis5', name: 'ioredis 5', connect: ioredis('ioredis 5', () => new IORedis5(url, { retryStrategy: reconnect })) },
    { id: 'ioredis6', name: 'ioredis 6', connect: ioredis('ioredis 6', () => new IORedis6(url, { retryStrategy: reconnect })) },
    { id: 'glide', name: 'GLIDE', connect: glide('GLIDE', () => GlideClient.createClient({ addresses: [address(url)], requestTimeout: GLIDE_REQUEST_TIMEOUT_MS })) },
  ];
}

/** `cluster://host:port,host:port,...`: how a test hands a cluster to a child process (as a URL). */
export function clusterUrl(nodes: readonly { host: string; port: number }[]): string {
  return `cluster://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
}

export function parseClusterUrl(url: string): { host: string; port: number }[] | undefined {
  if (!url.startsWith('cluster://')) return undefined;
  return url
    .slice('cluster://'.length)
    .split(',')
    .map((hp) => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: Number(hp.slice(hp.lastIndexOf(':') + 1)) }));
}

/**
 * Cluster clients of every family, for a cluster given as a `cluster://` URL. The ids are those of
 * clientFamilies (FAIRLOCK_TEST_CLIENT picks one for the children of the cluster tests too).
 */
export function clusterFamilies(url: string): { id: string; name: string; connect: () => Promise<TestClient> }[] {
  const nodes = parseClusterUrl(url);
  if (!nodes) throw new Error(`not a cluster:// URL: ${url}`);
  const rootNodes = nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` }));
  const defaults = { socket: { reconnectStrategy: reconnect } };
  const io = { clusterRetryStrategy: reconnect };
  return [
    { id: 'redis4', name: 'node-redis 4 cluster', connect: nodeRedis('node-redis 4 cluster', () => createCluster4({ rootNodes, defaults })) },
    { id: 'redis5', name: 'node-redis 5 cluster', connect: nodeRedis('node-redis 5 cluster', () => createCluster5({ rootNodes, defaults })) },
    { id: 'redis6', name: 'node-redis 6 cluster', connect: nodeRedis('node-redis 6 cluster', () => createCluster6({ rootNodes, defaults })) },
    { id: 'ioredis5', name: 'ioredis 5 Cluster', connect: ioredis('ioredis 5 Cluster', () => new IORedisCluster5(nodes, io)) },
    { id: 'ioredis6', name: 'ioredis 6 Cluster', connect: ioredis('ioredis 6 Cluster', () => new IORedisCluster6(nodes, io)) },
    { id: 'glide', name: 'GLIDE cluster', connect: glide('GLIDE cluster', () => GlideClusterClient.createClient({ addresses: nodes, requestTimeout: GLIDE_REQUEST_TIMEOUT_MS })) },
  ];
}

/** A connected cluster client of family `id` (default node-redis 4). */
export function connectCluster(url: string, id = 'redis4'): Promise<TestClient> {
  const family = clusterFamilies(url).find((f) => f.id === id);
  if (!family) throw new Error(`no cluster client "${id}": expected one of ${clusterFamilies(url).map((f) => f.id).join(', ')}`);
  return family.connect();
}

/**
 * The client the forked processes of the multi-process tests lock through: FAIRLOCK_TEST_CLIENT
 * (`npm test` sets ioredis5 for its second Node), else node-redis 4 (undefined: the worker's own client).
 */
export async function childLockClient(url: string): Promise<TestClient | undefined> {
  const id = process.env.FAIRLOCK_TEST_CLIENT;
  if (parseClusterUrl(url)) return connectCluster(url, id ?? 'redis4');
  if (!id || id === 'redis4') return undefined;
  const family = clientFamilies(url).find((f) => f.id === id);
  if (!family) throw new Error(`FAIRLOCK_TEST_CLIENT=${id}: expected one of ${clientFamilies(url).map((f) => f.id).join(', ')}`);
  return family.connect();
}

async function within(p: Promise<unknown>, ms = 3_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
