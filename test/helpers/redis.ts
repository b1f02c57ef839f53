/**
 * Real Redis servers for the tests, never a mock. In order of preference:
 *   1. REDIS_URL, when the user points the tests at their own server (loopback only);
 *   2. a `redis-server` binary: a fresh process per call, on a free loopback port, stopped by PID;
 *   3. Docker via testcontainers, when there is no binary.
 * With none of them, the tests fail with a message that says how to get one.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { freePort, startLocalRedis, type LocalRedis } from '../../src/cli/redis-server.js';
import './exit-on-term.js';
import type { RedisClient } from './redis-client.js';

export interface RedisServer {
  url: string;
  port: number;
  /** PID of the redis-server process, when this helper started one. */
  pid: number | undefined;
  /** True when the tests own the process and may kill, pause or restart it. */
  owned: boolean;
  /** SIGKILL the process (data gone unless AOF is on). */
  kill(): Promise<void>;
  /** Start it again on the same port (same dir, so AOF survives). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  appendonly?: boolean;
  cluster?: boolean;
  /** More redis-server arguments (e.g. `--replicaof 127.0.0.1 PORT`); a process of the test's own. */
  args?: string[];
}

const HOW_TO_GET_REDIS =
  'fairlock tests need a real Redis: install redis-server (apt-get install -y redis-server), ' +
  'or run Docker (tests then use testcontainers), or set REDIS_URL=redis://127.0.0.1:PORT to a server you run.';

export function hasRedisBinary(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

function hasDocker(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

export { freePort };

/** A random key prefix, so that tests sharing a server never see each other's keys. */
export function newPrefix(tag = 't'): string {
  return `${tag}${randomBytes(4).toString('hex')}`;
}

export async function connect(url: string): Promise<RedisClient> {
  const client = createClient({ url, socket: { reconnectStrategy: (n) => Math.min(50 * n, 500) } }) as RedisClient;
  client.on('error', () => undefined); // reconnects are part of several tests
  await client.connect();
  return client;
}

/**
 * Servers this process started and has not stopped. When ava ends a test file early (a timeout),
 * its after.always hooks do not run: kill them by PID as the process exits instead.
 */
const alive = new Set<LocalRedis>();
process.once('exit', () => {
  for (const server of alive) {
    try {
      if (server.pid !== undefined) process.kill(server.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A redis-server process of our own, on a free loopback port. */
export async function startRedisProcess(options: StartOptions = {}): Promise<RedisServer> {
  const args = ['--appendonly', options.appendonly ? 'yes' : 'no', '--appendfsync', 'always'];
  if (options.cluster) args.push('--cluster-enabled', 'yes');
  args.push(...(options.args ?? []));
  const local = await startLocalRedis({ args });
  alive.add(local);
  return {
    url: local.url,
    port: local.port,
    get pid() {
      return local.pid;
    },
    owned: true,
    kill: () => local.kill('SIGKILL'),
    restart: local.restart,
    async stop() {
      alive.delete(local);
      await local.kill('SIGKILL');
      await local.stop();
    },
  };
}

async function startContainer(): Promise<RedisServer> {
  const { GenericContainer } = await import('testcontainers');
  const container = await new GenericContainer('redis:7').withExposedPorts(6379).start();
  const port = container.getMappedPort(6379);
  const url = `redis://${container.getHost()}:${port}`;
  return {
    url,
    port,
    pid: undefined,
    owned: false,
    kill: async () => {
      throw new Error('cannot kill a testcontainers Redis');
    },
    restart: async () => {
      throw new Error('cannot restart a testcontainers Redis');
    },
    stop: async () => {
      await container.stop();
    },
  };
}

function fromEnv(url: string): RedisServer {
  const host = new URL(url).hostname;
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/.test(host)) {
    throw new Error(`REDIS_URL must point at a loopback address for the tests, got ${host}`);
  }
  const fail = async () => {
    throw new Error('this test needs a Redis it can kill; unset REDIS_URL to let the tests start their own');
  };
  return { url, port: Number(new URL(url).port || 6379), pid: undefined, owned: false, kill: fail, restart: fail, stop: async () => undefined };
}

/**
 * A Redis for one test file. Tests that kill or restart the server ask for `owned: true` and get a
 * process of their own even when REDIS_URL is set.
 */
export async function startRedis(options: StartOptions & { owned?: boolean } = {}): Promise<RedisServer> {
  const needsOwn = options.owned || options.appendonly || options.cluster || options.args !== undefined;
  if (process.env.REDIS_URL && !needsOwn) return fromEnv(process.env.REDIS_URL);
  if (hasRedisBinary()) return startRedisProcess(options);
  if (!needsOwn && hasDocker()) return startContainer();
  throw new Error(HOW_TO_GET_REDIS);
}
