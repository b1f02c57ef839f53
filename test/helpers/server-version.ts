/**
 * Which server the tests start: the `redis-server` first on PATH (scripts/test-servers.sh puts each
 * server of the matrix there in turn). Tests that need a feature of a later version ask here and
 * skip themselves with a reason that names the server, never silently.
 */
import { spawnSync } from 'node:child_process';

export interface ServerVersion {
  /** 'Redis' or 'Valkey' (Valkey's binary is also named redis-server). */
  name: string;
  major: number;
  minor: number;
  /** As `redis-server --version` prints it, e.g. "Redis 6.2.16". */
  label: string;
}

let cached: ServerVersion | undefined;

/** The version of the `redis-server` on PATH (Redis 7.0 assumed when it cannot be read, e.g. REDIS_URL with Docker). */
export function serverVersion(): ServerVersion {
  if (cached) return cached;
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  const m = /^(\w+) server v=(\d+)\.(\d+)\.(\d+)/.exec(out);
  cached = m
    ? { name: m[1]!, major: Number(m[2]), minor: Number(m[3]), label: `${m[1]} ${m[2]}.${m[3]}.${m[4]}` }
    : { name: 'Redis', major: 7, minor: 0, label: 'an unknown server (taken as Redis 7.0)' };
  return cached;
}

/**
 * Sharded pub/sub (SPUBLISH, SSUBSCRIBE, PUBSUB SHARDNUMSUB) and `--cluster-port`: Redis 7.0 and
 * every Valkey (Valkey 7.2 forked from Redis 7.2).
 */
export function hasShardedPubSub(): boolean {
  const v = serverVersion();
  return v.name === 'Valkey' || v.major >= 7;
}

/** The reason a test that needs sharded pub/sub gives when it skips itself, or undefined when it can run. */
export function withoutShardedPubSub(): string | undefined {
  return hasShardedPubSub() ? undefined : `${serverVersion().label} has no sharded pub/sub (SPUBLISH, SSUBSCRIBE: Redis 7.0)`;
}
