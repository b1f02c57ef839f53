/**
 * `npm run bench`: fairlock against its peers on a real Redis. See docs/bench.md for what each
 * figure means and `npm run bench -- --help` for the options.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, type as osType } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { adapterById } from './adapters/index.js';
import { parseArgs, type BenchConfig } from './config.js';
import { runContention } from './contention.js';
import { markdown } from './docs.js';
import { measureLatency } from './latency.js';
import { startPool, stopPool, type Worker } from './pool.js';
import { startBenchRedis, type BenchRedis } from './redis-server.js';
import { RedisStats } from './redis-stats.js';
import { spawnRelay, type Relay } from './relay.js';
import { isFairlock, type BenchResults, type LibResult } from './results.js';
import { round } from './stats.js';
import { chart } from './svg.js';
import { renderTerminal, tables } from './tables.js';
import { checkTargets } from './targets.js';
import { runWaiters } from './waiters.js';

/** Commands a latency run makes that are not the lock's: its PINGs, and what clients send on connecting. */
const HANDSHAKE = ['ping', 'hello', 'client|setinfo', 'client|setname', 'select'];

const STEPS_PER_LIB = (c: BenchConfig) => 3 + c.holds.length + 1 + c.waiters.length;

async function benchLib(
  id: string,
  c: BenchConfig,
  redis: BenchRedis,
  relay: Relay,
  stats: RedisStats,
  step: (what: string) => void,
  shared?: Worker[],
): Promise<LibResult> {
  const adapter = adapterById(id);
  const res: LibResult = { id, label: adapter.label, client: adapter.client, wakeup: adapter.wakeup, contention: [], waiters: [], errors: [] };
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
  await attempt('latency, loopback', async () => {
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
  await attempt(`latency, relay ${c.relayDelayMs} ms`, async () => {
    res.relay = await measureLatency(adapter, relay.url, prefix, c.relay, relay);
  });
  // Fresh workers per library (a peer's abandoned waiters must not load the next one's run),
  // except in --quick, where one pool serves every library to keep the smoke test short.
  let pool: Worker[] = shared ?? [];
  await attempt(`${c.procs} worker processes`, async () => {
    if (!shared) pool = await startPool(c.procs);
    await Promise.all(pool.map((w) => w.call({ op: 'warm', lib: id }, 30_000)));
  });
  try {
    if (pool.length) {
      const base = { contenders: c.contenders, thinkMs: 0, durationMs: c.durationMs, leadMs: c.leadMs, drainMs: c.drainMs, maxGrants: 500_000, slackMs: c.slackMs };
      for (const holdMs of c.holds) {
        await attempt(`${c.procs}x${c.contenders}, hold ${holdMs} ms`, async () => {
          res.contention.push(await runContention(pool, stats, adapter, redis.url, prefix, `hot-${holdMs}`, { ...base, holdMs }));
        });
      }
      await attempt(`think ${c.think.thinkMs} ms`, async () => {
        res.think = await runContention(pool, stats, adapter, redis.url, prefix, 'think', { ...base, ...c.think });
      });
      for (const w of c.waiters) {
        await attempt(`${w} waiters`, async () => {
          res.waiters.push(await runWaiters(pool, stats, adapter, redis.url, prefix, w, { counts: c.waiters, windowMs: c.waitWindowMs, queueCapMs: c.waitQueueCapMs }));
        });
      }
    } else {
      for (let i = 0; i < c.holds.length + 1 + c.waiters.length; i++) step(`${id}: skipped`);
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
    for (const pid of [relay?.pid, redis.owned ? redis.pid : undefined]) {
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
    relay = await spawnRelay(redis.url, c.relayDelayMs);
    const total = c.libs.length * STEPS_PER_LIB(c);
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
    shared = c.quick ? await startPool(c.procs) : undefined;
    for (const id of c.libs) libs.push(await benchLib(id, c, redis, relay, stats, step, shared));
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
        quick: c.quick,
        elapsedSec: round((Date.now() - started) / 1000, 1)!,
      },
      libs,
      targets: checkTargets(libs),
    };
    mkdirSync(c.outDir, { recursive: true });
    const json = `${JSON.stringify(results, null, 2)}\n`;
    writeFileSync(join(c.outDir, 'latest.json'), json);
    if (c.docs) {
      mkdirSync('docs', { recursive: true });
      writeFileSync('docs/bench.json', json);
      writeFileSync('docs/bench.svg', chart(results));
      writeFileSync('docs/bench.md', markdown(results));
    }
    console.log(renderTerminal(tables(results)));
    if (results.targets.length) {
      console.log(`\nfairlock targets (${libs.find(isFairlock)?.id})`);
      for (const t of results.targets) console.log(`  ${t.met === null ? ' n/a' : t.met ? '  ok' : 'MISS'}  ${t.what}: ${t.value} (goal ${t.goal})`);
    }
    const errors = libs.flatMap((l) => l.errors.map((e) => `${l.id}: ${e}`));
    if (stray.length) console.log(`\n${stray.length} late rejections of abandoned waits ignored (first: ${stray[0]})`);
    if (errors.length) console.log(`\nerrors:\n  ${errors.join('\n  ')}`);
    console.log(`\nraw figures: ${join(c.outDir, 'latest.json')}${c.docs ? '; docs/bench.{json,svg,md} written' : ''} (${results.meta.elapsedSec} s)`);
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
