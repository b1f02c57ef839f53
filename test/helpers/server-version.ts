/**
 * Which server the tests start: the `redis-server` first on PATH (scripts/test-servers.sh puts each
 * server of the matrix there in turn). Tests that need a feature of a later version ask here and
 * skip themselves with a reason that names the server, never silently.
 */
import { spawnSync } from 'node:child_process';
import test, { type TestFn } from 'ava';

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

/** The reason a test that needs sharded pub/sub gives when it skips itself, or undefined when it can run. */
export function withoutShardedPubSub(): string | undefined {
  return hasShardedPubSub() ? undefined : `${serverVersion().label} has no sharded pub/sub (SPUBLISH, SSUBSCRIBE: Redis 7.0)`;
}

/**
 * ava's `test` for the tests of a file that need what `reason` says is missing: with a reason, every
 * test is registered as skipped with "[skipped: reason]" in its title (ava prints it) and the hooks
 * are not run (they would start servers for nothing); without one, ava's `test` itself.
 */
export function testUnless(reason: string | undefined): TestFn {
  if (!reason) return test;
  const skip = (title: string) => test.skip(`${title} [skipped: ${reason}]`, () => undefined);
  const noop = () => undefined;
  const hook = Object.assign(noop, { always: noop, skip: noop });
  return Object.assign(skip, {
    serial: Object.assign((title: string) => skip(title), { skip, only: skip, failing: skip, before: hook, after: hook, beforeEach: hook, afterEach: hook }),
    skip,
    only: skip,
    failing: skip,
    todo: test.todo,
    before: hook,
    after: hook,
    beforeEach: hook,
    afterEach: hook,
    macro: test.macro,
    meta: test.meta,
  }) as unknown as TestFn;
}
