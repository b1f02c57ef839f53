/**
 * One chaos process (forked by chaos-lib.ts): `contenders` loops, each taking a random lock of
 * `locks`, writing to the fenced store at the start and end of its critical section, and reporting
 * every step over IPC with `at` (wall-clock ms, sub-ms precision; one clock for the whole machine).
 */
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { FairLocks } from '../src/index.js';
import type { RedisClient } from '../src/scripts.js';
import { fencedWrite } from '../test/helpers/fenced.js';

export interface WorkerInit {
  op: 'init';
  url: string;
  prefix: string;
  options: { leaseMs: number; livenessMs: number; heartbeatMs: number };
  locks: string[];
  contenders: number;
  holdMaxMs: number;
  acquireTimeoutMs: number;
}

/** What a chaos process reports. `op` names one acquire call: "pid-contender-seq". */
export type WorkerEvent = { at: number; pid: number } & (
  | { ev: 'ready' }
  | { ev: 'call'; op: string; lock: string }
  | { ev: 'queued'; op: string; lock: string }
  | { ev: 'granted'; op: string; lock: string; token: number }
  | { ev: 'acquireError'; op: string; lock: string; code: string; message: string }
  | { ev: 'section'; op: string; lock: string; token: number; start: number; end: number; aborted: boolean; wroteBegin: boolean; wroteEnd: boolean }
  | { ev: 'releaseError'; op: string; lock: string; code: string }
  | { ev: 'done' }
);

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const send = (e: Record<string, unknown>) => process.send?.({ at: now(), pid: process.pid, ...e });

let running = true;

async function main(init: WorkerInit): Promise<void> {
  const socket = { reconnectStrategy: (n: number) => Math.min(50 * n, 500) };
  // The lock connections carry a name the chaos driver finds in CLIENT LIST (the subscriber is a duplicate).
  const client = createClient({ url: init.url, name: `chaos-${process.pid}`, socket }) as RedisClient;
  const store = createClient({ url: init.url, name: `store-${process.pid}`, socket }) as RedisClient;
  client.on('error', () => undefined);
  store.on('error', () => undefined);
  await client.connect();
  await store.connect();
  const locks = new FairLocks(client, { prefix: init.prefix, ...init.options });
  send({ ev: 'ready' });

  const write = (key: string, token: number, value: string) => fencedWrite(store, key, token, value).catch(() => false);
  const loop = async (c: number) => {
    for (let seq = 0; running; seq++) {
      const lock = init.locks[Math.floor(Math.random() * init.locks.length)]!;
      const op = `${process.pid}-${c}-${seq}`;
      send({ ev: 'call', op, lock });
      let lease;
      try {
        lease = await locks.lock(lock).acquire({
          timeoutMs: init.acquireTimeoutMs,
          onQueued: () => send({ ev: 'queued', op, lock }),
        });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        send({ ev: 'acquireError', op, lock, code: e.code ?? '', message: e.message ?? String(err) });
        await sleep(20);
        continue;
      }
      const start = now();
      send({ ev: 'granted', op, lock, token: lease.token });
      const key = `${init.prefix}:store:${lock}`;
      const wroteBegin = await write(key, lease.token, `${op} b`);
      await sleep(Math.random() * init.holdMaxMs);
      const wroteEnd = await write(key, lease.token, `${op} e`);
      const end = now();
      const aborted = lease.signal.aborted; // read last: false means the lease held over [start, end]
      send({ ev: 'section', op, lock, token: lease.token, start, end, aborted, wroteBegin, wroteEnd });
      try {
        await lease.release();
      } catch (err) {
        send({ ev: 'releaseError', op, lock, code: (err as { code?: string }).code ?? '' });
      }
      await sleep(Math.random() * 10);
    }
  };
  await Promise.all(Array.from({ length: init.contenders }, (_, c) => loop(c)));
  await locks.close().catch(() => undefined);
  send({ ev: 'done' });
  await Promise.all([client.quit(), store.quit()]).catch(() => undefined);
}

process.on('message', (m: WorkerInit | { op: 'stop' }) => {
  if (m.op === 'init') {
    main(m).catch((err) => {
      console.error('chaos worker failed:', err);
      process.exit(1);
    });
  } else if (m.op === 'stop') running = false;
});
process.on('disconnect', () => process.exit(0));
