/**
 * instrument(locks): the OpenTelemetry metrics, read back through the SDK's own MeterProvider and a
 * reader collected by hand (no timers): a scripted run and its exact counts.
 */
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import test, { type ExecutionContext } from 'ava';
import { FairLocks, instrument, InvalidArgumentError, LockAbortedError, LockTimeoutError, type MetricsOptions } from '../src/index.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();

class ManualReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** Each metric's data points by name, as the SDK aggregated them so far. */
async function read(reader: MetricReader): Promise<Map<string, DataPoint<unknown>[]>> {
  const { resourceMetrics, errors } = await reader.collect();
  if (errors.length > 0) throw errors[0];
  const out = new Map<string, DataPoint<unknown>[]>();
  for (const scope of resourceMetrics.scopeMetrics) for (const m of scope.metrics) out.set(m.descriptor.name, m.dataPoints as DataPoint<unknown>[]);
  return out;
}

const sum = (points: DataPoint<unknown>[] | undefined, attrs: Record<string, string>) =>
  (points ?? []).filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((s, p) => s + (p.value as number), 0);
const histogram = (points: DataPoint<unknown>[] | undefined, attrs: Record<string, string>) =>
  (points ?? []).find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))?.value as Histogram | undefined;

async function setup(t: ExecutionContext, options: Omit<MetricsOptions, 'meter'> = {}) {
  const reader = new ManualReader();
  const provider = new MeterProvider({ readers: [reader] });
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  const handle = await instrument(locks, { ...options, meter: provider.getMeter('test') });
  t.teardown(async () => {
    handle.stop();
    await locks.close();
    await provider.shutdown();
  });
  return { reader, locks };
}

test('a scripted run: 3 grants, 1 timeout, 1 abort, 1 hand-off, and the queue gauge', async (t) => {
  const { reader, locks } = await setup(t);
  const lock = locks.lock('m');
  const first = await lock.acquire(); // grant 1
  await t.throwsAsync(lock.acquire({ timeoutMs: 50 }), { instanceOf: LockTimeoutError });
  const controller = new AbortController();
  const q1 = whenQueued();
  const aborted = lock.acquire({ signal: controller.signal, onQueued: q1.onQueued });
  await q1.queued;
  controller.abort();
  await t.throwsAsync(aborted, { instanceOf: LockAbortedError });

  const q2 = whenQueued();
  const waiting = lock.acquire({ onQueued: q2.onQueued });
  await q2.queued;
  let m = await read(reader);
  t.is(sum(m.get('fairlock.queue.length'), { name: 'm' }), 1, 'one waiter of this process on "m"');
  await first.release();
  const second = await waiting; // grant 2, a hand-off from our own release
  await second.release();
  const third = (await lock.tryAcquire())!; // grant 3
  await third.release();

  m = await read(reader);
  const attrs = { name: 'm', kind: 'lock' };
  t.is(sum(m.get('fairlock.grants'), attrs), 3);
  t.is(sum(m.get('fairlock.timeouts'), attrs), 1);
  t.is(sum(m.get('fairlock.aborts'), attrs), 1);
  t.is(sum(m.get('fairlock.losses'), attrs), 0);
  t.is(sum(m.get('fairlock.redis_errors'), { name: 'm' }), 0);
  t.is(sum(m.get('fairlock.queue.length'), { name: 'm' }), 0, 'the emptied queue reads 0');
  const wait = histogram(m.get('fairlock.wait'), attrs)!;
  t.is(wait.count, 3);
  t.true(wait.sum! > 0);
  const hold = histogram(m.get('fairlock.hold'), attrs)!;
  t.is(hold.count, 3);
  t.true(hold.sum! > 0);
  const handoff = histogram(m.get('fairlock.handoff'), attrs)!;
  t.is(handoff.count, 1, 'only the grant of a waiter queued before our release is a hand-off');
  t.true(handoff.sum! >= 0);
});

test('a hand-off is counted though a slow listener before the metrics runs them long after the grant', async (t) => {
  const reader = new ManualReader();
  const provider = new MeterProvider({ readers: [reader] });
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  // Registered first, so it runs before the metrics' listener: as a process descheduled between the
  // grant and the listeners would, it makes any clock read there later than the grant by 100 ms.
  locks.on('granted', () => {
    const until = performance.now() + 100;
    while (performance.now() < until);
  });
  const handle = await instrument(locks, { meter: provider.getMeter('test') });
  t.teardown(async () => {
    handle.stop();
    await locks.close();
    await provider.shutdown();
  });
  const lock = locks.lock('h');
  const first = await lock.acquire();
  const q = whenQueued();
  const waiting = lock.acquire({ onQueued: q.onQueued });
  await q.queued;
  await first.release(); // at once: the waiter waited far less than the listener's 100 ms
  await (await waiting).release();
  const handoff = histogram((await read(reader)).get('fairlock.handoff'), { name: 'h', kind: 'lock' });
  t.is(handoff?.count, 1);
});

test('losses are counted; names beyond maxNames are recorded as "other"', async (t) => {
  const { reader, locks } = await setup(t, { maxNames: 1 });
  const a = await locks.lock('a').acquire();
  await a.release();
  const b = await locks.lock('b').acquire({ leaseMs: 50, autoRenew: false });
  await new Promise((r) => setTimeout(r, 150));
  t.false(b.held);
  const m = await read(reader);
  t.is(sum(m.get('fairlock.grants'), { name: 'a' }), 1);
  t.is(sum(m.get('fairlock.grants'), { name: 'other' }), 1);
  t.is(sum(m.get('fairlock.losses'), { name: 'other', kind: 'lock' }), 1);
  t.false((m.get('fairlock.grants') ?? []).some((p) => p.attributes.name === 'b'));
});

test('without a meter it uses the global provider of @opentelemetry/api; stop() ends recording', async (t) => {
  const reader = new ManualReader();
  const provider = new MeterProvider({ readers: [reader] });
  t.true(metrics.setGlobalMeterProvider(provider));
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  t.teardown(async () => {
    await locks.close();
    metrics.disable();
    await provider.shutdown();
  });
  const handle = await instrument(locks);
  await (await locks.semaphore('g', { permits: 2 }).acquire({ weight: 2 })).release();
  handle.stop();
  await (await locks.semaphore('g', { permits: 2 }).acquire()).release();
  const m = await read(reader);
  t.is(sum(m.get('fairlock.grants'), { name: 'g', kind: 'semaphore' }), 1);
  t.is(locks.listenerCount('granted'), 0, 'stop() removed its listeners');
});

// The hand-off state is keyed like the attributes (test/per-name-memory.test.ts proves it stays bounded):
// a hand-off on a name beyond maxNames is still recorded, under "other".
test('a hand-off on a name beyond maxNames is recorded under "other"', async (t) => {
  const { reader, locks } = await setup(t, { maxNames: 1 });
  await (await locks.lock('first').acquire()).release();
  const lock = locks.lock('second');
  const held = await lock.acquire();
  const q = whenQueued();
  const waiting = lock.acquire({ onQueued: q.onQueued });
  await q.queued;
  await held.release();
  await (await waiting).release();
  const m = await read(reader);
  t.is(histogram(m.get('fairlock.handoff'), { name: 'other', kind: 'lock' })?.count, 1);
  t.is(sum(m.get('fairlock.grants'), { name: 'other' }), 2);
});

/**
 * Proves the group attribute: each point of a request in a group carries it, the default group's
 * carry none, and groups beyond maxGroups share "other" (OTHER_GROUP), so that 50 tenants cost
 * maxGroups + 1 series per name and kind; the queue gauge counts this process's waiters per group.
 */
test('the group is an attribute, bounded by maxGroups ("other" beyond); the default group has none', async (t) => {
  const { reader, locks } = await setup(t, { maxGroups: 3 });
  const pool = locks.semaphore('pool', { permits: 2 });
  const groups = Array.from({ length: 50 }, (_, i) => `tenant-${i}`);
  for (const group of groups) await (await pool.acquire({ group })).release();
  await (await pool.acquire()).release(); // the default group

  // A wait on a lock held in the default group: one waiter in a group, one in the default group, one timeout.
  const lock = locks.lock('one');
  const held = await lock.acquire();
  await t.throwsAsync(lock.acquire({ group: 'tenant-1', timeoutMs: 50 }), { instanceOf: LockTimeoutError });
  const q1 = whenQueued();
  const inGroup = lock.acquire({ group: 'tenant-0', onQueued: q1.onQueued });
  await q1.queued;
  const q2 = whenQueued();
  const plain = lock.acquire({ onQueued: q2.onQueued });
  await q2.queued;
  let m = await read(reader);
  t.is(sum(m.get('fairlock.queue.length'), { name: 'one', group: 'tenant-0' }), 1, "the gauge: this process's waiter in its group");
  const defaultQueue = (m.get('fairlock.queue.length') ?? []).filter((p) => p.attributes.name === 'one' && p.attributes.group === undefined);
  t.deepEqual(defaultQueue.map((p) => p.value), [1], 'and the default group\'s, without a group attribute');
  await held.release();
  await (await inGroup).release();
  await (await plain).release();

  m = await read(reader);
  const grants = (m.get('fairlock.grants') ?? []).filter((p) => p.attributes.name === 'pool');
  const byGroup = new Map(grants.map((p) => [p.attributes.group ?? '(none)', p.value as number]));
  t.deepEqual(
    [...byGroup].sort(),
    [['(none)', 1], ['other', 47], ['tenant-0', 1], ['tenant-1', 1], ['tenant-2', 1]],
    'the first 3 groups as themselves, the other 47 as "other", the default group without a group attribute',
  );
  t.true(grants.every((p) => p.attributes.kind === 'semaphore'));
  t.is(histogram(m.get('fairlock.wait'), { name: 'pool', group: 'other' })?.count, 47);
  t.is(histogram(m.get('fairlock.hold'), { name: 'pool', group: 'tenant-2' })?.count, 1);
  t.is(sum(m.get('fairlock.timeouts'), { name: 'one', kind: 'lock', group: 'tenant-1' }), 1);
  t.is(sum(m.get('fairlock.grants'), { name: 'one', group: 'tenant-0' }), 1);
  const seen = new Set([...m.values()].flat().map((p) => p.attributes.group).filter((g) => g !== undefined));
  t.deepEqual([...seen].sort(), ['other', 'tenant-0', 'tenant-1', 'tenant-2'], 'no point names a group beyond maxGroups');
  await t.throwsAsync(instrument(locks, { maxGroups: -1, meter: metrics.getMeter('x') }), { instanceOf: InvalidArgumentError });
});
