/**
 * `npm run bench -- --quick` (its own redis-server, tiny numbers) finishes, writes sane JSON with every
 * library's and scenario's figures present and finite, finds no holder over its limit, and prints its
 * tables. No timing is asserted: this machine is noisy.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SCENARIOS, parseArgs } from '../scripts/bench/config.js';
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
    // the semaphore scenario: every library that has one (fairlock's rows, redis-semaphore); the
    // read-write one: fairlock's rows only. Figures present and finite, no holder over the limit.
    // every scenario but quorum (not in --quick: its own servers, relays and redlock's retries take seconds; `npm run bench -- --scenarios quorum`)
    t.deepEqual(r.meta.scenarios, SCENARIOS.filter((x) => x !== 'quorum'));
    t.is(r.quorum, undefined);
    const withSem = r.libs.filter((l) => l.kinds?.semaphore).map((l) => l.id);
    t.deepEqual(withSem, [...r.libs.filter((l) => l.id.startsWith('fairlock')).map((l) => l.id), 'redis-semaphore']);
    for (const l of r.libs) {
      t.is(l.semaphore !== undefined, withSem.includes(l.id), `${l.id}: a semaphore run iff it has a semaphore`);
      t.is(l.rw !== undefined, l.id.startsWith('fairlock'), `${l.id}: a read-write run iff it has a read-write lock`);
      for (const c of [l.semaphore, l.rw]) {
        if (!c) continue;
        // no count is asserted: a window of 150 ms on a loaded machine may see no grant at all
        t.true(Number.isInteger(c.grants) && c.grants >= 0, `${l.id} ${c.kind}: grants`);
        t.true(Number.isFinite(c.grantsPerSec) && [c.maxWaitMs, c.jain, c.heldShare].every(finiteOrNull), `${l.id} ${c.kind}: figures`);
        t.true(finiteOrNull(c.commandsPerGrant) && finiteOrNull(c.cpuUsPerGrant), `${l.id} ${c.kind}: Redis figures`);
        t.is(c.violations, 0, `${l.id} ${c.kind}: a holder overlapped others it excludes`);
        t.false('incrby' in c.commandsByName, `${l.id} ${c.kind}: the check's commands are not counted`);
      }
      if (l.semaphore) t.is(l.semaphore.permits, r.meta.semaphore!.permits);
      const x = l.rw?.rw;
      if (!x) continue;
      t.true([x.readsPerSec, x.writesPerSec].every((v) => Number.isFinite(v)) && [x.readerMaxWaitMs, x.writerMaxWaitMs].every(finiteOrNull), `${l.id}: read-write figures`);
      t.is(x.reads + x.writes, l.rw!.grants, `${l.id}: reads + writes = grants`);
      t.true(x.longestWriter === null || (Number.isFinite(x.longestWriter.waitMs) && (x.longestWriter.queuedAhead ?? 0) >= 0), `${l.id}: longest writer`);
      t.is(x.unresolved, 0, `${l.id}: what was ahead of every granted writer is known from the tokens`);
    }
    // Redis cost per acquisition beside redis-semaphore: a row per fairlock row and redis-semaphore,
    // for the lock and the semaphore, each fairlock row with its ratio to redis-semaphore's figure.
    const cost = r.cost ?? [];
    for (const kind of ['lock', 'semaphore'] as const) {
      t.deepEqual(cost.filter((c) => c.kind === kind).map((c) => c.lib), withSem, `cost rows of the ${kind}`);
    }
    for (const c of cost) {
      t.true([c.cpuUsPerAcquisition, c.commandsPerAcquisition, c.scriptCallsPerAcquisition, c.cpuVsPeer, c.commandsVsPeer].every(finiteOrNull), `${c.lib} ${c.kind}: cost figures`);
      const peer = cost.find((p) => p.lib === 'redis-semaphore' && p.kind === c.kind);
      if (c.lib !== 'redis-semaphore' && c.grants > 0 && peer?.grants) {
        t.is(c.cpuVsPeer !== null, Boolean(peer.cpuUsPerAcquisition), `${c.lib} ${c.kind}: CPU ratio to redis-semaphore`);
        t.true(c.commandsVsPeer !== null, `${c.lib} ${c.kind}: commands ratio to redis-semaphore`);
      }
    }
    // the tenants scenario: fairlock's first row with groups and without, redis-semaphore once, nobody else;
    // every quiet request sent got its permit, figures finite (no wait is asserted: the machine is noisy)
    t.deepEqual(r.libs.flatMap((l) => (l.tenants ?? []).map((x) => [l.id, x.mode])), [
      [r.libs[0]!.id, 'groups'], [r.libs[0]!.id, 'fifo'], ['redis-semaphore', 'peer'],
    ]);
    for (const x of r.libs.flatMap((l) => l.tenants ?? [])) {
      t.is(x.quiet.length, r.meta.tenants!.quiet, `${x.mode}: a row per quiet tenant`);
      for (const q of x.quiet) {
        t.true(q.sent > 0 && q.granted === q.sent && q.stillWaiting === 0, `${x.mode} ${q.tenant}: every quiet request granted`);
        t.true([q.wait.p50, q.wait.p99].every(finiteOrNull), `${x.mode} ${q.tenant}: waits`);
      }
      t.is(x.floodGranted, r.meta.tenants!.flood, `${x.mode}: the whole flood granted`);
      t.true([x.permitsBusy, x.cpuUsPerAcquisition, x.scriptUsPerAcquisition, x.commandsPerAcquisition].every(finiteOrNull), `${x.mode}: figures`);
      t.is(x.handoff !== undefined, x.mode !== 'peer', `${x.mode}: the hand-off the target counts in`);
    }
    t.regex(output, /Fair share between tenants/);
    t.regex(output, /Redis cost per acquisition under contention, beside redis-semaphore/);
    t.regex(output, /Fair semaphore: 2 permits/);
    t.regex(output, /Read-write lock: 90% reads, 10% writes/);
    t.true(r.targets.length > 0);
    t.regex(output, /fairlock targets/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
