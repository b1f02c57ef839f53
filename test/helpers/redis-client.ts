/**
 * The node-redis v4 client type the tests and scripts of this repository use for their own Redis
 * work (fairlock itself sees every client through src/redis/seam.ts, and its published types name
 * no client package).
 */
import type { RedisClientType } from 'redis';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RedisClient = RedisClientType<any, any, any>;
