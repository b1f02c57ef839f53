import { CLIENT_FAMILIES } from './clients.js';
import { fairlockOn } from './fairlock.js';
import { redisSemaphore } from './redis-semaphore.js';
import { redlockUniversal } from './redlock-universal.js';
import { redlock } from './redlock.js';
import { setNxPoll } from './set-nx-poll.js';
import { simpleRedisMutex } from './simple-redis-mutex.js';
import type { Adapter } from './types.js';

/** fairlock once per client family: rows `fairlock (node-redis 4)`, `fairlock (ioredis 5)`, ... */
export const FAIRLOCK_ROWS: readonly Adapter[] = CLIENT_FAMILIES.map(fairlockOn);

/** The peers, each on the one client it is used with. */
export const PEERS: readonly Adapter[] = [redlock, redisSemaphore, redlockUniversal, simpleRedisMutex, setNxPoll(50), setNxPoll(3_000)];

/** What `--libs` names: fairlock (its rows chosen by `--clients`) and each peer. */
export const LIBRARIES: readonly string[] = ['fairlock', ...PEERS.map((a) => a.id)];

/** Every row the bench can run, fairlock's first. */
export const ADAPTERS: readonly Adapter[] = [...FAIRLOCK_ROWS, ...PEERS];

export function adapterById(id: string): Adapter {
  const a = ADAPTERS.find((x) => x.id === id);
  if (!a) throw new Error(`unknown bench row "${id}"; known: ${ADAPTERS.map((x) => x.id).join(', ')}`);
  return a;
}

/** The rows for these libraries, fairlock once per client family slug. */
export function rowsFor(libs: readonly string[], clients: readonly string[]): string[] {
  return libs.flatMap((lib) => (lib === 'fairlock' ? clients.map((slug) => FAIRLOCK_ROWS[CLIENT_FAMILIES.findIndex((f) => f.slug === slug)]!.id) : [lib]));
}
