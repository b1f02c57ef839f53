/**
 * Real Redis servers for the tests, never a mock. In order of preference:
 *   1. REDIS_URL, when the user points the tests at their own server (loopback only);
 *   2. a `redis-server` binary: a fresh process per call, on a free loopback port, stopped by PID;
 *   3. Docker via testcontainers, when there is no binary.
 * With none of them, the tests fail with a message that says how to get one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import type { RedisClient } from '../../src/scripts.js';

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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

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

async function waitForPing(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < until) {
    const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      await client.quit();
      return;
    } catch (err) {
      last = err;
      await client.disconnect().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis at ${url} did not answer within ${deadlineMs} ms: ${String(last)}`);
}

/**
 * PIDs of the servers this process started and has not stopped. When ava ends a test file early
 * (a timeout), its after.always hooks do not run: kill them by PID as the process exits instead.
 */
const alive = new Set<number>();
process.once('exit', () => {
  for (const pid of alive) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A redis-server process of our own, on a free loopback port. */
export async function startRedisProcess(options: StartOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fairlock-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    '--appendonly', options.appendonly ? 'yes' : 'no', '--appendfsync', 'always', '--daemonize', 'no', '--loglevel', 'warning'];
  if (options.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'));
  let proc: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  const launch = async () => {
    proc = spawn('redis-server', args, { stdio: 'ignore' });
    if (proc.pid !== undefined) alive.add(proc.pid);
    const pid = proc.pid;
    proc.once('exit', () => pid !== undefined && alive.delete(pid));
    await waitForPing(url, 10_000);
  };
  const killNow = async (signal: NodeJS.Signals) => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.pid === undefined) return;
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid, signal);
    await exited;
  };
  await launch();
  const server: RedisServer = {
    url,
    port,
    get pid() {
      return proc?.pid;
    },
    owned: true,
    kill: () => killNow('SIGKILL'),
    restart: launch,
    async stop() {
      await killNow('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
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
  const needsOwn = options.owned || options.appendonly || options.cluster;
  if (process.env.REDIS_URL && !needsOwn) return fromEnv(process.env.REDIS_URL);
  if (hasRedisBinary()) return startRedisProcess(options);
  if (!needsOwn && hasDocker()) return startContainer();
  throw new Error(HOW_TO_GET_REDIS);
}
