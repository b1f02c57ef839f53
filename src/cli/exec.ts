/**
 * `fairlock exec NAME [options] -- COMMAND [ARGS...]`: wait in the FIFO queue of NAME (a lock, permits
 * of a semaphore, or one side of a read-write lock), run COMMAND while holding the grant (the lease is
 * auto-renewed), release when it exits, exit with its code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import ms from 'ms';
import { DEFAULTS, FairLocks, LockAbortedError, LockLostError, MAX_PERMITS, type FairLock, type Lease } from '../index.js';
import {
  bounded,
  CliError,
  connect,
  EXIT,
  formatMs,
  parseCount,
  parseDuration,
  redisOptions,
  say,
  signalExitCode,
  toCliError,
  type Connection,
} from './common.js';

export interface ExecOptions {
  redis: string;
  /** A Redis Cluster: lock through a cluster client (else FAIRLOCK_CLUSTER decides). */
  cluster?: boolean;
  prefix: string;
  timeout?: number;
  lease?: number;
  grace: number;
  quiet?: boolean;
  permits?: number;
  weight?: number;
  read?: boolean;
  write?: boolean;
}

/** What exec takes of NAME, from --permits/--weight and --read/--write (checked by execTarget). */
export type ExecTarget =
  | { kind: 'lock' }
  | { kind: 'semaphore'; permits: number; weight: number }
  | { kind: 'rw'; mode: 'read' | 'write' };

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How long a signalled waiter tries to leave the queue cleanly before it exits regardless. */
const LEAVE_LIMIT_MS = 3_000;

export const EXEC_HELP_AFTER = [
  '',
  'Examples:',
  '  fairlock exec nightly-report -- ./make-report.sh --day today',
  '  fairlock exec deploy --timeout 5m --lease 30s -- npm run deploy',
  '  fairlock exec gpu --permits 4 --weight 2 -- ./train.sh    (2 of the 4 permits of "gpu")',
  '  fairlock exec site-config --read -- ./render.sh           (many readers at once)',
  '  fairlock exec site-config --write -- ./update-config.sh   (alone: no reader, no other writer)',
  '  fairlock exec tenant-42 --cluster --redis redis://10.0.0.5:7000 -- ./job.sh   (on a Redis Cluster)',
  '',
  'Exit codes:',
  "  COMMAND's own code (128+N if it died of signal N); 64 bad usage (also: --cluster left out for a",
  '  cluster node, or given for another server); 69 Redis unreachable;',
  '  70 internal error; 75 timed out waiting; 76 lease lost while COMMAND ran;',
  '  78 NAME is busy as another kind (lock, semaphore, read-write lock) or with other --permits;',
  '  126 cannot execute; 127 command not found;',
  '  130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP while waiting.',
].join('\n');

export function execCommand(): Command {
  const cmd = new Command('exec')
    .summary('run a command while holding a lock, semaphore permits or one side of a read-write lock')
    .description(
      'Wait in the FIFO queue of NAME, run COMMAND while holding it (the lease is renewed ' +
        'automatically), release it when COMMAND exits, and exit with COMMAND\'s exit code. ' +
        'NAME is a lock (one holder at a time) unless --permits makes it a fair semaphore of N permits ' +
        '(--weight W takes W of them; default 1) or --read/--write take the shared/exclusive side of a ' +
        'read-write lock. All users of a busy name must agree on its kind and permits (exit 78 otherwise). ' +
        'COMMAND sees FAIRLOCK_NAME, FAIRLOCK_TOKEN (the fencing token) and FAIRLOCK_KIND (lock, semaphore ' +
        'or rw) in its environment, plus FAIRLOCK_WEIGHT (semaphore) or FAIRLOCK_MODE (read or write). ' +
        'SIGINT/SIGTERM/SIGHUP while waiting leave the queue; while COMMAND runs they are passed to it.',
    )
    .argument('<name>', 'lock, semaphore or read-write lock name')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .addOption(new Option('--permits <n>', 'NAME is a fair semaphore of N permits').argParser(parseCount(1, MAX_PERMITS)))
    .addOption(new Option('--weight <w>', 'with --permits: take W permits (default: 1)').argParser(parseCount(1, MAX_PERMITS)))
    .addOption(new Option('--read', 'take the read (shared) side of the read-write lock NAME').conflicts(['write', 'permits', 'weight']))
    .addOption(new Option('--write', 'take the write (exclusive) side of the read-write lock NAME').conflicts(['read', 'permits', 'weight']))
    .addOption(new Option('--timeout <duration>', 'give up waiting after this long (0: do not wait at all)').argParser(parseDuration))
    .addOption(new Option('--lease <duration>', `lease length, renewed while COMMAND runs (default: ${ms(DEFAULTS.leaseMs)})`).argParser(parseDuration))
    .addOption(
      new Option('--grace <duration>', 'after the lease is lost: time between SIGTERM and SIGKILL of COMMAND').argParser(parseDuration).default(2_000, '2s'),
    )
    .option('-q, --quiet', 'print nothing but errors');
  for (const o of redisOptions()) cmd.addOption(o);
  cmd.addHelpText('after', EXEC_HELP_AFTER);
  cmd.action(async (name: string, command: string[], options: ExecOptions) => {
    let target: ExecTarget;
    try {
      target = execTarget(options);
    } catch (err) {
      // Reported like commander's own usage errors (one line, the help hint, exit 64).
      return cmd.error((err as Error).message, { exitCode: EXIT.USAGE, code: 'fairlock.usage' });
    }
    process.exitCode = await runExec(name, command, options, target);
  });
  return cmd;
}

/** The grant asked for; throws an Error with a usage message for a combination that makes no sense. */
export function execTarget(options: Pick<ExecOptions, 'permits' | 'weight' | 'read' | 'write'>): ExecTarget {
  const { permits, weight, read, write } = options;
  // Commander refuses --read/--write together or with --permits/--weight (conflicts); checked here too
  // for callers of runExec.
  if (read && write) throw new Error('--read and --write cannot be used together');
  if ((read || write) && (permits !== undefined || weight !== undefined)) {
    throw new Error(`--${read ? 'read' : 'write'} cannot be used with --permits or --weight (a read-write lock has no permits)`);
  }
  if (read || write) return { kind: 'rw', mode: read ? 'read' : 'write' };
  if (weight !== undefined && permits === undefined) throw new Error('--weight needs --permits (the number of permits of the semaphore NAME)');
  if (permits === undefined) return { kind: 'lock' };
  const w = weight ?? 1;
  if (w > permits) throw new Error(`--weight ${w} is more than --permits ${permits}: it could never be granted`);
  return { kind: 'semaphore', permits, weight: w };
}

/** What is asked of NAME, for messages: "the lock "x"", "2 of the 4 permits of "x"", "the read side of "x"". */
export function describeTarget(name: string, target: ExecTarget): string {
  const quoted = JSON.stringify(name);
  if (target.kind === 'semaphore') return `${target.weight} of the ${target.permits} permits of the semaphore ${quoted}`;
  if (target.kind === 'rw') return `the ${target.mode} side of the read-write lock ${quoted}`;
  return `the lock ${quoted}`;
}

/** Why `--timeout 0` got nothing. */
function busyMessage(name: string, target: ExecTarget): string {
  const quoted = JSON.stringify(name);
  const why =
    target.kind === 'semaphore'
      ? `the semaphore ${quoted} has fewer than ${target.weight} of its ${target.permits} permits free, or has waiters`
      : target.kind === 'rw' && target.mode === 'read'
        ? `the read-write lock ${quoted} is held for writing or has waiters`
        : target.kind === 'rw'
          ? `the read-write lock ${quoted} is held or has waiters`
          : `the lock ${quoted} is held or has waiters`;
  return `${why} (--timeout 0 does not wait)`;
}

function handleFor(locks: FairLocks, name: string, target: ExecTarget): FairLock {
  if (target.kind === 'semaphore') return locks.semaphore(name, { permits: target.permits, weight: target.weight });
  if (target.kind === 'rw') return locks.readWrite(name)[target.mode]();
  return locks.lock(name);
}

/** Runs the exec command; resolves with the process exit code. Never rejects. */
export async function runExec(name: string, command: string[], options: ExecOptions, given?: ExecTarget): Promise<number> {
  let target: ExecTarget;
  try {
    target = given ?? execTarget(options);
  } catch (err) {
    say((err as Error).message);
    return EXIT.USAGE;
  }
  const what = describeTarget(name, target);
  const info = (line: string) => options.quiet || say(line);
  const waiting = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  let child: ChildProcess | undefined;
  let redis: Connection | undefined;
  let locks: FairLocks | undefined;
  let lease: Lease | undefined;

  const onSignal = (sig: NodeJS.Signals) => {
    if (child) {
      // Forward to the command; it decides how to end, and we exit with its code.
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      return;
    }
    if (interrupted) {
      // A second signal while leaving the queue: stop now (the waiter is reaped by liveness).
      process.exit(signalExitCode(sig));
    }
    interrupted = sig;
    info(`${sig} received while waiting for "${name}": leaving the queue`);
    waiting.abort(new Error(sig));
    // Leaving needs Redis; when it is unreachable, go anyway: the entry is skipped once this
    // process's liveness runs out.
    setTimeout(() => {
      say(`could not leave the queue of "${name}" within ${formatMs(LEAVE_LIMIT_MS)} (Redis unreachable?); exiting anyway`);
      process.exit(signalExitCode(sig));
    }, LEAVE_LIMIT_MS).unref();
  };
  for (const sig of FORWARDED) process.on(sig, onSignal);

  try {
    redis = await connect(options.redis, options.cluster);
    locks = new FairLocks(redis.client, { prefix: options.prefix, ...(options.lease !== undefined && { leaseMs: options.lease }) });
    const lock = handleFor(locks, name, target);
    const started = performance.now();
    if (options.timeout === 0) {
      lease = (await lock.tryAcquire({ signal: waiting.signal })) ?? undefined;
      if (!lease) throw new CliError(EXIT.TIMEOUT, busyMessage(name, target));
    } else {
      // Giving up needs Redis too (to leave the queue): when it is unreachable, time out anyway.
      const timeout = options.timeout;
      const watchdog =
        timeout === undefined
          ? undefined
          : setTimeout(() => {
              say(`timed out after ${formatMs(timeout)} waiting for ${what} (could not leave the queue: Redis unreachable?)`);
              process.exit(EXIT.TIMEOUT);
            }, timeout + LEAVE_LIMIT_MS).unref();
      try {
        lease = await lock.acquire({
          signal: waiting.signal,
          ...(timeout !== undefined && { timeoutMs: timeout }),
          onQueued: (position) => info(`waiting for ${what} (position ${position} in the queue)`),
        });
      } finally {
        clearTimeout(watchdog);
      }
    }
    if (interrupted) {
      // The grant won the race with the signal: hand the lock on and do not run the command.
      await bounded(lease.release(), 2_000);
      return signalExitCode(interrupted);
    }
    info(`holding ${what} (token ${lease.token}) after ${formatMs(performance.now() - started)}: running ${command.join(' ')}`);
    const outcome = await runChild(command, name, lease, options, info, (c) => (child = c));
    const lost = outcome.lost ?? (await releaseLease(lease));
    if (lost) {
      say(`${lost}; ${outcome.what}`);
      return EXIT.LOCK_LOST;
    }
    if (outcome.spawnError) {
      say(outcome.spawnError.message);
      return outcome.spawnError.exitCode;
    }
    return outcome.code;
  } catch (err) {
    if (err instanceof LockAbortedError && interrupted) return signalExitCode(interrupted);
    const e = toCliError(err);
    say(e.message);
    return e.exitCode;
  } finally {
    // Leave the queue / release and disconnect, but never hang on an unreachable Redis.
    if (locks) await bounded(locks.close(), redis?.isReady ? 3_000 : 300);
    await redis?.close();
    for (const sig of FORWARDED) process.off(sig, onSignal);
  }
}

interface ChildOutcome {
  code: number;
  /** Set when the lease was lost while the command ran. */
  lost?: string;
  /** How the command ended, for the lost-lease message. */
  what: string;
  spawnError?: CliError;
}

function runChild(
  command: string[],
  name: string,
  lease: Lease,
  options: ExecOptions,
  info: (line: string) => void,
  started: (child: ChildProcess) => void,
): Promise<ChildOutcome> {
  const [file, ...args] = command as [string, ...string[]];
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: 'inherit',
      env: childEnv(name, lease),
    });
    started(child);
    let lost: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const done = (outcome: ChildOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      lease.signal.removeEventListener('abort', onLost);
      resolve(outcome);
    };
    const onLost = () => {
      if (settled || child.exitCode !== null || child.signalCode !== null) return;
      const reason = lease.signal.reason instanceof Error ? lease.signal.reason.message : String(lease.signal.reason);
      lost = reason;
      say(`${reason}: sending SIGTERM to the command (pid ${child.pid}), SIGKILL in ${formatMs(options.grace)}`);
      child.kill('SIGTERM');
      killTimer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) {
          say(`the command (pid ${child.pid}) is still running: sending SIGKILL`);
          child.kill('SIGKILL');
        }
      }, options.grace);
    };
    lease.signal.addEventListener('abort', onLost, { once: true });
    if (lease.signal.aborted) onLost();
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined && err.code !== 'ENOENT' && err.code !== 'EACCES') return; // e.g. a failed kill
      const notFound = err.code === 'ENOENT';
      const spawnError = new CliError(
        notFound ? EXIT.NOT_FOUND : EXIT.CANNOT_EXECUTE,
        `${notFound ? 'command not found' : 'cannot execute'}: ${file} (${err.code ?? err.message})`,
      );
      done({ code: spawnError.exitCode, spawnError, what: 'the command did not start', ...(lost !== undefined && { lost }) });
    });
    child.once('exit', (code, signal) => {
      const exitCode = code ?? signalExitCode(signal ?? 'SIGKILL');
      const what = signal ? `the command ended by ${signal}` : `the command exited with code ${code}`;
      if (!lost) info(`${what}; releasing "${name}"`);
      done({ code: exitCode, what, ...(lost !== undefined && { lost }) });
    });
  });
}

/**
 * COMMAND's environment: ours, plus what it holds. FAIRLOCK_WEIGHT and FAIRLOCK_MODE are set only
 * where they apply, and removed otherwise (an exec inside another one must not see the outer's).
 */
export function childEnv(name: string, lease: Pick<Lease, 'token' | 'kind' | 'weight' | 'mode'>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FAIRLOCK_NAME: name, FAIRLOCK_TOKEN: String(lease.token), FAIRLOCK_KIND: lease.kind };
  delete env.FAIRLOCK_WEIGHT;
  delete env.FAIRLOCK_MODE;
  if (lease.kind === 'semaphore') env.FAIRLOCK_WEIGHT = String(lease.weight);
  if (lease.mode !== undefined) env.FAIRLOCK_MODE = lease.mode;
  return env;
}

/** Releases the lease; resolves with a message when it turned out to be lost, else undefined. */
async function releaseLease(lease: Lease): Promise<string | undefined> {
  try {
    await lease.release();
    return undefined;
  } catch (err) {
    if (err instanceof LockLostError) return `${err.message} (found at release)`;
    // Redis unreachable at release: the lease runs out by itself once renewals stop.
    say(`could not release "${lease.name}" (${(err as Error).message}); it expires on its own`);
    return undefined;
  }
}
