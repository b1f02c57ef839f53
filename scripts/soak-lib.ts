/**
 * The soak driver: thousands of names, a changing set of worker processes (soak-worker.ts; residents
 * that live the whole run, and churners that are stopped and replaced over time, each by PID), steady
 * traffic on every primitive, occasional faults (a churner SIGKILLed, any worker SIGSTOPped then
 * SIGCONTed, a worker's lock connection killed with CLIENT KILL), sampled every `sampleEveryMs`:
 * keys of the prefix (bounded SCAN) and those without an expiry, Redis used_memory and engine calls/s
 * (INFO commandstats), the residents' heap (after a full gc) and active handles, the driver's own,
 * hand-off latency p50/p99 (measured inside one worker, see soak-worker.ts) and heartbeats/s.
 * At the end every worker is stopped, the leases of the killed ones run out, names still holding
 * queue entries of dead sessions are touched once (a dead waiter is dropped when the engine meets it),
 * and the prefix is scanned: checks in soak-check.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createClient } from 'redis';
import { quantile } from 'simple-statistics';
import { FairLocks } from '../src/index.js';
import { RELEASES_KEPT } from '../src/protocol/codes.js';
import { startRedis, newPrefix, type RedisServer } from '../test/helpers/redis.js';
import type { RedisClient } from '../test/helpers/redis-client.js';
import { checkDrift, keysWithoutExpiry, leftoverKeys, type DriftBound, type DriftVerdict, type Point, type ScannedKey } from './soak-check.js';
import { GROUP_SEMAPHORE, SEMAPHORE, handoffName, kindOf, nameOf, type SoakCommand, type SoakInit, type SoakReport, type SoakWorkerMessage } from './soak-worker.js';

const WORKER = fileURLToPath(new URL('./soak-worker.ts', import.meta.url));

export interface SoakOptions {
  durationMs: number;
  sampleEveryMs: number;
  warmupMs: number;
  names: number;
  residents: number;
  churners: number;
  contenders: number;
  churnEveryMs: number;
  faultEveryMs: number;
  holdMaxMs: number;
  longShare: number;
  longHoldMs: number;
  pauseMaxMs: number;
  handoffEveryMs: number;
  leaseMs: number;
  livenessMs: number;
  heartbeatMs: number;
  /**
   * Series fitted and reported but not judged: the rates and latencies, which follow the machine's
   * load, when the run shares the machine with other work (CI runs it beside the Node 24 suite).
   */
  advisory: SeriesName[];
  log: (line: string) => void;
}

/** Defaults in one place; a 2-minute CI run uses them as they are (modest CPU: 5 workers, ~20 ops/s each). */
export const SOAK_DEFAULTS = {
  durationMs: 60 * 60_000,
  sampleEveryMs: 10_000,
  names: 2_000,
  residents: 2,
  churners: 3,
  contenders: 3,
  churnEveryMs: 15_000,
  faultEveryMs: 20_000,
  holdMaxMs: 20,
  longShare: 0.05,
  longHoldMs: 2_500,
  pauseMaxMs: 150,
  handoffEveryMs: 250,
  leaseMs: 3_000,
  livenessMs: 3_000,
  heartbeatMs: 1_000,
} as const;

/** Warm-up: the first 20% of the run, at least 30 s (the first minute of a short run is start-up). */
export const warmupFor = (durationMs: number): number => Math.max(0.2 * durationMs, Math.min(30_000, 0.5 * durationMs));
/** A short run samples more often, so the drift fit has enough points: 24 samples at least. */
export const sampleEveryFor = (durationMs: number): number => Math.min(SOAK_DEFAULTS.sampleEveryMs, Math.max(1_000, Math.floor(durationMs / 24)));

/** The drift-checked series: their units and bounds (see DriftBound). */
export const SERIES: Record<string, { unit: string; bound: DriftBound; label: string }> = {
  keys: { unit: 'keys', bound: { fraction: 0.05, floor: 50 }, label: 'keys of the prefix' },
  usedMemory: { unit: 'B', bound: { fraction: 0.1, floor: 2 * 2 ** 20 }, label: 'Redis used_memory' },
  residentHeap: { unit: 'B', bound: { fraction: 0.1, floor: 2 * 2 ** 20 }, label: 'resident workers heapUsed (mean, after gc)' },
  residentHandles: { unit: 'handles', bound: { fraction: 0.25, floor: 10 }, label: 'resident workers active handles (max)' },
  driverHeap: { unit: 'B', bound: { fraction: 0.1, floor: 2 * 2 ** 20 }, label: 'driver heapUsed (after gc)' },
  driverHandles: { unit: 'handles', bound: { fraction: 0.25, floor: 10 }, label: 'driver active handles' },
  // Latencies swing with the machine's load (2 shared cores): only a doubling, significant, fails.
  handoffP50: { unit: 'ms', bound: { fraction: 1, floor: 10 }, label: 'hand-off p50' },
  handoffP99: { unit: 'ms', bound: { fraction: 1, floor: 50 }, label: 'hand-off p99' },
  // Beats follow the random long holds; a storm of beats for names no longer held would be a multiple.
  heartbeatsPerS: { unit: '/s', bound: { fraction: 0.5, floor: 3 }, label: 'heartbeats/s (all workers)' },
  engineCallsPerS: { unit: '/s', bound: { fraction: 0.25, floor: 20 }, label: 'engine calls/s (FCALL+EVALSHA)' },
};
export type SeriesName = keyof typeof SERIES;

export interface Sample {
  t: number;
  workers: number;
  keys: number;
  keysNoExpiry: number;
  usedMemory: number;
  residentHeap: number;
  residentHandles: number;
  driverHeap: number;
  driverHandles: number;
  handoffP50: number;
  handoffP99: number;
  handoffs: number;
  heartbeatsPerS: number;
  engineCallsPerS: number;
  grantsPerS: number;
}

export interface SoakResult {
  options: Omit<SoakOptions, 'log'>;
  redis: string;
  samples: Sample[];
  drift: DriftVerdict[];
  noExpiry: string[];
  leftover: string[];
  swept: number;
  faults: { kills: number; pauses: number; disconnects: number; churns: number; spawned: number };
  errors: Record<string, number>;
  pass: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

class Worker {
  alive = true;
  ready = false;
  paused = false;
  done = false;
  pending = new Map<number, (r: SoakReport | undefined) => void>();
  constructor(
    readonly proc: ChildProcess,
    readonly slot: number,
    readonly resident: boolean,
  ) {
    proc.on('message', (m: SoakWorkerMessage) => {
      if (m.ev === 'ready') this.ready = true;
      else if (m.ev === 'done') this.done = true;
      else if (m.ev === 'report') this.pending.get(m.seq)?.(m);
    });
    proc.on('exit', () => {
      this.alive = false;
      for (const r of this.pending.values()) r(undefined);
    });
  }
  get pid(): number {
    return this.proc.pid!;
  }
  send(c: SoakCommand): void {
    // A worker can die between the check and the write (EPIPE): the callback takes that error, which
    // would otherwise be an unhandled 'error' event that ends the driver (seen in CI).
    if (this.alive && this.proc.connected) this.proc.send(c, (err) => void err);
  }
  signal(sig: NodeJS.Signals): void {
    if (this.alive) process.kill(this.pid, sig);
  }
  /** The counts since its last report, or undefined when it does not answer in time (paused, dying). */
  report(seq: number, withinMs: number): Promise<SoakReport | undefined> {
    if (!this.alive || !this.ready || this.paused) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), withinMs);
      const finish = (r: SoakReport | undefined) => {
        clearTimeout(timer);
        this.pending.delete(seq);
        resolve(r);
      };
      this.pending.set(seq, finish);
      this.send({ op: 'report', seq });
    });
  }
  /** Exits, waited for at most `ms`, then SIGKILL (SIGCONT first: a stopped process ignores the rest). */
  async exited(ms: number): Promise<void> {
    for (const end = Date.now() + ms; this.alive && Date.now() < end; ) await sleep(50);
    if (this.alive) {
      this.signal('SIGCONT');
      this.signal('SIGKILL');
      for (const end = Date.now() + 5_000; this.alive && Date.now() < end; ) await sleep(50);
    }
  }
}

/** Every key of the prefix (SCAN MATCH, bounded in rounds) with its PTTL and, for a state hash, whether it names holders. */
export async function scanPrefix(admin: RedisClient, prefix: string, maxKeys = 1_000_000): Promise<ScannedKey[]> {
  const keys: string[] = [];
  let cursor = '0';
  for (let round = 0; round < maxKeys / 100; round++) {
    const [next, batch] = (await admin.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}:*`, 'COUNT', '1000'])) as [string, string[]];
    keys.push(...batch);
    cursor = String(next);
    if (cursor === '0' || keys.length >= maxKeys) break;
  }
  const unique = [...new Set(keys)];
  const out: ScannedKey[] = [];
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500);
    const ttls = await Promise.all(chunk.map((k) => admin.sendCommand(['PTTL', k]) as Promise<number>));
    const holders = await Promise.all(chunk.map((k) => (k.endsWith(':state') ? (admin.sendCommand(['HGET', k, 'h']) as Promise<string | null>) : Promise.resolve(null))));
    chunk.forEach((key, j) => out.push({ key, pttl: Number(ttls[j]), ...(key.endsWith(':state') ? { holders: (holders[j] ?? '') !== '' } : {}) }));
  }
  return out;
}

async function info(admin: RedisClient): Promise<{ usedMemory: number; engineCalls: number }> {
  const text = String(await admin.sendCommand(['INFO', 'all']));
  const calls = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { usedMemory: Number(/^used_memory:(\d+)/m.exec(text)?.[1] ?? NaN), engineCalls: calls('fcall') + calls('evalsha') };
}

/** Touches name i once with its own primitive (prime: creates its keys; sweep: the engine drops dead waiters and holders it meets). */
async function touch(locks: FairLocks, i: number, timeoutMs: number): Promise<void> {
  const name = nameOf(i);
  const kind = kindOf(i);
  const lock =
    kind === 'semaphore'
      ? locks.semaphore(name, { permits: SEMAPHORE.permits })
      : kind === 'group-semaphore'
        ? locks.semaphore(name, { permits: GROUP_SEMAPHORE.permits, perGroup: GROUP_SEMAPHORE.perGroup })
        : kind === 'rw'
          ? locks.readWrite(name).write()
          : locks.lock(name);
  const lease = await lock.acquire({ timeoutMs });
  await lease.release();
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const server: RedisServer = await startRedis();
  const admin = createClient({ url: server.url }) as RedisClient;
  admin.on('error', () => undefined);
  await admin.connect();
  const prefix = newPrefix('soak');
  const workers: Worker[] = [];
  const faults = { kills: 0, pauses: 0, disconnects: 0, churns: 0, spawned: 0 };
  const errors: Record<string, number> = {};
  const samples: Sample[] = [];
  let swept = 0;
  // If the driver dies (Ctrl-C, SIGTERM), no worker outlives it, a SIGSTOPped one included.
  const killAll = () => {
    for (const w of workers) if (w.alive) (w.signal('SIGCONT'), w.signal('SIGKILL'));
  };
  process.once('exit', killAll);
  try {
    // Prime every name RELEASES_KEPT times, so the key count and Redis memory start at their plateau: a
    // name's state outlives idle spells by design, and keeps the last RELEASES_KEPT releases' ids (a
    // bounded field that would otherwise fill slowly over the first many minutes of 2,000 names).
    const driverLocks = new FairLocks(admin, { prefix, leaseMs: o.leaseMs, livenessMs: o.livenessMs, heartbeatMs: o.heartbeatMs });
    for (let round = 0; round < RELEASES_KEPT; round++) {
      for (let i = 0; i < o.names; i += 200) await Promise.all(Array.from({ length: Math.min(200, o.names - i) }, (_, j) => touch(driverLocks, i + j, 5_000)));
    }
    o.log(`soak: ${o.names} names primed on ${server.url} (prefix ${prefix})`);

    const init = (slot: number): SoakInit => ({
      op: 'init',
      url: server.url,
      prefix,
      slot,
      names: o.names,
      hotShare: 0.3,
      hotNames: 20,
      contenders: o.contenders,
      holdMaxMs: o.holdMaxMs,
      longShare: o.longShare,
      longHoldMs: o.longHoldMs,
      pauseMaxMs: o.pauseMaxMs,
      handoffEveryMs: o.handoffEveryMs,
      options: { leaseMs: o.leaseMs, livenessMs: o.livenessMs, heartbeatMs: o.heartbeatMs },
    });
    const spawn = (slot: number, resident: boolean) => {
      const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const w = new Worker(proc, slot, resident);
      workers.push(w);
      faults.spawned++;
      w.send(init(slot));
    };
    const slots = o.residents + o.churners;
    for (let s = 0; s < slots; s++) spawn(s, s < o.residents);
    const live = () => workers.filter((w) => w.alive);
    // The run's clock starts once the first workers are up (start-up on a loaded machine takes seconds).
    for (const until = Date.now() + 60_000; Date.now() < until && live().some((w) => !w.ready); ) await sleep(100);
    const freeSlots = () => Array.from({ length: slots }, (_, s) => s).filter((s) => !live().some((w) => w.slot === s));

    const started = Date.now();
    const end = started + o.durationMs;
    let nextSample = started + o.sampleEveryMs;
    let nextChurn = started + o.churnEveryMs * (0.5 + Math.random());
    let nextFault = started + o.faultEveryMs * (0.5 + Math.random());
    let last = await info(admin);
    let lastAt = Date.now();
    let seq = 0;
    let faultSeq = 0;
    while (Date.now() < end) {
      await sleep(Math.max(10, Math.min(nextSample, nextChurn, nextFault, end) - Date.now()));
      const now = Date.now();
      // Respawn into the slots a kill or a churn emptied (a killed churner comes back a bit later).
      for (const s of freeSlots()) spawn(s, s < o.residents);
      if (now >= nextChurn) {
        nextChurn = now + o.churnEveryMs * (0.5 + Math.random());
        const victim = live().filter((w) => !w.resident && w.ready && !w.paused);
        const w = victim[Math.floor(Math.random() * victim.length)];
        if (w) {
          faults.churns++;
          w.send({ op: 'stop' });
          void w.exited(10_000);
        }
      }
      if (now >= nextFault) {
        nextFault = now + o.faultEveryMs * (0.5 + Math.random());
        // In turn, so a short run sees each kind: a churner SIGKILLed, any worker paused, any worker's lock connection killed.
        const kind = (['kill', 'pause', 'disconnect'] as const)[faultSeq++ % 3];
        const ready = live().filter((w) => w.ready && !w.paused);
        const churner = ready.filter((w) => !w.resident);
        if (kind === 'kill' && churner.length > 0) {
          const w = churner[Math.floor(Math.random() * churner.length)]!;
          faults.kills++;
          w.signal('SIGKILL');
        } else if (kind === 'pause' && ready.length > 0) {
          const w = ready[Math.floor(Math.random() * ready.length)]!;
          faults.pauses++;
          w.paused = true;
          w.signal('SIGSTOP');
          setTimeout(() => {
            w.signal('SIGCONT');
            w.paused = false;
          }, 300 + Math.random() * 1_700);
        } else if (ready.length > 0) {
          const w = ready[Math.floor(Math.random() * ready.length)]!;
          const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
          const ids = [...list.matchAll(new RegExp(`^id=(\\d+) .*name=soak-${w.pid} `, 'gm'))].map((m) => m[1]!);
          for (const id of ids) await admin.sendCommand(['CLIENT', 'KILL', 'ID', id]).catch(() => undefined);
          if (ids.length > 0) faults.disconnects++;
        }
      }
      if (Date.now() >= nextSample) {
        nextSample += o.sampleEveryMs;
        const reports = (await Promise.all(live().map(async (w) => ({ w, r: await w.report(++seq, 2_000) })))).filter((x) => x.r !== undefined) as { w: Worker; r: SoakReport }[];
        const keys = await scanPrefix(admin, prefix);
        const stats = await info(admin);
        const at = Date.now();
        const secs = (at - lastAt) / 1000;
        const residents = reports.filter((x) => x.w.resident).map((x) => x.r);
        const handoffs = reports.flatMap((x) => x.r.handoffs).sort((a, b) => a - b);
        for (const { r } of reports) for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
        gc();
        const sample: Sample = {
          t: (at - started) / 1000,
          workers: live().length,
          keys: keys.length,
          keysNoExpiry: keysWithoutExpiry(prefix, keys).length,
          usedMemory: stats.usedMemory,
          residentHeap: residents.length ? residents.reduce((s, r) => s + r.heapUsed, 0) / residents.length : NaN,
          residentHandles: residents.length ? Math.max(...residents.map((r) => r.handles)) : NaN,
          driverHeap: process.memoryUsage().heapUsed,
          driverHandles: process.getActiveResourcesInfo().length,
          handoffP50: handoffs.length ? quantile(handoffs, 0.5) : NaN,
          handoffP99: handoffs.length ? quantile(handoffs, 0.99) : NaN,
          handoffs: handoffs.length,
          heartbeatsPerS: reports.reduce((s, x) => s + x.r.heartbeats, 0) / secs,
          engineCallsPerS: (stats.engineCalls - last.engineCalls) / secs,
          grantsPerS: reports.reduce((s, x) => s + x.r.grants, 0) / secs,
        };
        last = stats;
        lastAt = at;
        samples.push(sample);
        o.log(
          `soak: t=${Math.round(sample.t)}s workers=${sample.workers} keys=${sample.keys} noExpiry=${sample.keysNoExpiry} redisMem=${(sample.usedMemory / 2 ** 20).toFixed(1)}MiB ` +
            `heap=${(sample.residentHeap / 2 ** 20).toFixed(1)}MiB handles=${sample.residentHandles} handoff p50/p99=${sample.handoffP50.toFixed(1)}/${sample.handoffP99.toFixed(1)}ms ` +
            `beats/s=${sample.heartbeatsPerS.toFixed(1)} fcall/s=${Math.round(sample.engineCallsPerS)} grants/s=${Math.round(sample.grantsPerS)}`,
        );
      }
    }

    // The end: resume, stop every worker (each closes its FairLocks), then let the killed ones' leases run out.
    for (const w of live()) if (w.paused) (w.signal('SIGCONT'), (w.paused = false));
    for (const w of live()) w.send({ op: 'stop' });
    await Promise.all(live().map((w) => w.exited(15_000)));
    const unclean = workers.filter((w) => !w.done).length;
    o.log(`soak: ${workers.length} workers ran (${unclean} killed or not closed); waiting for leases to run out`);
    await sleep(Math.max(o.leaseMs, o.livenessMs) + 1_000);
    // Names still holding queue entries or holders of dead sessions: one acquire each, so the engine meets them.
    const before = await scanPrefix(admin, prefix);
    const stale = new Set<number>();
    for (const k of leftoverKeys(prefix, before)) {
      const m = /:\{(n|hand)(\d+)\}:/.exec(k);
      if (m?.[1] === 'n') stale.add(Number(m[2]));
      else if (m?.[1] === 'hand') await driverLocks.lock(handoffName(Number(m[2]))).acquire({ timeoutMs: 5_000 }).then((l) => l.release()).catch(() => undefined);
    }
    swept = stale.size;
    for (const i of stale) await touch(driverLocks, i, 5_000).catch((err) => o.log(`soak: sweep of ${nameOf(i)} failed: ${(err as Error).message}`));
    await driverLocks.close();
    const after = await scanPrefix(admin, prefix);
    const warmupS = o.warmupMs / 1000;
    const drift = (Object.keys(SERIES) as SeriesName[]).map((s) =>
      checkDrift(s, SERIES[s]!.unit, samples.map((x): Point => ({ t: x.t, v: x[s as keyof Sample] })), warmupS, SERIES[s]!.bound),
    );
    const noExpiry = [...new Set([...keysWithoutExpiry(prefix, after), ...(samples.some((s) => s.keysNoExpiry > 0) ? ['(a sample saw keys without expiry)'] : [])])];
    const leftover = leftoverKeys(prefix, after);
    const { log: _log, ...options } = o;
    return {
      options,
      redis: String(/^redis_version:(\S+)/m.exec(String(await admin.sendCommand(['INFO', 'server'])))?.[1] ?? '?'),
      samples,
      drift,
      noExpiry,
      leftover,
      swept,
      faults,
      errors,
      pass: drift.every((d) => d.pass || o.advisory.includes(d.series as SeriesName)) && noExpiry.length === 0 && leftover.length === 0,
    };
  } finally {
    killAll();
    process.removeListener('exit', killAll);
    if (!process.env.REDIS_URL) await admin.sendCommand(['FLUSHALL']).catch(() => undefined);
    else await deletePrefix(admin, prefix).catch(() => undefined);
    await admin.quit().catch(() => undefined);
    await server.stop();
  }
}

/** On a REDIS_URL server: remove what the run left (state hashes kept by design), by its own prefix only. */
async function deletePrefix(admin: RedisClient, prefix: string): Promise<void> {
  const keys = await scanPrefix(admin, prefix);
  for (let i = 0; i < keys.length; i += 500) await admin.sendCommand(['DEL', ...keys.slice(i, i + 500).map((k) => k.key)]);
}
