import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClockBound, monotonic, type Stamped } from '../client/clock.js';
import { debug } from '../debug.js';
import { FairLockError, InvalidArgumentError } from '../errors.js';
import { adaptClient } from '../redis/adapt.js';
import type { RedisClientLike, RedisSeam } from '../redis/seam.js';
import { WaitNotSent } from '../redis/wait-pool.js';
import { LUA_ERRORS, REPLY, luaReplyConstants } from './codes.js';
import type { Kind, LockKeys } from './keys.js';

const NAMES = ['acquire', 'release', 'cancel', 'heartbeat', 'extend', 'inspect', 'types'] as const;
type ScriptName = (typeof NAMES)[number];

interface Script {
  body: string;
  sha: string;
}

/** Loaded once per process: each script is the reply codes, common.lua, then its own file. */
const SCRIPTS: Record<ScriptName, Script> = (() => {
  const read = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
  const prelude = `${luaReplyConstants()}\n${read('common')}`;
  const out = {} as Record<ScriptName, Script>;
  for (const name of NAMES) {
    const body = name === 'types' ? read(name) : `${prelude}\n${read(name)}`;
    out[name] = { body, sha: createHash('sha1').update(body).digest('hex') };
  }
  return out;
})();

/** A grant as Redis reports it: the holder's id, its fencing token and the deadline it may use. */
export interface HolderReport {
  id: string;
  token: number;
  exp: number;
}

export type AcquireReply =
  | ({ kind: 'granted'; token: number; exp: number } & Stamped)
  | ({ kind: 'queued'; ticket: number; position: number; lapsed: boolean } & Stamped)
  | ({ kind: 'busy'; heldLeftMs: number } & Stamped)
  | ({ kind: 'refused'; current: string } & Stamped);

export type ReleaseReply = { kind: 'released' | 'already' | 'not-holder' } & Stamped;
export type CancelReply = { kind: 'cancelled' | 'released' | 'already' | 'not-found' } & Stamped;
export type HeartbeatReply = {
  lapsed: boolean;
  /** Replicas that acked this beat and every write before it (durability only). */
  acked?: number;
  /** Connections on the session's shard channel of the name, when asked ("~"); -1 when Redis would not say. */
  subscribers?: number;
  /** This session's holders of the name. */
  holders: HolderReport[];
  /** The queue key, when it holds another type: the session's waits on this name must fail. */
  badQueue?: string;
} & Stamped;
export type ExtendReply = ({ kind: 'extended'; exp: number } | { kind: 'not-holder' }) & Stamped;
/** How many ids that gave a grant up the state keeps (its `r`): RELEASES_KEPT in common.lua. */
export const RELEASES_KEPT = 8;

export interface InspectReply extends Stamped {
  /** "kind limit" of the name, or "" when Redis has none (idle for a day, or never used). */
  kindLimit: string;
  /** `grantedAt`: Redis's clock (ms) at the grant, its confirmation or its last extend. */
  holders: (HolderReport & { grantedAt: number })[];
  queue: { id: string; ticket: number }[];
  /** The ids that last gave a grant up (the state's `r`), newest first. */
  released: string[];
}

/**
 * The only caller of EVALSHA. Turns raw replies into typed results and Redis errors into
 * FairLockErrors, and keeps the clock bound (every reply is {code, now, ...}).
 */
export class Scripts {
  readonly clock = new ClockBound();
  private readonly redis: RedisSeam;

  /** `client`: a seam, or any client FairLocks accepts. */
  /** Scripts that ran here once (EVALSHA found them, or EVAL loaded them). */
  private readonly loaded = new Set<ScriptName>();
  /** The scripts' `wake` argument (see common.lua): the prefix, or '' for shard channels on a cluster. */
  private readonly wake: string;

  constructor(client: RedisSeam | RedisClientLike, prefix: string) {
    this.redis = isSeam(client) ? client : adaptClient(client);
    this.wake = this.redis.cluster ? '' : prefix;
  }

  async acquire(keys: LockKeys, id: string, livenessMs: number, mode: 'wait' | 'try', kind: Kind, limit: number): Promise<AcquireReply> {
    const { r, sentAt } = await this.run('acquire', keys, [id, livenessMs, mode, this.wake, `${kind} ${limit}`]);
    const code = num(r[0]);
    const now = num(r[1]);
    const C = REPLY.acquire;
    if (code === C.granted) return { kind: 'granted', now, token: num(r[2]), exp: num(r[3]), sentAt };
    if (code === C.queued) return { kind: 'queued', now, ticket: num(r[2]), position: num(r[3]), lapsed: num(r[4]) === 1, sentAt };
    if (code === C.refused) return { kind: 'refused', now, current: String(r[2]), sentAt };
    return { kind: 'busy', now, heldLeftMs: num(r[2]), sentAt };
  }

  async release(keys: LockKeys, id: string): Promise<ReleaseReply> {
    const { r, sentAt } = await this.run('release', keys, [id, this.wake]);
    const C = REPLY.release;
    const code = num(r[0]);
    const kind = code === C.released ? 'released' : code === C.already ? 'already' : 'not-holder';
    return { kind, now: num(r[1]), sentAt };
  }

  async cancel(keys: LockKeys, id: string): Promise<CancelReply> {
    const { r, sentAt } = await this.run('cancel', keys, [id, this.wake]);
    const C = REPLY.cancel;
    const code = num(r[0]);
    const kind = code === C.left ? 'cancelled' : code === C.released ? 'released' : code === C.already ? 'already' : 'not-found';
    return { kind, now: num(r[1]), sentAt };
  }

  /**
   * `ids`: the leases the session holds on this name (only those are renewed), "-id" for given-up
   * ones, "?id" for its newest waiter (reported as a lapse when Redis lost it), and "~" on a
   * cluster to learn whether the session's shard channel of the name has a subscriber on its node.
   */
  async heartbeat(keys: LockKeys, sessionId: string, livenessMs: number, ids: readonly string[] = [], durability?: Durability): Promise<HeartbeatReply> {
    const { r, sentAt, acked } = await this.run('heartbeat', keys, [sessionId, livenessMs, this.wake, ...ids], durability);
    return {
      lapsed: num(r[0]) === 1,
      now: num(r[1]),
      holders: holders(r[2]),
      sentAt,
      ...(r[3] ? { badQueue: String(r[3]) } : {}),
      ...(acked === undefined ? {} : { acked }),
      ...(ids.includes('~') ? { subscribers: num(r[4]) } : {}),
    };
  }

  async extend(keys: LockKeys, id: string, ms: number): Promise<ExtendReply> {
    const { r, sentAt } = await this.run('extend', keys, [id, ms, this.wake]);
    if (num(r[0]) === REPLY.extend.extended) return { kind: 'extended', now: num(r[1]), exp: num(r[2]), sentAt };
    return { kind: 'not-holder', now: num(r[1]), sentAt };
  }

  async inspect(keys: LockKeys, limit: number): Promise<InspectReply> {
    const { r, sentAt } = await this.run('inspect', keys, [limit]);
    const flat = r[4] as unknown[];
    const queue: { id: string; ticket: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) queue.push({ id: String(flat[i]), ticket: num(flat[i + 1]) });
    const granted = (Array.isArray(r[5]) ? r[5] : []) as unknown[];
    const released = String(r[6] ?? '');
    return {
      now: num(r[1]),
      kindLimit: String(r[2]),
      holders: holders(r[3]).map((h, i) => ({ ...h, grantedAt: num(granted[i]) })),
      queue,
      released: released === '' ? [] : released.split(' '),
      sentAt,
    };
  }

  private async run(name: ScriptName, keys: LockKeys, args: (string | number)[], durability?: Durability): Promise<Ran> {
    let clusterRetries = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(name, keys, args, durability);
      } catch (err) {
        if (err instanceof WaitNotSent) throw err; // not a Redis error: the caller reports a shortfall
        // Every script is safe to run twice (see their headers): a call whose connection dropped
        // before its reply came is sent once more (on the reconnected client) instead of failing a
        // wait or leaving a release undone. Errors Redis answered are not retried, but for a
        // cluster's passing states: TRYAGAIN (the name's slot is migrating and its keys are split
        // between two masters for a moment) and CLUSTERDOWN (a failover is under way).
        if (attempt < 2 && this.redis.droppedConnection(err)) continue;
        if (clusterRetries < CLUSTER_RETRY_DELAYS_MS.length && /\b(TRYAGAIN|CLUSTERDOWN)\b/.test(String((err as Error)?.message))) {
          const delay = CLUSTER_RETRY_DELAYS_MS[clusterRetries++]!;
          debug('%s: %s; again in %d ms', name, String((err as Error)?.message).slice(0, 80), delay);
          await sleep(delay);
          continue;
        }
        throw await this.toFairLockError(err, name, keys);
      }
    }
  }

  private async runOnce(name: ScriptName, keys: LockKeys, args: (string | number)[], durability?: Durability): Promise<Ran> {
    const script = SCRIPTS[name];
    const tail = ['3', keys.state, keys.queue, keys.sessions, ...args.map(String)];
    const sentAt = monotonic();
    const send = async (command: string[]): Promise<{ reply: unknown; acked?: number }> => {
      if (!durability) return { reply: await this.redis.send(command, keys.state) };
      return this.redis.sendAndWait(command, keys.state, durability.replicas, durability.timeoutMs, durability.signal);
    };
    let out: { reply: unknown; acked?: number };
    // WAIT goes out right behind the script: behind an EVALSHA refused with NOSCRIPT it would wait
    // for nothing (up to timeoutMs when replicas lag), so a script not yet seen loaded goes as EVAL.
    if (durability && !this.loaded.has(name)) {
      out = await send(['EVAL', script.body, ...tail]);
    } else {
      try {
        out = await send(['EVALSHA', script.sha, ...tail]);
      } catch (err) {
        if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
        out = await send(['EVAL', script.body, ...tail]);
      }
    }
    this.loaded.add(name);
    const r = out.reply as unknown[];
    if (name !== 'types') this.clock.observe({ now: num(r[1]), sentAt });
    return { r, sentAt, ...(out.acked === undefined ? {} : { acked: out.acked }) };
  }

  /** Redis's error as a FairLockError; a WRONGTYPE is diagnosed by types.lua so that BAD_KEY names the key. */
  private async toFairLockError(err: unknown, script: ScriptName, keys: LockKeys): Promise<FairLockError> {
    if (err instanceof FairLockError) return err;
    const message = String((err as Error)?.message ?? err);
    const bad = new RegExp(`${LUA_ERRORS.badKey} (\\S+) ([^\\n]*?)(?: script:|$)`).exec(message);
    if (bad) return badKeyError(bad[1]!, (bad[2] ?? '').trim(), err);
    const badArg = new RegExp(`${LUA_ERRORS.badArg} ([^\\n]*?)(?: script:|$)`).exec(message);
    if (badArg) return new InvalidArgumentError(`the ${script} script refused its arguments: ${(badArg[1] ?? '').trim()}`, { cause: err });
    // Redis 7.0 passes a command's error on as it is; 6.2 wraps it: "ERR Error running script ... : WRONGTYPE ...".
    if (/(?:^|: )WRONGTYPE\b/.test(message) && script !== 'types') {
      try {
        const { r } = await this.runOnce('types', keys, []);
        if (r.length >= 2) return badKeyError(String(r[0]), `WRONGTYPE: it is a ${String(r[1])}`, err);
      } catch {
        // the diagnosis failed too: report the first error as it was
      }
    }
    if (/^(MOVED|ASK) /.test(message)) {
      return new FairLockError(
        `Redis call ${script} failed: ${message} (this Redis is a cluster node that does not own the name's slot: pass a cluster client, createCluster() or new Cluster())`,
        'REDIS_ERROR',
        { cause: err },
      );
    }
    // Redis 7.2+ answers NOPERM; 7.0 says so in words.
    if (/\bNOPERM\b|user executing the script can't run|no permissions to/.test(message)) {
      return new FairLockError(`Redis refused a command of the ${script} script to this user (ACL; README lists the rule fairlock needs): ${message}`, 'NO_PERMISSION', { cause: err });
    }
    return new FairLockError(`Redis call ${script} failed: ${message}`, 'REDIS_ERROR', { cause: err });
  }
}

/** The waits between retries of a script refused with TRYAGAIN or CLUSTERDOWN: about 6 s in all, a failover's usual length. */
const CLUSTER_RETRY_DELAYS_MS = [25, 50, 100, 200, 400, 800, 1_000, 1_500, 2_000];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

interface Ran {
  r: unknown[];
  sentAt: number;
  acked?: number;
}

/** `WAIT replicas timeoutMs` after a script, so that its writes (and every earlier one) reached replicas. */
export interface Durability {
  replicas: number;
  timeoutMs: number;
  /** The caller gave up: its WAIT is dropped (see WaitPool). */
  signal?: AbortSignal;
}

function isSeam(x: RedisSeam | RedisClientLike): x is RedisSeam {
  return typeof (x as RedisSeam).send === 'function' && typeof (x as RedisSeam).droppedConnection === 'function';
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function holders(v: unknown): HolderReport[] {
  const flat = (Array.isArray(v) ? v : []) as unknown[];
  const out: HolderReport[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) out.push({ id: String(flat[i]), token: num(flat[i + 1]), exp: num(flat[i + 2]) });
  return out;
}

/** The error a wait fails with when the key `key` is not what fairlock expects. */
export function badKeyError(key: string, detail: string, cause?: unknown): FairLockError {
  return new FairLockError(`Redis key ${key} is not what fairlock expects (${detail})`, 'BAD_KEY', cause === undefined ? undefined : { cause });
}
