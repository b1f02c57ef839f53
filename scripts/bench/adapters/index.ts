import { fairlock } from './fairlock.js';
import { redisSemaphore } from './redis-semaphore.js';
import { redlockUniversal } from './redlock-universal.js';
import { redlock } from './redlock.js';
import { setNxPoll } from './set-nx-poll.js';
import { simpleRedisMutex } from './simple-redis-mutex.js';
import type { Adapter } from './types.js';

/** Every library the bench compares, fairlock first. */
export const ADAPTERS: readonly Adapter[] = [
  fairlock,
  redlock,
  redisSemaphore,
  redlockUniversal,
  simpleRedisMutex,
  setNxPoll(50),
  setNxPoll(3_000),
];

export function adapterById(id: string): Adapter {
  const a = ADAPTERS.find((x) => x.id === id);
  if (!a) throw new Error(`unknown lock library "${id}"; known: ${ADAPTERS.map((x) => x.id).join(', ')}`);
  return a;
}
