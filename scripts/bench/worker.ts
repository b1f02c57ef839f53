/**
 * A bench child process: one lock client of one library, shared by its contenders, driven by the
 * parent over IPC. Every time it reports is wall-clock ms (see clock.ts), so grants from all
 * children can be ordered on one time line.
 */
import { adapterById } from './adapters/index.js';
import type { LockClient } from './adapters/types.js';
import { now, sleep, within } from './clock.js';
import type { Grant } from './stats.js';

export type WorkerCommand =
  | {
      op: 'contend';
      id: number;
      lib: string;
      url: string;
      prefix: string;
      name: string;
      contenders: number;
      holdMs: number;
      thinkMs: number;
      startAt: number;
      durationMs: number;
      drainMs: number;
      maxGrants: number;
    }
  | { op: 'prepare'; id: number; lib: string; url: string; prefix: string; name: string }
  | { op: 'wait'; id: number; name: string; count: number }
  | { op: 'unwait'; id: number };

export type WorkerReply =
  | { id: number; ok: true; grants?: Grant[]; pending?: { start: number }[]; granted?: number }
  | { id: number; ok: false; error: string };

// Abandoned waits of destroyed clients reject later (some libraries do not catch their own).
process.on('unhandledRejection', () => undefined);
process.on('uncaughtException', (err) => {
  if (!/destroyed|closed|Connection is closed|ClientClosed|Socket closed/i.test(String(err?.message))) {
    process.send?.({ id: -1, ok: false, error: `uncaught: ${err?.stack ?? err}` });
  }
});
process.on('disconnect', () => process.exit(0));


async function contend(c: Extract<WorkerCommand, { op: 'contend' }>): Promise<WorkerReply> {
  const client = await adapterById(c.lib).create(c.url, c.prefix);
  const grants: Grant[] = [];
  const waitingSince: (number | undefined)[] = [];
  const end = c.startAt + c.durationMs;
  await sleep(c.startAt - now());
  let total = 0;
  const loop = async (i: number) => {
    const who = `${process.pid}:${i}`;
    while (now() < end && total < c.maxGrants) {
      const start = now();
      waitingSince[i] = start;
      const held = await client.acquire(c.name);
      const got = now();
      waitingSince[i] = undefined;
      if (c.holdMs > 0) await sleep(c.holdMs);
      const rel = now();
      await held.release();
      grants.push(held.queuedAt === undefined ? { contender: who, start, got, rel } : { contender: who, start, got, rel, queuedAt: held.queuedAt });
      total++;
      if (c.thinkMs > 0) await sleep(c.thinkMs);
    }
  };
  const loops = Promise.all(Array.from({ length: c.contenders }, (_, i) => loop(i).catch(() => undefined)));
  await sleep(end - now());
  const drained = await within(loops.then(() => true), c.drainMs);
  const pending = waitingSince.filter((s): s is number => s !== undefined).map((start) => ({ start }));
  if (drained) await client.close();
  else await client.destroy();
  return { id: c.id, ok: true, grants, pending };
}

let waiting: { client: LockClient; granted: number } | undefined;

/** Connects (and opens whatever a first acquire opens) before the parent's memory baseline. */
async function prepare(c: Extract<WorkerCommand, { op: 'prepare' }>): Promise<WorkerReply> {
  const client = await adapterById(c.lib).create(c.url, c.prefix);
  waiting = { client, granted: 0 };
  await (await client.acquire(`${c.name}:warm`)).release();
  return { id: c.id, ok: true };
}

async function wait(c: Extract<WorkerCommand, { op: 'wait' }>): Promise<WorkerReply> {
  const state = waiting;
  if (!state) throw new Error('wait before prepare');
  const client = state.client;
  for (let i = 0; i < c.count; i++) {
    client.acquire(c.name).then(
      () => state.granted++, // should not happen while the parent holds the lock
      () => undefined,
    );
  }
  return { id: c.id, ok: true };
}

async function unwait(c: Extract<WorkerCommand, { op: 'unwait' }>): Promise<WorkerReply> {
  const w = waiting;
  waiting = undefined;
  if (w) await w.client.destroy();
  return { id: c.id, ok: true, granted: w?.granted ?? 0 };
}

process.on('message', (c: WorkerCommand) => {
  const run = c.op === 'contend' ? contend(c) : c.op === 'prepare' ? prepare(c) : c.op === 'wait' ? wait(c) : unwait(c);
  run.then(
    (r) => process.send!(r),
    (err: unknown) => process.send!({ id: c.id, ok: false, error: String((err as Error)?.stack ?? err) }),
  );
});
process.send!({ id: 0, ok: true });
