/**
 * Which server the tests (and the scripts that start servers, e.g. scripts/chaos-cluster.ts) start:
 * the `redis-server` first on PATH. Free of ava, so a script outside the test runner may import it;
 * test/helpers/server-version.ts re-exports it beside the skip helpers.
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

/** Per PATH: a test file may put another server first on PATH (test/cluster/refused-before-7.test.ts). */
let cached: { path: string | undefined; version: ServerVersion } | undefined;

/** The version of the `redis-server` on PATH (Redis 7.0 assumed when it cannot be read, e.g. REDIS_URL with Docker). */
export function serverVersion(): ServerVersion {
  if (cached && cached.path === process.env.PATH) return cached.version;
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  const m = /^(\w+) server v=(\d+)\.(\d+)\.(\d+)/.exec(out);
  const version = m
    ? { name: m[1]!, major: Number(m[2]), minor: Number(m[3]), label: `${m[1]} ${m[2]}.${m[3]}.${m[4]}` }
    : { name: 'Redis', major: 7, minor: 0, label: 'an unknown server (taken as Redis 7.0)' };
  cached = { path: process.env.PATH, version };
  return version;
}

/**
 * Sharded pub/sub (SPUBLISH, SSUBSCRIBE, PUBSUB SHARDNUMSUB) and `--cluster-port`: Redis 7.0 and
 * every Valkey (Valkey 7.2 forked from Redis 7.2).
 */
export function hasShardedPubSub(): boolean {
  const v = serverVersion();
  return v.name === 'Valkey' || v.major >= 7;
}
