/**
 * A child process for test/memory.test.ts: acquires and releases many distinct long names, one at a
 * time, and prints on stdout, as JSON, how much the heap grew between a warmed-up start and the end
 * (heapUsed after a full gc at both ends). Run with `node --expose-gc --import=tsx`. With
 * INSTRUMENT=1 the FairLocks is instrumented (an SDK MeterProvider read by hand, maxNames MAX_NAMES)
 * and the probe also reports what the metrics counted per name.
 *
 * env: REDIS_URL, PREFIX, NAMES (count), NAME_CHARS (length of each name), INSTRUMENT (0|1),
 * MAX_NAMES, LIMIT_MS (the loop's time bound).
 */
import { randomBytes } from 'node:crypto';
import { setImmediate as tick } from 'node:timers/promises';
import { MeterProvider, MetricReader, type DataPoint } from '@opentelemetry/sdk-metrics';
import { FairLocks, instrument } from '../../src/index.js';
import { connect } from './redis.js';

class ManualReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`heap-probe: ${k} is not set`);
  return v;
};
const count = Number(env('NAMES'));
const chars = Number(env('NAME_CHARS'));
const limitMs = Number(env('LIMIT_MS'));
const instrumented = env('INSTRUMENT') === '1';
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('heap-probe: run node with --expose-gc');

/** A distinct, flat (not a cons of a shared pad), well-formed name of `chars` characters. */
const nameOf = (i: number): string => `${i}:${randomBytes(Math.ceil((chars * 3) / 4)).toString('base64url')}`.slice(0, chars);

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await tick();
    gc!();
  }
  return process.memoryUsage().heapUsed;
}

const client = await connect(env('REDIS_URL'));
const locks = new FairLocks(client, { prefix: env('PREFIX') });
const reader = new ManualReader();
const provider = new MeterProvider({ readers: [reader] });
if (instrumented) await instrument(locks, { meter: provider.getMeter('probe'), maxNames: Number(env('MAX_NAMES')) });

const deadline = performance.now() + limitMs;
/** One name as each primitive: a lock, a semaphore of 2 (weight 2) and the write side of a read-write lock. */
async function cycle(from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    if (performance.now() > deadline) throw new Error(`heap-probe: ${i - from} names done in ${limitMs} ms, ${to - from} asked`);
    const name = nameOf(i);
    const lease =
      i % 3 === 0
        ? await locks.lock(name).acquire()
        : i % 3 === 1
          ? await locks.semaphore(name, { permits: 2 }).acquire({ weight: 2 })
          : await locks.readWrite(name).write().acquire();
    await lease.release();
  }
}

const warmup = 300;
await cycle(0, warmup); // JIT, the subscriber, the metrics' first names and "other" are in place
if (instrumented) await reader.collect();
const before = await heapAfterGc();
await cycle(warmup, warmup + count);
let grants: { name: string; value: number }[] = [];
if (instrumented) {
  const { resourceMetrics } = await reader.collect();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      if (m.descriptor.name !== 'fairlock.grants') continue;
      grants = (m.dataPoints as DataPoint<number>[]).map((p) => ({ name: String(p.attributes.name), value: p.value }));
    }
  }
}
const after = await heapAfterGc();
const localNames = locks.localWaiters().size;
await locks.close();
await provider.shutdown();
await client.quit();
process.stdout.write(`${JSON.stringify({ growthBytes: after - before, before, after, grants, localNames })}\n`);
