/**
 * A test process ended with SIGTERM (how ava ends a file that timed out) still stops, by PID, the
 * redis-server processes it started.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { hasRedisBinary } from './helpers/redis.js';

const HOLDER = fileURLToPath(new URL('./helpers/server-holder.ts', import.meta.url));

/** Running: it exists and is not a zombie (PID 1 here does not reap orphans). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('a test process ended with SIGTERM stops the redis-server it started', async (t) => {
  if (!hasRedisBinary()) {
    t.pass('no redis-server binary: the helper would not start a process of its own');
    return;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER], { stdio: ['ignore', 'pipe', 'inherit'] });
  let serverPid: number | undefined;
  t.teardown(() => {
    for (const pid of [child.pid, serverPid]) {
      try {
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  serverPid = await new Promise<number>((resolve, reject) => {
    let out = '';
    const limit = setTimeout(() => reject(new Error(`no PID within 15 s: ${out}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) (clearTimeout(limit), resolve(Number(m[1])));
    });
  });
  t.true(running(serverPid), 'the server runs');
  child.kill('SIGTERM');
  t.is(await exited, 143);
  const until = Date.now() + 5_000;
  while (running(serverPid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.false(running(serverPid), `redis-server ${serverPid} was stopped with its test process`);
});
