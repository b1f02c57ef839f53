/** The Redis the bench measures: REDIS_URL (loopback only), or a redis-server of its own, stopped by PID. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { sleep } from './clock.js';

export interface BenchRedis {
  url: string;
  /** True when we started it: only then may the bench FLUSHALL between libraries. */
  owned: boolean;
  pid: number | undefined;
  version: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function info(url: string, deadlineMs: number): Promise<string> {
  const until = Date.now() + deadlineMs;
  for (let i = 0; Date.now() < until && i < 1_000; i++) {
    const c = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const s = await c.info('server');
      await c.quit();
      return /redis_version:(\S+)/.exec(s)?.[1] ?? '?';
    } catch {
      await c.disconnect().catch(() => undefined);
      await sleep(50);
    }
  }
  throw new Error(`no Redis answered at ${url} within ${deadlineMs} ms`);
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const env = process.env.REDIS_URL;
  if (env) {
    const host = new URL(env).hostname;
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) throw new Error(`REDIS_URL must be a loopback address, got ${host}`);
    return { url: env, owned: false, pid: undefined, version: await info(env, 5_000), stop: async () => undefined };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fairlock-bench-'));
  const proc: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--daemonize', 'no', '--loglevel', 'warning', '--maxclients', '20000'],
    { stdio: 'ignore' },
  );
  const spawned = new Promise<void>((resolve, reject) => {
    proc.once('spawn', resolve);
    proc.once('error', (e) => reject(new Error(`cannot start redis-server (is it installed?): ${e.message}`)));
  });
  await spawned;
  const url = `redis://127.0.0.1:${port}`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      const exited = new Promise((r) => proc.once('exit', r));
      process.kill(proc.pid, 'SIGTERM');
      await Promise.race([exited, sleep(3_000)]);
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    return { url, owned: true, pid: proc.pid, version: await info(url, 10_000), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
