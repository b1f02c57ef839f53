import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClockBound, monotonic, type Stamped } from '../clock.js';
import { debug } from '../debug.js';
import { FairLockError, InvalidArgumentError } from '../errors.js';
import type { RedisSeam } from '../redis/seam.js';
import { WaitNotSent } from '../redis/wait-pool.js';
import { LUA_ERRORS, REPLY, luaReplyConstants } from './codes.js';
import { bornKey, wakeChannel, type Kind, type LockKeys } from './keys.js';

const NAMES = ['acquire', 'release', 'cancel', 'heartbeat', 'extend', 'commit', 'inspect', 'types'] as const;
export type ScriptName = (typeof NAMES)[number];

/**
 * The engine (lua/engine.lua, after the reply codes) in the two forms Redis runs it: a Function
 * library loaded once per server (FCALL: the engine's closures are built once, not on every call),
 * and one script per entry point for EVALSHA (Redis 6.2, clusters, and the calls WAIT follows). The
 * library's name carries a hash of its code, so two fairlock versions on one server do not collide.
 */
const ENGINE = (() => {
  const source = `${luaReplyConstants()}\n${readFileSync(new URL('./lua/engine.lua', import.meta.url), 'utf8')}`;
  const version = createHash('sha1').update(source).digest('hex').slice(0, 12);
  const library = `fairlock_${version}`;
  const scripts = {} as Record<ScriptName, { body: string; sha: string; fn: string }>;
  for (const name of NAMES) {
    const body = `${source}\nreturn ENTRY.${name}(KEYS, ARGV)`;
    scripts[name] = { body, sha: createHash('sha1').update(body).digest('hex'), fn: `${library}_${name}` };
  }
  const register = NAMES.map((n) => `redis.register_function('${library}_${n}', ENTRY.${n})`).join('\n');
  return { library: `#!lua name=${library}\n${source}\n${register}`, scripts };
})();

/**
 * @internal How a call of the engine's entry `name` looks on the wire, for tests and tools that
 * recognise it: `FCALL fn 2 state queue ...args` or `EVALSHA sha 2 state queue ...args`.
 */
export function engineCall(name: ScriptName): { fn: string; sha: string; body: string; library: string } {
  const { fn, sha, body } = ENGINE.scripts[name];
  return { fn, sha, body, library: ENGINE.library };
}

/** @internal Whether `args`, a command sent to Redis, is a call of the engine's entry `name` (FCALL, EVALSHA or EVAL). */
export function isEngineCall(args: readonly unknown[], name: ScriptName): boolean {
  const { fn, sha, body } = ENGINE.scripts[name];
  const [command, target] = args.map((a) => (Buffer.isBuffer(a) ? a.toString() : String(a)));
  const c = command?.toUpperCase();
  return (c === 'FCALL' && target === fn) || (c === 'EVALSHA' && target === sha) || (c === 'EVAL' && target === body);
}

/** A grant as Redis reports it: the holder's id, its fencing token and the deadline it may use. */
export interface HolderReport {
  id: string;
  token: number;
  exp: number;
}

/** `guardUntil`: to a quorum acquire, while the restart guard holds the name (see GUARD_ID), its end (Redis ms): nothing is granted before. */
export type AcquireReply =
  | ({ kind: 'granted'; token: number; exp: number } & Stamped)
  | ({ kind: 'queued'; since: number; position: number; lapsed: boolean; sessionDeadline: number; guardUntil?: number } & Stamped)
  | ({ kind: 'busy'; heldLeftMs: number; guardUntil?: number } & Stamped)
  | ({ kind: 'refused'; current: string } & Stamped);

/**
 * What a quorum client (the chain of DESIGN §8) adds to an acquire on one master; see "Quorum" in
 * lua/engine.lua. `floor`: the grant's token is at least this (the highest token the chain's acquire
 * got so far). `guardMs`: the restart guard (at least the longest lease); 0 opts out (a master that
 * persists every write).
 */
export interface QuorumAcquire {
  floor?: number | undefined;
  guardMs?: number | undefined;
  /** A grant here the previous holder handed over to this waiter (its id): released first, as its own release would be. */
  prev?: string | undefined;
}

/** `handedOver`: to a release that passed a handover, whether the wake-up of the waiter it granted carried it. */
export type ReleaseReply = { kind: 'released' | 'already' | 'not-holder'; handedOver?: boolean } & Stamped;
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
export type CommitReply = ({ kind: 'committed'; exp: number } | { kind: 'not-holder' }) & Stamped;
export { RELEASES_KEPT } from './codes.js';

export interface InspectReply extends Stamped {
  /** "kind limit" of the name, or "" when Redis has none (idle for a day, or never used). */
  kindLimit: string;
  /** Each grant, with the Redis time it was granted (or confirmed) and its group ('' = the default group). */
  holders: (HolderReport & { grantedAt: number; group: string })[];
  /** The live waiters, group by group in rotation order, with the Redis time each entered the queue. */
  queue: { id: string; since: number; group: string }[];
  /** The last ids that gave a grant up, newest first. */
  released: string[];
  /** While groups take turns: the groups with waiters, in rotation order (waiting: its list's length, dead waiters included). */
  groups: { group: string; waiting: number; parked: boolean }[];
}

/** What one heartbeat carries for one session on one name (see heartbeat in lua/engine.lua). */
export interface Beat {
  /** The leases the session holds on the name: only these are renewed. */
  held: readonly string[];
  /** Leases or waits given up whose release or cancel did not get through: released, or out of the queue (`floor`: a quorum waiter's). */
  dropped?: readonly { id: string; since?: number | undefined; group?: string | undefined; floor?: number | undefined; grant?: true }[];
  /** The session's newest waiter in the queue: a lapse is reported when Redis has lost it (`floor`: a quorum waiter's). */
  newest?: { id: string; since: number; group?: string | undefined; floor?: number | undefined };
  /** On a cluster: ask how many connections the name's node has on the session's shard channel. */
  askSubscribers?: boolean;
}

/**
 * The only caller of EVALSHA. Turns raw replies into typed results and Redis errors into
 * FairLockErrors, and keeps the clock bound (every reply is {code, now, ...}).
 */
export class Scripts {
  readonly clock = new ClockBound();
  /** Scripts that ran here once (EVALSHA found them, or EVAL loaded them). */
  private readonly loaded = new Set<ScriptName>();
  /**
   * How the engine runs: 'function' once FCALL worked, 'script' (EVALSHA) on a cluster or once FCALL
   * or FUNCTION LOAD was refused (Redis 6.2, an ACL without them); 'unknown' until the first call.
   */
  private mode: 'unknown' | 'function' | 'script';
  private readonly prefix: string;

  /** `engine: 'script'` runs EVALSHA even where Functions exist (the bench and tests compare the two). */
  constructor(private readonly redis: RedisSeam, prefix: string, options: { engine?: 'script' } = {}) {
    this.prefix = prefix;
    // A cluster would need the library on every master (FUNCTION LOAD goes to one node), and a
    // client library that routes FCALL by its keys: EVALSHA there.
    this.mode = this.redis.cluster || options.engine === 'script' ? 'script' : 'unknown';
  }

  /** How the engine runs on this server (after the first call): Functions, or scripts. */
  get engine(): 'function' | 'script' | 'unknown' {
    return this.mode;
  }

  /** The wake-up argument of the engine: where a grant on `keys` is published (see lua/engine.lua). */
  private wake(keys: LockKeys): string {
    return this.redis.cluster ? `S${keys.shardWake}` : `P${wakeChannel(this.prefix, '')}`;
  }

  /**
   * `again`: a re-run for a waiter that may be queued already (re-entering after a lapse, or a call
   * whose reply was lost): the engine looks for its element (`since`, when known) before it pushes one.
   * `quorum`: only from a quorum client (see {@link QuorumAcquire}); without it the call is the single-node one.
   */
  async acquire(
    keys: LockKeys,
    id: string,
    livenessMs: number,
    mode: 'wait' | 'try',
    kind: Kind,
    limit: number,
    again?: { since?: number },
    groups: Pick<NameSpec, 'perGroup' | 'group'> = {},
    quorum?: QuorumAcquire,
  ): Promise<AcquireReply> {
    const k = kindLimit({ kind, limit, perGroup: groups.perGroup });
    const tail = quorum ? [quorum.floor ?? '', quorum.guardMs ?? '', ...(quorum.prev ? [quorum.prev] : [])] : [];
    const args = (rerun: boolean) => [id, livenessMs, mode === 'wait' && (again || rerun) ? 'again' : mode, this.wake(keys), k, again?.since ?? '', groupHex(groups.group), ...tail];
    const born = quorum?.guardMs ? bornKey(this.prefix) : undefined;
    const { r, sentAt } = await this.run('acquire', keys, args, undefined, born);
    const code = num(r[0]);
    const now = num(r[1]);
    const C = REPLY.acquire;
    if (code === C.granted) return { kind: 'granted', now, token: num(r[2]), exp: num(r[3]), sentAt };
    if (code === C.queued) {
      const queued = { kind: 'queued', now, since: num(r[2]), position: num(r[3]), lapsed: num(r[4]) === 1, sessionDeadline: num(r[5]), sentAt } as const;
      return r[6] === undefined ? queued : { ...queued, guardUntil: num(r[6]) };
    }
    if (code === C.refused) return { kind: 'refused', now, current: String(r[2]), sentAt };
    return r[3] === undefined ? { kind: 'busy', now, heldLeftMs: num(r[2]), sentAt } : { kind: 'busy', now, heldLeftMs: num(r[2]), guardUntil: num(r[3]), sentAt };
  }

  /**
   * `handover`: only from a quorum holder (see "Quorum" in lua/engine.lua): its grants on the other
   * masters, "index=id" pairs joined by ',', for the wake-up of the waiter this release grants.
   */
  async release(keys: LockKeys, id: string, handover?: string): Promise<ReleaseReply> {
    const { r, sentAt } = await this.run('release', keys, () => [id, this.wake(keys), ...(handover ? [handover] : [])]);
    const C = REPLY.release;
    const code = num(r[0]);
    const kind = code === C.released ? 'released' : code === C.already ? 'already' : 'not-holder';
    return r[2] === undefined ? { kind, now: num(r[1]), sentAt } : { kind, now: num(r[1]), handedOver: num(r[2]) === 1, sentAt };
  }

  /**
   * `since`: when the waiter entered the queue (its enqueue reply), if known: finds its element at once
   * (with `floor`, a quorum waiter's, which its element carries).
   */
  async cancel(keys: LockKeys, id: string, since?: number, group?: string, floor?: number): Promise<CancelReply> {
    const { r, sentAt } = await this.run('cancel', keys, () => [id, this.wake(keys), since ?? '', groupHex(group), ...(floor === undefined ? [] : [floor])]);
    const C = REPLY.cancel;
    const code = num(r[0]);
    const kind = code === C.left ? 'cancelled' : code === C.released ? 'released' : code === C.already ? 'already' : 'not-found';
    return { kind, now: num(r[1]), sentAt };
  }

  async heartbeat(keys: LockKeys, sessionId: string, livenessMs: number, beat: Beat = { held: [] }, durability?: Durability): Promise<HeartbeatReply> {
    const floor = (f: number | undefined) => (f === undefined ? '' : ` ${f}`);
    const dropped = (beat.dropped ?? []).map((d) => `${d.id} ${d.grant ? 'g' : (d.since ?? '-')} ${groupHex(d.group)}${floor(d.floor)}`);
    const newest = beat.newest ? `${beat.newest.id} ${beat.newest.since} ${groupHex(beat.newest.group)}${floor(beat.newest.floor)}` : '';
    const args = [sessionId, livenessMs, this.wake(keys), beat.askSubscribers ? '1' : '0', newest, beat.held.length, ...beat.held, ...dropped];
    const { r, sentAt, acked } = await this.run('heartbeat', keys, () => args, durability);
    return {
      lapsed: num(r[0]) === 1,
      now: num(r[1]),
      holders: holders(r[2]),
      sentAt,
      ...(r[3] ? { badQueue: String(r[3]) } : {}),
      ...(acked === undefined ? {} : { acked }),
      ...(beat.askSubscribers ? { subscribers: num(r[4]) } : {}),
    };
  }

  async extend(keys: LockKeys, id: string, ms: number): Promise<ExtendReply> {
    const { r, sentAt } = await this.run('extend', keys, () => [id, ms, this.wake(keys)]);
    if (num(r[0]) === REPLY.extend.extended) return { kind: 'extended', now: num(r[1]), exp: num(r[2]), sentAt };
    return { kind: 'not-holder', now: num(r[1]), sentAt };
  }

  /**
   * A quorum holder's commit (DESIGN §8, rule 4): if `id` holds the name here, the master's last token
   * becomes max(last, `token`) and the lease is renewed. Safe to repeat.
   */
  async commit(keys: LockKeys, id: string, token: number): Promise<CommitReply> {
    const { r, sentAt } = await this.run('commit', keys, () => [id, token, this.wake(keys)]);
    if (num(r[0]) === REPLY.commit.committed) return { kind: 'committed', now: num(r[1]), exp: num(r[2]), sentAt };
    return { kind: 'not-holder', now: num(r[1]), sentAt };
  }

  async inspect(keys: LockKeys, limit: number): Promise<InspectReply> {
    const { r, sentAt } = await this.run('inspect', keys, () => [limit]);
    const flat = (Array.isArray(r[4]) ? r[4] : []) as unknown[];
    const queue: InspectReply['queue'] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) queue.push({ id: String(flat[i]), since: num(flat[i + 1]), group: groupOfHex(flat[i + 2]) });
    const h = (Array.isArray(r[3]) ? r[3] : []) as unknown[];
    const granted: InspectReply['holders'] = [];
    for (let i = 0; i + 4 < h.length; i += 5) granted.push({ id: String(h[i]), token: num(h[i + 1]), exp: num(h[i + 2]), grantedAt: num(h[i + 3]), group: groupOfHex(h[i + 4]) });
    const released = String(r[5] ?? '').split(' ').filter((id) => id !== '');
    const g = (Array.isArray(r[6]) ? r[6] : []) as unknown[];
    const groups: InspectReply['groups'] = [];
    for (let i = 0; i + 2 < g.length; i += 3) groups.push({ group: groupOfHex(g[i]), waiting: num(g[i + 1]), parked: num(g[i + 2]) === 1 });
    return { now: num(r[1]), kindLimit: String(r[2]), holders: granted, queue, released, groups, sentAt };
  }

  /**
   * `args(rerun)`: the call's arguments; `rerun` is true when it is sent again after a dropped connection.
   * `born`: a third key, the born key of a quorum acquire with a restart guard.
   */
  private async run(name: ScriptName, keys: LockKeys, args: (rerun: boolean) => (string | number)[], durability?: Durability, born?: string): Promise<Ran> {
    let clusterRetries = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(name, keys, args(attempt > 1).map(String), durability, born);
      } catch (err) {
        if (err instanceof WaitNotSent) throw err; // not a Redis error: the caller reports a shortfall
        // Every call is safe to run twice (see the engine's entry points): a call whose connection
        // dropped before its reply came is sent once more (on the reconnected client) instead of
        // failing a wait or leaving a release undone. Errors Redis answered are not retried, but for a
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

  private async runOnce(name: ScriptName, keys: LockKeys, args: string[], durability?: Durability, born?: string): Promise<Ran> {
    const keyArgs = born === undefined ? ['2', keys.state, keys.queue] : ['3', keys.state, keys.queue, born];
    const sentAt = monotonic();
    let out: { reply: unknown; acked?: number };
    if (durability) {
      // WAIT goes out right behind the call: behind an EVALSHA refused with NOSCRIPT (or an FCALL of a
      // library not loaded yet) it would wait for nothing, so a script not yet seen loaded goes as EVAL.
      const { replicas, timeoutMs, signal } = durability;
      out = await this.script(name, [...keyArgs, ...args], (command) => this.redis.sendAndWait(command, keys.state, replicas, timeoutMs, signal), !this.loaded.has(name));
    } else {
      out = { reply: await this.call(name, keys, [...keyArgs, ...args]) };
    }
    const r = out.reply as unknown[];
    if (name !== 'types') this.clock.observe({ now: num(r[1]), sentAt });
    return { r, sentAt, ...(out.acked === undefined ? {} : { acked: out.acked }) };
  }

  /** One call of the engine: FCALL where the library is (loaded on first need), else EVALSHA (EVAL on NOSCRIPT). */
  private async call(name: ScriptName, keys: LockKeys, tail: string[]): Promise<unknown> {
    const script = ENGINE.scripts[name];
    if (this.mode !== 'script') {
      try {
        const reply = await this.fcall(script.fn, keys, tail);
        this.mode = 'function';
        return reply;
      } catch (err) {
        if (!(err instanceof EngineUnavailable)) throw err;
        debug('Redis Functions unavailable (%s): EVALSHA from now on', err.message);
        this.mode = 'script';
      }
    }
    return this.script(name, tail, (command) => this.redis.send(command, keys.state));
  }

  /**
   * The engine's entry `name` as a script through `send`: EVALSHA, and EVAL when Redis answers
   * NOSCRIPT (a restart, SCRIPT FLUSH), or at once when `evalFirst`.
   */
  private async script<T>(name: ScriptName, tail: string[], send: (command: string[]) => Promise<T>, evalFirst = false): Promise<T> {
    const { sha, body } = ENGINE.scripts[name];
    let out: T;
    try {
      out = await send(evalFirst ? ['EVAL', body, ...tail] : ['EVALSHA', sha, ...tail]);
    } catch (err) {
      if (evalFirst || !String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
      out = await send(['EVAL', body, ...tail]);
    }
    this.loaded.add(name);
    return out;
  }

  /** FCALL, loading the library when the server does not have it; EngineUnavailable when the server cannot (6.2, an ACL). */
  private async fcall(fn: string, keys: LockKeys, tail: string[]): Promise<unknown> {
    try {
      return await this.redis.send(['FCALL', fn, ...tail], keys.state);
    } catch (err) {
      const message = String((err as Error)?.message);
      if (refusedCommand(message)) throw new EngineUnavailable(message);
      if (!/function not found/i.test(message)) throw err;
    }
    try {
      await this.redis.send(['FUNCTION', 'LOAD', ENGINE.library], keys.state);
    } catch (err) {
      const message = String((err as Error)?.message);
      // Another process loaded it first: fine. Anything else (no permission, a read-only replica): scripts.
      if (!/already exists/i.test(message)) throw new EngineUnavailable(message);
    }
    return this.redis.send(['FCALL', fn, ...tail], keys.state);
  }

  /** Redis's error as a FairLockError; a WRONGTYPE is diagnosed by the engine's types entry so that BAD_KEY names the key. */
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

/** FCALL or FUNCTION LOAD cannot be used on this server (Redis 6.2, an ACL without them). */
class EngineUnavailable extends Error {}

/**
 * Redis refused FCALL or FUNCTION itself (it does not know it, or the user may not run it), not a
 * command the engine ran: a refusal inside the library names "@user_function" and that command
 * ("... to run the 'rpush' command script: ..., on @user_function:57" on Valkey and Redis 7.2).
 */
function refusedCommand(message: string): boolean {
  return /unknown command [`'"]?(fcall|function)\b/i.test(message) || /permissions to run the '(fcall|function(\|load)?)' command/i.test(message);
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

/**
 * What an acquire asks of the name: its kind and limit (a busy name with another refuses), the
 * semaphore's perGroup cap, and the request's group (undefined or '' = the default group).
 */
export interface NameSpec {
  kind: Kind;
  limit: number;
  perGroup?: number | undefined;
  group?: string | undefined;
}

/** "kind limit", or "semaphore permits perGroup": the name's field k (see lua/engine.lua). */
export function kindLimit(spec: Pick<NameSpec, 'kind' | 'limit' | 'perGroup'>): string {
  return spec.perGroup === undefined ? `${spec.kind} ${spec.limit}` : `${spec.kind} ${spec.limit} ${spec.perGroup}`;
}

/** A group as the engine takes it: the hex of its UTF-8 bytes, safe in key names and holder entries ('' = the default group). */
export function groupHex(group: string | undefined): string {
  return group ? Buffer.from(group, 'utf8').toString('hex') : '';
}

function groupOfHex(v: unknown): string {
  return Buffer.from(String(v ?? ''), 'hex').toString('utf8');
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
