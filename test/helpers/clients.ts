/**
 * One connected client of each supported family, made the way a user would, for the tests that run
 * the same checks against every client. Each comes with `close()` (never rejects, bounded) and
 * `killCommandConnection()`: the CLIENT KILL of its command connection that a network fault would be.
 */
import { Redis as IORedis5 } from 'ioredis';
import { Redis as IORedis6 } from 'ioredis-v6';
import { createClient as createClient4 } from 'redis';
import { createClient as createClient5 } from 'redis-v5';
import { createClient as createClient6 } from 'redis-v6';
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
  ];
}

/**
 * The client the forked processes of the multi-process tests lock through: FAIRLOCK_TEST_CLIENT
 * (`npm test` sets ioredis5 for its second Node), else node-redis 4 (undefined: the worker's own client).
 */
export async function childLockClient(url: string): Promise<TestClient | undefined> {
  const id = process.env.FAIRLOCK_TEST_CLIENT;
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
