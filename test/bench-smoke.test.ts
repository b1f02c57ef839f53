/**
 * Keeps `npm run bench` from rotting: runs it with tiny numbers (--quick, its own redis-server) and
 * checks that it finishes and writes sane JSON. No timing assertions: this machine is noisy.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parseArgs } from '../scripts/bench/config.js';
import type { BenchResults } from '../scripts/bench/results.js';

const finiteOrNull = (x: unknown) => x === null || (typeof x === 'number' && Number.isFinite(x));

test('npm run bench -- --quick completes and writes sane JSON', async (t) => {
  t.timeout(120_000);
  const out = mkdtempSync(join(tmpdir(), 'fairlock-bench-smoke-'));
  const env = { ...process.env };
  delete env.REDIS_URL; // the bench starts and stops its own redis-server
  try {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench/main.ts', '--quick', '--no-docs', '--out', out], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    t.log(`bench --quick took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.is(code, 0, output);

    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchResults;
    t.true(r.meta.quick);
    t.deepEqual(r.libs.map((l) => l.id), parseArgs(['--quick']).libs);
    // fairlock runs on both client kinds, each row on its own client, peers unchanged
    t.deepEqual(r.libs.slice(0, 2).map((l) => [l.id, l.client]), [['fairlock (node-redis 4)', 'node-redis 4'], ['fairlock (ioredis 5)', 'ioredis 5']]);
    t.true(r.libs.some((l) => l.id === 'redlock'));
    for (const l of r.libs) {
      t.deepEqual(l.errors, [], `${l.id} reported errors`);
      for (const L of [l.loopback, l.relay]) {
        t.truthy(L, `${l.id}: latency figures`);
        t.true(L!.ping.n > 0 && L!.acquireRelease.n > 0, `${l.id}: latency samples`);
        for (const d of [L!.ping, L!.acquireRelease, L!.handoff]) t.true(finiteOrNull(d.p50) && finiteOrNull(d.p99));
      }
      t.is(l.contention.length, 2, `${l.id}: a contention run per hold time`);
      for (const c of [...l.contention, l.think!]) {
        t.true(Number.isInteger(c.grants) && c.grants >= 0, `${l.id}: grants`);
        t.true(finiteOrNull(c.commandsPerGrant) && finiteOrNull(c.clientCpuUsPerGrant) && finiteOrNull(c.jain) && finiteOrNull(c.heldShare), `${l.id}: contention figures`);
      }
      t.true(l.contention.some((c) => c.grants > 0), `${l.id}: someone got the lock`);
      t.true(l.waiters.length > 0 && l.waiters.every((w) => finiteOrNull(w.commandsPerSec)), `${l.id}: waiters`);
      for (const w of l.waiters) {
        // fairlock's window opens once all its waiters are queued; the peers' after a settle delay
        const fair = l.id.startsWith('fairlock');
        t.deepEqual([w.windowFrom, w.queued], fair ? ['queued', w.waiters] : ['settle', null], `${l.id}: waiters' window`);
        t.true(w.windowSec > 0 && w.readyMs >= 0, `${l.id}: waiters' window`);
      }
    }
    t.true(r.targets.length > 0);
    t.regex(output, /fairlock targets/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
