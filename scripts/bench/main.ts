/**
 * `npm run bench`: fairlock against its peers on a real Redis. See docs/bench.md for what each
 * figure means and `npm run bench -- --help` for the options.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, type as osType } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { adapterById } from './adapters/index.js';
import { parseArgs, type BenchConfig, type Scenario } from './config.js';
import { runContention } from './contention.js';
import { contentionCost } from './contention-cost.js';
import { markdown, readmeWithBench } from './docs.js';
import { measureLatency } from './latency.js';
import { startPool, stopPool, type Worker } from './pool.js';
import { QUORUM_ADAPTERS } from './adapters/quorum.js';
import { quorumPids, runQuorum } from './quorum.js';
import { startBenchRedis, type BenchRedis } from './redis-server.js';
import { RedisStats } from './redis-stats.js';
import { spawnRelay, type Relay } from './relay.js';
import { handoffOf, runTenants, tenantsModes, type TenantsResult } from './tenants.js';
import { isFairlock, type BenchResults, type LibResult } from './results.js';
import { round } from './stats.js';
import { chart } from './svg.js';
import { renderTerminal, tables } from './tables.js';
import { checkTargets } from './targets.js';
import { runWaiters } from './waiters.js';

/** Commands a latency run makes that are not the lock's: its PINGs, and what clients send on connecting. */
const HANDSHAKE = ['ping', 'hello', 'client|setinfo', 'client|setname', 'select'];

/** Progress steps of one row: each scenario it runs (and the worker start, if it needs workers). */
function stepsOf(id: string, c: BenchConfig): number {
  const a = adapterById(id);
  const has = (x: Scenario) => c.scenarios.includes(x);
  const pooled = (has('contention') ? c.holds.length : 0) + (has('think') ? 1 : 0) + (has('waiters') ? c.waiters.length : 0) +
    (has('semaphore') && a.kinds?.semaphore ? 1 : 0) + (has('rw') && a.kinds?.rw ? 1 : 0) + tenantSteps(id, c);
  return (has('latency') ? 1 : 0) + (has('relay') ? 1 : 0) + (pooled ? 1 + pooled : 0);
}

/** The tenants scenario's steps of a row: its runs, and for fairlock the hand-off measurement first. */
function tenantSteps(id: string, c: BenchConfig): number {
  if (!c.scenarios.includes('tenants')) return 0;
  const modes = tenantsModes(id, c.libs);
  return modes.length + (modes.includes('groups') ? 1 : 0);
}

/** The contenders per process for `total` contenders in all over `procs` processes (at least one each). */
const perProc = (total: number, procs: number) => Math.max(1, Math.round(total / procs));

async function benchLib(
  id: string,
  c: BenchConfig,
  redis: BenchRedis,
  relay: Relay | undefined,
  stats: RedisStats,
  step: (what: string) => void,
  shared?: Worker[],
): Promise<LibResult> {
  const adapter = adapterById(id);
  const res: LibResult = {
    id, label: adapter.label, client: adapter.client, wakeup: adapter.wakeup, ...(adapter.kinds ? { kinds: adapter.kinds } : {}), contention: [], waiters: [], errors: [],
  };
  const has = (x: Scenario) => c.scenarios.includes(x);
  // a key prefix may not hold spaces: `fairlock (ioredis 5)` -> `bench-fairlock-ioredis-5`
  const prefix = `bench-${id.replace(/[^A-Za-z0-9]+/g, '-').replace(/-$/, '')}`;
  const attempt = async (what: string, f: () => Promise<void>) => {
    step(`${id}: ${what}`);
    try {
      await f();
    } catch (err) {
      res.errors.push(`${what}: ${String((err as Error)?.message ?? err)}`);
    }
  };
  if (has('latency')) await attempt('latency, loopback', async () => {
    const s0 = await stats.snapshot();
    const L = await measureLatency(adapter, redis.url, prefix, c.loopback);
    const s1 = await stats.snapshot();
    const d = RedisStats.delta(s0, s1);
    // the uncontended loop alone is not isolated here; count per grant over the whole latency run
    const grants = L.acquireRelease.n + L.handoff.n * 2 + c.loopback.warmup + 1;
    // neither the PINGs nor the connection handshakes, which differ by client family
    const other = HANDSHAKE.reduce((a, k) => a + (d.byCommand[k] ?? 0), 0);
    res.loopback = { ...L, commandsPerGrant: round((d.commands - other) / grants, 2), cpuUsPerGrant: null };
  });
  if (relay) await attempt(`latency, relay ${c.relayDelayMs} ms`, async () => {
    res.relay = await measureLatency(adapter, relay.url, prefix, c.relay, relay);
  });
  // Fresh workers per library (a peer's abandoned waiters must not load the next one's run),
  // except in --quick, where one pool serves every library to keep the smoke test short.
  let pool: Worker[] = shared ?? [];
  const pooledSteps = stepsOf(id, c) - (has('latency') ? 1 : 0) - (has('relay') ? 1 : 0);
  if (pooledSteps === 0) {
    if (redis.owned) await stats.flushAll();
    return res;
  }
  // the tenants scenario needs two processes (the flood, the quiet tenants); the others c.procs
  const procs = pooledSteps - 1 > tenantSteps(id, c) ? c.procs : Math.min(2, c.procs);
  await attempt(`${procs} worker processes`, async () => {
    if (!shared) pool = await startPool(procs);
    await Promise.all(pool.map((w) => w.call({ op: 'warm', lib: id }, 30_000)));
  });
  try {
    if (pool.length) {
      const base = { contenders: c.contenders, thinkMs: 0, durationMs: c.durationMs, leadMs: c.leadMs, drainMs: c.drainMs, maxGrants: 500_000, slackMs: c.slackMs };
      if (has('contention')) {
        for (const holdMs of c.holds) {
          await attempt(`${c.procs}x${c.contenders}, hold ${holdMs} ms`, async () => {
            res.contention.push(await runContention(pool, stats, adapter, redis.url, prefix, `hot-${holdMs}`, { ...base, holdMs }));
          });
        }
      }
      if (has('think')) {
        await attempt(`think ${c.think.thinkMs} ms`, async () => {
          res.think = await runContention(pool, stats, adapter, redis.url, prefix, 'think', { ...base, ...c.think });
        });
      }
      if (has('semaphore') && adapter.kinds?.semaphore) {
        const s = c.semaphore;
        const per = perProc(s.contenders, pool.length);
        await attempt(`semaphore of ${s.permits}, ${pool.length}x${per}`, async () => {
          res.semaphore = await runContention(pool, stats, adapter, redis.url, prefix, 'sem', {
            ...base, contenders: per, holdMs: s.holdMs, kind: { type: 'semaphore', permits: s.permits }, check: true,
          });
        });
      }
      if (has('rw') && adapter.kinds?.rw) {
        const per = perProc(c.rw.contenders, pool.length);
        await attempt(`read-write ${Math.round((1 - c.rw.writeShare) * 100)}/${Math.round(c.rw.writeShare * 100)}, ${pool.length}x${per}`, async () => {
          res.rw = await runContention(pool, stats, adapter, redis.url, prefix, 'rw', {
            ...base, contenders: per, holdMs: c.rw.holdMs, kind: { type: 'rw', writeShare: c.rw.writeShare }, check: true,
          });
        });
      }
      if (has('waiters')) {
        for (const w of c.waiters) {
          await attempt(`${w} waiters`, async () => {
            res.waiters.push(await runWaiters(pool, stats, adapter, redis.url, prefix, w, { counts: c.waiters, windowMs: c.waitWindowMs, queueCapMs: c.waitQueueCapMs }));
          });
        }
      }
      const modes = has('tenants') ? tenantsModes(id, c.libs) : [];
      if (modes.length) {
        const t = c.tenants;
        let handoff: TenantsResult['handoff'];
        if (modes.includes('groups')) {
          await attempt('hand-off on loopback (the tenants target\'s unit)', async () => {
            handoff = handoffOf(await measureLatency(adapter, redis.url, prefix, c.quick ? c.loopback : { uncontended: 50, handoffs: 100, settleMs: 3, capMs: 1_000, warmup: 10 }));
          });
        }
        for (const mode of modes) {
          await attempt(`tenants (${mode}): ${t.flood} flooding, ${t.quiet} quiet every ${t.intervalMs} ms, semaphore of ${t.permits}, hold ${t.holdMs} ms`, async () => {
            const r = await runTenants(pool, stats, adapter, redis.url, prefix, mode, t);
            (res.tenants ??= []).push(handoff ? { ...r, handoff } : r);
          });
        }
      }
    } else {
      for (let i = 0; i < pooledSteps - 1; i++) step(`${id}: skipped`);
    }
  } finally {
    for (const w of pool) res.errors.push(...w.errors.splice(0));
    if (!shared) await stopPool(pool);
  }
  if (redis.owned) await stats.flushAll();
  return res;
}

/** Late rejections of abandoned waits (a peer's renewal timer on a destroyed client): noted, not fatal. */
const stray: string[] = [];
process.on('unhandledRejection', (err) => void stray.push(String((err as Error)?.message ?? err)));

async function main(): Promise<void> {
  const c = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const redis = await startBenchRedis();
  let relay: Relay | undefined;
  let stats: RedisStats | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let shared: Worker[] | undefined;
  const stopAll = async () => {
    bar?.stop();
    if (shared) await stopPool(shared);
    await stats?.close();
    await relay?.stop();
    await redis.stop();
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Last resort if we die anyway: never leave our redis-server or relay running.
  process.once('exit', () => {
    for (const pid of [relay?.pid, redis.owned ? redis.pid : undefined, ...quorumPids]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  try {
    stats = await RedisStats.connect(redis.url);
    if (redis.owned) await stats.flushAll();
    if (c.scenarios.includes('relay')) relay = await spawnRelay(redis.url, c.relayDelayMs);
    // the quorum scenario runs on servers of its own, after the rows: each size's set-up, each library's latency, contention on the first size
    const quorumSteps = c.scenarios.includes('quorum') ? c.quorum.sizes.length * (1 + QUORUM_ADAPTERS.length) + QUORUM_ADAPTERS.length * c.quorum.holdsMs.length : 0;
    const rows = c.scenarios.some((x) => x !== 'quorum') ? c.libs : [];
    const total = rows.reduce((a, id) => a + stepsOf(id, c), 0) + quorumSteps;
    if (c.progress && process.stderr.isTTY !== undefined) {
      bar = new cliProgress.SingleBar(
        { format: 'bench [{bar}] {value}/{total} | {eta_formatted} left | {step}', stream: process.stderr, hideCursor: true, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { step: 'starting' });
    }
    let done = 0;
    const step = (what: string) => {
      if (bar) bar.update(done++, { step: what });
      else if (!c.quick || process.env.BENCH_TRACE) console.error(`[${++done}/${total}] ${((Date.now() - started) / 1000).toFixed(1)} s ${what}`);
    };
    const libs: LibResult[] = [];
    const pooled = rows.some((id) => stepsOf(id, c) > (c.scenarios.includes('latency') ? 1 : 0) + (c.scenarios.includes('relay') ? 1 : 0));
    shared = c.quick && pooled ? await startPool(c.procs) : undefined;
    for (const id of rows) libs.push(await benchLib(id, c, redis, relay, stats, step, shared));
    const quorum = c.scenarios.includes('quorum') ? await runQuorum(c.quorum, step) : undefined;
    bar?.update(total, { step: 'done' });
    bar?.stop();
    bar = undefined;
    const results: BenchResults = {
      meta: {
        date: new Date().toISOString(),
        command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
        node: process.versions.node,
        redis: redis.version,
        cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
        cores: cpus().length,
        os: `${osType()} ${release()}`,
        relayDelayMs: c.relayDelayMs,
        waitWindowMs: c.waitWindowMs,
        waitQueueCapMs: c.waitQueueCapMs,
        thinkHoldMs: c.think.holdMs,
        procs: c.procs,
        contenders: c.contenders,
        scenarios: c.scenarios,
        semaphore: c.semaphore,
        rw: c.rw,
        tenants: c.tenants,
        quick: c.quick,
        elapsedSec: round((Date.now() - started) / 1000, 1)!,
      },
      libs,
      cost: contentionCost(libs),
      ...(quorum ? { quorum } : {}),
      targets: checkTargets(libs, c.scenarios),
    };
    mkdirSync(c.outDir, { recursive: true });
    const json = `${JSON.stringify(results, null, 2)}\n`;
    writeFileSync(join(c.outDir, 'latest.json'), json);
    if (c.docs) {
      mkdirSync('docs', { recursive: true });
      writeFileSync('docs/bench.json', json);
      writeFileSync('docs/bench.svg', chart(results));
      writeFileSync('docs/bench.md', markdown(results));
      // README's copy of the section, between its markers only
      const readme = existsSync('README.md') ? readmeWithBench(readFileSync('README.md', 'utf8'), results) : null;
      if (readme !== null) writeFileSync('README.md', readme);
    }
    console.log(renderTerminal(tables(results)));
    if (results.targets.length) {
      console.log(`\nfairlock targets (${libs.find(isFairlock)?.id})`);
      for (const t of results.targets) console.log(`  ${t.met === null ? ' n/a' : t.met ? '  ok' : 'MISS'}  ${t.what}: ${t.value} (goal ${t.goal})`);
    }
    if (quorum?.targets.length) {
      console.log(`\nfairlock quorum targets (issue 20; beside ${quorum.libs[1]?.id})`);
      for (const t of quorum.targets) console.log(`  ${t.met === null ? ' n/a' : t.met ? '  ok' : 'MISS'}  ${t.what}: ${t.value} (goal ${t.goal})`);
    }
    const errors = [...libs.flatMap((l) => l.errors.map((e) => `${l.id}: ${e}`)), ...(quorum?.errors.map((e) => `quorum: ${e}`) ?? [])];
    if (stray.length) console.log(`\n${stray.length} late rejections of abandoned waits ignored (first: ${stray[0]})`);
    if (errors.length) console.log(`\nerrors:\n  ${errors.join('\n  ')}`);
    console.log(`\nraw figures: ${join(c.outDir, 'latest.json')}${c.docs ? '; docs/bench.{json,svg,md} and README.md\'s bench section written' : ''} (${results.meta.elapsedSec} s)`);
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
