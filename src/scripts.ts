import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { FairLockError } from './errors.js';
import type { LockKeys } from './keys.js';
import { adaptClient } from './redis/adapt.js';
import type { RedisClientLike, RedisSeam } from './redis/seam.js';


const NAMES = ['acquire', 'release', 'cancel', 'heartbeat', 'extend', 'inspect'] as const;
type ScriptName = (typeof NAMES)[number];

interface Script {
  body: string;
  sha: string;
}

/** Loaded once per process: each script is common.lua followed by its own file. */
const SCRIPTS: Record<ScriptName, Script> = (() => {
  const read = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
  const common = read('common');
  const out = {} as Record<ScriptName, Script>;
  for (const name of NAMES) {
    const body = `${common}\n${read(name)}`;
    out[name] = { body, sha: createHash('sha1').update(body).digest('hex') };
  }
  return out;
})();

/** Local monotonic time in ms. Deadlines kept in this process use it, never the wall clock. */
export const monotonic = (): number => performance.now();

/** Every reply carries Redis's clock (`now`) and the local time the call was sent (`sentAt`). */
export interface Stamped {
  now: number;
  sentAt: number;
}

export type AcquireReply =
  | ({ kind: 'granted'; token: number; exp: number } & Stamped)
  | ({ kind: 'queued'; ticket: number; position: number; lapsed: boolean } & Stamped)
  | ({ kind: 'busy'; ownerLeftMs: number } & Stamped);

export type ReleaseReply = { kind: 'released' | 'already' | 'not-holder' } & Stamped;
export type CancelReply = { kind: 'cancelled' | 'released' | 'already' | 'not-found' } & Stamped;
export type HeartbeatReply = {
  lapsed: boolean;
  owner: { id: string; token: number; exp: number } | null;
  /** The queue key, when it holds another type: the session's waits on this lock must fail. */
  badQueue?: string;
} & Stamped;
export type ExtendReply = ({ kind: 'extended'; exp: number } | { kind: 'not-holder' }) & Stamped;
export interface InspectReply extends Stamped {
  owner: { id: string; token: number; exp: number } | null;
  queue: { id: string; ticket: number }[];
}

/**
 * The only caller of EVALSHA. Turns raw replies into typed results and Redis errors into
 * FairLockErrors. It also keeps the bound on the clock offset that converts Redis deadlines into
 * local ones: a reply stamped `now` by Redis to a call sent at local `sentAt` proves that
 * redis - local <= now - sentAt, so a Redis deadline D is reached no earlier than D - (now - sentAt).
 */
export class Scripts {
  private offsetUpper: number | undefined;
  private readonly redis: RedisSeam;

  /** `client`: a seam, or any client FairLocks accepts. */
  constructor(client: RedisSeam | RedisClientLike, private readonly prefix: string) {
    this.redis = isSeam(client) ? client : adaptClient(client);
  }

  /** The earliest local monotonic time at which Redis's clock can reach `redisMs`. */
  toLocal(redisMs: number, sample?: Stamped): number {
    const offset = sample ? sample.now - sample.sentAt : this.offsetUpper;
    if (offset === undefined) throw new FairLockError('no clock sample yet', 'INTERNAL');
    return redisMs - offset;
  }

  async acquire(keys: LockKeys, id: string, livenessMs: number, mode: 'wait' | 'try'): Promise<AcquireReply> {
    const { r, sentAt } = await this.run('acquire', keys, [id, livenessMs, mode, this.prefix]);
    const code = num(r[0]);
    if (code === 1) return { kind: 'granted', now: num(r[1]), token: num(r[2]), exp: num(r[3]), sentAt };
    if (code === 2) return { kind: 'queued', now: num(r[1]), ticket: num(r[2]), position: num(r[3]), lapsed: num(r[4]) === 1, sentAt };
    return { kind: 'busy', now: num(r[1]), ownerLeftMs: num(r[2]), sentAt };
  }

  async release(keys: LockKeys, id: string): Promise<ReleaseReply> {
    const { r, sentAt } = await this.run('release', keys, [id, this.prefix]);
    const kinds = ['not-holder', 'released', 'already'] as const;
    return { kind: kinds[num(r[0])] ?? 'not-holder', now: num(r[1]), sentAt };
  }

  async cancel(keys: LockKeys, id: string): Promise<CancelReply> {
    const { r, sentAt } = await this.run('cancel', keys, [id, this.prefix]);
    const kinds = ['not-found', 'cancelled', 'already', 'released'] as const;
    return { kind: kinds[num(r[0])] ?? 'not-found', now: num(r[1]), sentAt };
  }

  /** `held`: ids of the leases the session holds on this lock; only those are renewed. */
  async heartbeat(keys: LockKeys, sessionId: string, livenessMs: number, held: readonly string[] = []): Promise<HeartbeatReply> {
    const { r, sentAt } = await this.run('heartbeat', keys, [sessionId, livenessMs, this.prefix, ...held]);
    const id = String(r[2]);
    const owner = id ? { id, token: num(r[3]), exp: num(r[4]) } : null;
    return { lapsed: num(r[0]) === 1, now: num(r[1]), owner, sentAt, ...(r[5] ? { badQueue: String(r[5]) } : {}) };
  }

  async extend(keys: LockKeys, id: string, ms: number): Promise<ExtendReply> {
    const { r, sentAt } = await this.run('extend', keys, [id, ms]);
    if (num(r[0]) === 1) return { kind: 'extended', now: num(r[1]), exp: num(r[2]), sentAt };
    return { kind: 'not-holder', now: num(r[1]), sentAt };
  }

  async inspect(keys: LockKeys, limit: number): Promise<InspectReply> {
    const { r, sentAt } = await this.run('inspect', keys, [limit]);
    const id = String(r[2]);
    const flat = r[5] as unknown[];
    const queue: { id: string; ticket: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) queue.push({ id: String(flat[i]), ticket: num(flat[i + 1]) });
    return { now: num(r[1]), owner: id ? { id, token: num(r[3]), exp: num(r[4]) } : null, queue, sentAt };
  }

  private async run(name: ScriptName, keys: LockKeys, args: (string | number)[]): Promise<{ r: unknown[]; sentAt: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(name, keys, args);
      } catch (err) {
        // Every script is safe to run twice (see their headers): a call whose connection dropped
        // before its reply came is sent once more (on the reconnected client) instead of failing a
        // wait or leaving a release undone. Errors Redis answered are not retried.
        if (attempt >= 2 || !this.redis.droppedConnection(err)) throw toFairLockError(err, name);
      }
    }
  }

  private async runOnce(name: ScriptName, keys: LockKeys, args: (string | number)[]): Promise<{ r: unknown[]; sentAt: number }> {
    const script = SCRIPTS[name];
    const tail = ['4', keys.owner, keys.queue, keys.sessions, keys.counter, ...args.map(String)];
    const sentAt = monotonic();
    let reply: unknown;
    try {
      reply = await this.redis.send(['EVALSHA', script.sha, ...tail]);
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
      reply = await this.redis.send(['EVAL', script.body, ...tail]);
    }
    const r = reply as unknown[];
    this.offsetUpper = num(r[1]) - sentAt; // every reply is {code, now, ...}
    return { r, sentAt };
  }
}

function isSeam(x: RedisSeam | RedisClientLike): x is RedisSeam {
  return typeof (x as RedisSeam).send === 'function' && typeof (x as RedisSeam).droppedConnection === 'function';
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

/** The error a wait fails with when the lock's key `key` is of the wrong type. */
export function badKeyError(key: string, detail: string, cause?: unknown): FairLockError {
  return new FairLockError(`Redis key ${key} is not what fairlock expects (${detail})`, 'BAD_KEY', cause === undefined ? undefined : { cause });
}

function toFairLockError(err: unknown, script: string): FairLockError {
  if (err instanceof FairLockError) return err;
  const message = String((err as Error)?.message ?? err);
  const bad = /FAIRLOCK_BADKEY (\S+) ([^\n]*?)(?: script:|$)/.exec(message);
  if (bad) {
    return badKeyError(bad[1]!, (bad[2] ?? '').trim(), err);
  }
  // Redis 7.2+ answers NOPERM; 7.0 says so in words.
  if (/\bNOPERM\b|user executing the script can't run|no permissions to/.test(message)) {
    return new FairLockError(`Redis refused a command of the ${script} script to this user (ACL; README lists the rule fairlock needs): ${message}`, 'NO_PERMISSION', { cause: err });
  }
  return new FairLockError(`Redis call ${script} failed: ${message}`, 'REDIS_ERROR', { cause: err });
}
