/** What every command shares: exit codes, option parsing, the Redis connection, error reporting. */
import { constants } from 'node:os';
import { InvalidArgumentError as UsageError, Option, type Command } from 'commander';
import type { createClient as CreateClient, createCluster as CreateCluster } from 'redis';
import { escapeControls } from './escape-controls.js';
import { within, withTimeout } from '../bounded.js';
import { DEFAULTS, FairLockError, InvalidArgumentError, LimitMismatchError, LockTimeoutError } from '../index.js';

/**
 * Exit codes of fairlock itself. `exec` otherwise exits with its command's code (128 + N when the
 * command died of signal N, as shells do). Documented in README.md (Exit codes); keep the two in step.
 */
export const EXIT = Object.freeze({
  OK: 0,
  /** The demo's summary found a grant out of queue order or overlapping holders. */
  DEMO_FAILED: 1,
  /** Bad arguments or options (sysexits EX_USAGE). */
  USAGE: 64,
  /** Redis unreachable or a Redis error (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** An unexpected error inside fairlock (EX_SOFTWARE). */
  INTERNAL: 70,
  /** Gave up waiting: --timeout passed, or --timeout 0 and the lock was busy (EX_TEMPFAIL). */
  TIMEOUT: 75,
  /** The lease was lost while the command ran; the command was terminated. */
  LOCK_LOST: 76,
  /**
   * The name is busy as another kind (lock, semaphore, read-write lock) or as a semaphore of other
   * permits or --per-group (the library's LIMIT_MISMATCH; sysexits EX_CONFIG: the users of one name disagree).
   */
  LIMIT_MISMATCH: 78,
  /** The command was found but could not be run (as in shells). */
  CANNOT_EXECUTE: 126,
  /** The command was not found (as in shells). */
  NOT_FOUND: 127,
});

/** An error that ends the command with `exitCode` and a one-line message on stderr. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** 128 + the signal's number, as shells report a death by signal. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Writes one line to stderr, prefixed with "fairlock: ". Every message may carry a lock name, a
 * command line or a Redis error: the line is escaped as a whole (src/cli/escape-controls.ts), so a
 * newline in it shows as `\n` and the message stays one line.
 */
export function say(line: string): void {
  process.stderr.write(`fairlock: ${escapeControls(line)}\n`);
}

/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The one parser of numbers on the command line: a decimal integer, digits only, without a sign or
 * leading zeros (`010` is 8 to some tools), and a safe integer. `Number()` would take `0x10`, `1e3`,
 * ` 5`, `+5` and `` (0); `parseInt` would take `5abc`. Returns undefined for anything else.
 */
function decimalInteger(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]*)$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Milliseconds per duration unit; no unit means milliseconds. */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration: a decimal integer (see decimalInteger) and an optional unit, ms, s, m, h or d:
 * "500ms", "30s", "5m", "1h", or "250" (milliseconds). No fractions ("1.5h": write "90m").
 */
export function parseDuration(value: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d)?$/.exec(value);
  const n = m ? decimalInteger(m[1]!) : undefined;
  if (n === undefined) throw new UsageError('expected a duration: a decimal integer with an optional unit (ms, s, m, h, d), such as 500ms, 30s, 5m or 250');
  const parsed = n * UNIT_MS[m![2] ?? 'ms']!;
  // Node's timers fire at once for anything longer (with only a warning), so refuse it here.
  if (parsed > MAX_TIMER_MS) throw new UsageError('at most 24 days (2147483647 ms)');
  return parsed;
}

/** A parser of a decimal integer from `min` to `max` (see decimalInteger). */
export function parseInteger(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = decimalInteger(value);
    if (n === undefined || n < min || n > max) throw new UsageError(`expected a decimal integer from ${min} to ${max}`);
    return n;
  };
}

/** Formats milliseconds for people: 850ms, 4.2s, 3m05s. */
export function formatMs(value: number): string {
  if (value < 1000) return `${Math.round(value)}ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)}s`;
  const s = Math.round(value / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** The --redis, --cluster and --prefix options every command that talks to Redis takes. */
/**
 * Ends a command's definition: its examples and exit codes after the help, and an action whose
 * resolved number becomes the exit code.
 */
export function finishCommand<A extends unknown[]>(cmd: Command, examples: string, exitCodes: string, run: (...args: A) => Promise<number>): Command {
  cmd.addHelpText('after', `\nExamples:\n${examples}\n\nExit codes: ${exitCodes}`);
  cmd.action(async (...args: unknown[]) => {
    process.exitCode = await run(...(args.slice(0, run.length) as A));
  });
  return cmd;
}

export function redisOptions(): Option[] {
  return [
    new Option('--redis <url>', 'Redis URL (with --cluster: any node of the cluster)').env('REDIS_URL').default(DEFAULT_REDIS_URL),
    // Not commander's .env(): it turns a boolean on for any value, FAIRLOCK_CLUSTER=0 included (see clusterMode).
    new Option('--cluster', 'the Redis is a Redis Cluster node: use every master (or set FAIRLOCK_CLUSTER=1)'),
    new Option('--prefix <prefix>', 'key prefix of the locks').default(DEFAULTS.prefix),
  ];
}

/** Whether to talk to a Redis Cluster: --cluster, else FAIRLOCK_CLUSTER (1, true, yes; 0, false, no or empty). */
export function clusterMode(flag: boolean | undefined, env = process.env.FAIRLOCK_CLUSTER): boolean {
  if (flag) return true;
  const value = (env ?? '').trim().toLowerCase();
  if (['1', 'true', 'yes'].includes(value)) return true;
  if (['', '0', 'false', 'no'].includes(value)) return false;
  throw new CliError(EXIT.USAGE, `FAIRLOCK_CLUSTER: expected 1 (a Redis Cluster) or 0, got ${JSON.stringify(env)}`);
}

/** The URL with any password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Client = ReturnType<typeof CreateClient<any, any, any>>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ClusterClient = ReturnType<typeof CreateCluster<any, any, any>>;

/**
 * node-redis, loaded when a command needs it: the library itself takes any supported client, so a
 * project that installed fairlock with ioredis alone can import it without node-redis; the command
 * line tool needs node-redis (4, 5 or 6: the calls used here are common to all three).
 */
async function loadRedisModule(): Promise<typeof import('redis')> {
  try {
    return await import('redis');
  } catch (err) {
    throw new CliError(EXIT.UNAVAILABLE, `the fairlock command needs node-redis: npm install redis (${(err as Error)?.message ?? String(err)})`);
  }
}

export async function loadNodeRedis(): Promise<typeof CreateClient> {
  return (await loadRedisModule()).createClient;
}

/**
 * What a CLI connection does about drops, one Redis or a cluster alike: before the first connect,
 * three quick tries and then the error (the command exits 69); once connected, reconnects with
 * backoff (the lease's own deadline decides when a long outage loses the lock), saying so once per
 * outage. `connected` is set by the caller once its first connect succeeded.
 */
function connectionWatch(timeoutMs: number) {
  const watch = {
    connected: false,
    reported: false,
    lastError: undefined as Error | undefined,
    socket: {
      connectTimeout: Math.min(timeoutMs, 3_000),
      reconnectStrategy: (retries: number, cause: Error): number | Error => {
        watch.lastError = cause;
        if (watch.connected) return Math.min(50 * 2 ** retries, 1_000);
        return retries >= 3 ? cause : 100 * (retries + 1);
      },
    },
    onError(err: Error): void {
      watch.lastError = err;
      if (watch.connected && !watch.reported) {
        watch.reported = true;
        say(`Redis connection error (reconnecting): ${err.message}`);
      }
    },
  };
  return watch;
}

/** Resolves with `work`, or rejects "no answer within …" after `timeoutMs`. */
function answerWithin<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  return withTimeout(work, timeoutMs, () => new Error(`no answer within ${formatMs(timeoutMs)}`));
}

/**
 * Connects to Redis, failing with EXIT.UNAVAILABLE within about `timeoutMs` when it cannot. Once
 * connected, the client reconnects with backoff (the lease's own deadline decides when a long outage
 * loses the lock).
 */
export async function connectRedis(url: string, timeoutMs = 5_000): Promise<Client> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(EXIT.USAGE, `--redis: not a URL: ${url}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new CliError(EXIT.USAGE, `--redis: expected a redis:// or rediss:// URL, got ${redactUrl(url)}`);
  }
  const watch = connectionWatch(timeoutMs);
  const createClient = await loadNodeRedis();
  const client = createClient({ url, socket: watch.socket });
  client.on('error', watch.onError);
  client.on('ready', () => (watch.reported = false));
  try {
    await answerWithin(client.connect().then(() => client.ping()), timeoutMs);
  } catch (err) {
    await client.disconnect().catch(() => undefined);
    const why = (err as Error).message || watch.lastError?.message || String(err);
    throw new CliError(EXIT.UNAVAILABLE, `cannot connect to Redis at ${redactUrl(url)}: ${why}`);
  }
  watch.connected = true;
  return client as Client;
}

/** One master of a cluster (or the one Redis): its "host:port" and a client connected to it alone. */
export interface Master {
  address: string;
  client: Client;
}

/**
 * What a command talks to: one Redis, or with --cluster a Redis Cluster through node-redis's
 * createCluster() (the --redis URL is then a seed node: the others are learnt from it).
 */
export interface Connection {
  /** What FairLocks is given: a client, or the cluster client. */
  readonly client: Client | ClusterClient;
  readonly cluster: boolean;
  /** Every master, by address (one Redis: itself). A SCAN sees the keys of its own node only. */
  masters(): Promise<Master[]>;
  /** Connected (not reconnecting). */
  readonly isReady: boolean;
  /** Quits, or drops the connections if Redis does not answer within `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Connects to the Redis at `url` (with `cluster`, or FAIRLOCK_CLUSTER: to the Redis Cluster it is a
 * node of), failing with EXIT.UNAVAILABLE within about `timeoutMs` when it cannot, and with
 * EXIT.USAGE when the server is a cluster node and `cluster` is off, or the other way round: a
 * plain client on a cluster node would see one master's names only, and fail on the others'.
 */
export async function connect(url: string, cluster: boolean | undefined, timeoutMs = 5_000): Promise<Connection> {
  const wanted = clusterMode(cluster);
  const client = await connectRedis(url, timeoutMs);
  let enabled: boolean | undefined;
  try {
    enabled = /^cluster_enabled:1\b/m.test(String(await client.sendCommand(['INFO', 'cluster'])));
  } catch {
    // INFO refused (an ACL user without +info): unknown. A script's MOVED says it later (toCliError).
  }
  if (enabled !== undefined && enabled !== wanted) {
    await closeRedis(client);
    throw new CliError(EXIT.USAGE, wanted ? notACluster(url, 'cluster_enabled:0') : `${redactUrl(url)} is a Redis Cluster node: pass --cluster (its names are spread over its masters)`);
  }
  if (!wanted) return single(url, client);
  await closeRedis(client);
  return connectCluster(url, timeoutMs);
}

/** A connection to one Redis, whatever FAIRLOCK_CLUSTER says (the demo's: its workers use plain clients). */
export async function connectSingle(url: string, timeoutMs = 5_000): Promise<Connection> {
  return single(url, await connectRedis(url, timeoutMs));
}

function single(url: string, client: Client): Connection {
  const address = `${new URL(url).hostname}:${new URL(url).port || '6379'}`;
  return {
    client,
    cluster: false,
    masters: async () => [{ address, client }],
    get isReady() {
      return client.isReady;
    },
    close: (ms) => closeRedis(client, ms),
  };
}

function notACluster(url: string, why: string): string {
  return `--cluster: ${redactUrl(url)} is not a Redis Cluster node (${why}): leave --cluster out`;
}

/** "host:port", with brackets around an IPv6 host. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

async function connectCluster(url: string, timeoutMs: number): Promise<Connection> {
  const parsed = new URL(url);
  const watch = connectionWatch(timeoutMs);
  const { createCluster } = await loadRedisModule();
  // The seed's URL carries its credentials and TLS; the nodes learnt from it get them from defaults.
  const cluster = createCluster({
    rootNodes: [{ url }],
    defaults: {
      ...(parsed.username && { username: decodeURIComponent(parsed.username) }),
      ...(parsed.password && { password: decodeURIComponent(parsed.password) }),
      socket: {
        ...watch.socket,
        ...(parsed.protocol === 'rediss:' && { tls: true }),
      },
    },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the socket options' TLS union differs between majors
  } as any) as ClusterClient;
  cluster.on('error', watch.onError);
  try {
    await answerWithin(cluster.connect(), timeoutMs);
  } catch (err) {
    await cluster.disconnect().catch(() => undefined);
    if (/cluster support disabled/i.test(`${watch.lastError?.message} ${(err as Error).message}`)) throw new CliError(EXIT.USAGE, notACluster(url, 'it has cluster support disabled'));
    const why = watch.lastError?.message ?? ((err as Error).message || String(err));
    throw new CliError(EXIT.UNAVAILABLE, `cannot connect to the Redis Cluster at ${redactUrl(url)}: ${why}`);
  }
  watch.connected = true;
  const open = cluster as unknown as { isReady?: boolean; isOpen: boolean };
  return {
    client: cluster,
    cluster: true,
    async masters() {
      const nodes = [...cluster.masters].sort((a, b) => a.port - b.port || a.host.localeCompare(b.host));
      return Promise.all(nodes.map(async (m) => ({ address: hostPort(m.host, m.port), client: (await cluster.nodeClient(m)) as unknown as Client })));
    },
    get isReady() {
      return open.isReady ?? open.isOpen; // isReady: node-redis 6 only
    },
    close: (ms) => quitOrDrop(cluster, ms),
  };
}

/** Quits the client, or drops the connection if Redis does not answer within `timeoutMs`. */
async function closeRedis(client: Client, timeoutMs = 2_000): Promise<void> {
  // Reconnecting: QUIT would wait for a connection that may never come back.
  if (client.isOpen && !client.isReady) await client.disconnect().catch(() => undefined);
  else await quitOrDrop(client, timeoutMs);
}

/** Quits, or drops the connections if the client does not answer within `timeoutMs` (one Redis or a cluster). */
async function quitOrDrop(client: { isOpen: boolean; quit(): Promise<unknown>; disconnect(): Promise<unknown> }, timeoutMs = 2_000): Promise<void> {
  if (!client.isOpen || (await within(client.quit(), timeoutMs))) return;
  if (client.isOpen) await client.disconnect().catch(() => undefined);
}

function looksLikeConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (
    (typeof code === 'string' && /^E[A-Z]+$/.test(code)) ||
    /Socket|Connection|ClientClosed|Disconnect/i.test(err.name) ||
    /ECONNREFUSED|ECONNRESET|socket|connection/i.test(err.message)
  );
}

/** Maps any error to a CliError with the exit code the docs promise. */
export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof LockTimeoutError) return new CliError(EXIT.TIMEOUT, err.message);
  if (err instanceof LimitMismatchError) {
    return new CliError(
      EXIT.LIMIT_MISMATCH,
      `${err.message} (a busy name keeps its kind and permits: use the same --permits, --per-group, --read/--write as its other users, or another name)`,
    );
  }
  if (err instanceof InvalidArgumentError) {
    // The library names its options; say which command-line option that was.
    return new CliError(EXIT.USAGE, err.message.replace(/\boptions\.(leaseMs|prefix|timeoutMs)\b/g, (_, o: string) => `--${o.replace(/Ms$/, '')}`));
  }
  // A plain client on a cluster node whose INFO was refused (connect could not tell): the library says
  // to pass a cluster client; on the command line that is --cluster.
  const moved = err instanceof Error && (!(err instanceof FairLockError) || err.code === 'REDIS_ERROR') ? /\b(MOVED|ASK) \d+ \S+/.exec(err.message) : null;
  if (moved) return new CliError(EXIT.USAGE, `the Redis is a Redis Cluster node (it answered ${moved[0]}): pass --cluster`);
  if (err instanceof FairLockError && err.code === 'REDIS_ERROR') return new CliError(EXIT.UNAVAILABLE, `Redis error: ${err.message}`);
  if (looksLikeConnectionError(err)) return new CliError(EXIT.UNAVAILABLE, `Redis error: ${(err as Error).message}`);
  if (err instanceof FairLockError) return new CliError(EXIT.INTERNAL, `${err.code}: ${err.message}`);
  return new CliError(EXIT.INTERNAL, `unexpected error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
}
