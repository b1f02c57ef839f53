/**
 * A redis-server of our own on a free loopback port, stopped by PID: the demo's Redis when none is
 * given, and also what the tests and the bench start (they import it from here).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../bounded.js';

export interface LocalRedis {
  url: string;
  port: number;
  /** PID of the running process; undefined after kill() or stop(). */
  readonly pid: number | undefined;
  /** Signals the process (default SIGKILL) and waits for it to exit; its data dir is kept. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and dir (so an AOF file survives), and waits until it answers. */
  restart(): Promise<void>;
  /** SIGTERM, SIGKILL after 2 s, and the data dir removed. */
  stop(): Promise<void>;
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

/**
 * Starts redis-server with `args` added to a loopback, persistence-off base, on `port` (default: a
 * free one). Rejects with an error
 * whose `code` is 'ENOENT' when redis-server is not installed, or when it exits or does not answer
 * PING within `readyTimeoutMs`.
 */
export async function startLocalRedis(options: { args?: string[]; readyTimeoutMs?: number; port?: number } = {}): Promise<LocalRedis> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'fairlock-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--daemonize', 'no', '--loglevel', 'warning', ...(options.args ?? [])];
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;

  const launch = async () => {
    const p = spawn('redis-server', args, { stdio: 'ignore' });
    proc = p;
    const failed = new Promise<never>((_, reject) => {
      p.once('error', reject);
      p.once('exit', (code, signal) => reject(new Error(`redis-server exited at start-up (port ${port}, ${signal ?? `code ${code}`})`)));
    });
    failed.catch(() => undefined);
    await Promise.race([waitForPing(url, options.readyTimeoutMs ?? 10_000), failed]);
  };
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid, signal);
    if (await within(exited, 2_000)) return;
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await exited;
  };
  const stop = async () => {
    await kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    port,
    get pid() {
      return proc?.pid;
    },
    kill,
    restart: launch,
    stop,
  };
}

async function waitForPing(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  let last: unknown;
  const { createClient } = await import('redis');
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
  throw new Error(`redis-server at ${url} did not answer within ${deadlineMs} ms: ${String(last)}`);
}
