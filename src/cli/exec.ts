/**
 * `fairlock exec NAME [options] -- COMMAND [ARGS...]`: wait in the lock's FIFO queue, run COMMAND
 * while holding the lock (the lease is auto-renewed), release when it exits, exit with its code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import ms from 'ms';
import { DEFAULTS, FairLocks, LockAbortedError, LockLostError, type Lease } from '../index.js';
import {
  bounded,
  CliError,
  closeRedis,
  connectRedis,
  EXIT,
  formatMs,
  parseDuration,
  redisOptions,
  say,
  signalExitCode,
  toCliError,
  type Client,
} from './common.js';

export interface ExecOptions {
  redis: string;
  prefix: string;
  timeout?: number;
  lease?: number;
  grace: number;
  quiet?: boolean;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How long a signalled waiter tries to leave the queue cleanly before it exits regardless. */
const LEAVE_LIMIT_MS = 3_000;

export function execCommand(): Command {
  const cmd = new Command('exec')
    .summary('run a command while holding a lock')
    .description(
      'Wait in the FIFO queue of the lock NAME, run COMMAND while holding it (the lease is renewed ' +
        'automatically), release it when COMMAND exits, and exit with COMMAND\'s exit code. ' +
        'COMMAND sees FAIRLOCK_NAME and FAIRLOCK_TOKEN (the fencing token) in its environment. ' +
        'SIGINT/SIGTERM/SIGHUP while waiting leave the queue; while COMMAND runs they are passed to it.',
    )
    .argument('<name>', 'lock name')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .addOption(new Option('--timeout <duration>', 'give up waiting after this long (0: do not wait at all)').argParser(parseDuration))
    .addOption(new Option('--lease <duration>', `lease length, renewed while COMMAND runs (default: ${ms(DEFAULTS.leaseMs)})`).argParser(parseDuration))
    .addOption(
      new Option('--grace <duration>', 'after the lease is lost: time between SIGTERM and SIGKILL of COMMAND').argParser(parseDuration).default(2_000, '2s'),
    )
    .option('-q, --quiet', 'print nothing but errors');
  for (const o of redisOptions()) cmd.addOption(o);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  fairlock exec nightly-report -- ./make-report.sh --day today\n  fairlock exec deploy --timeout 5m --lease 30s -- npm run deploy ' +
      '\nExit codes: COMMAND\'s own code (128+N if it died of signal N); 64 bad usage; 69 Redis unreachable; ' +
      '  70 internal error; 75 timed out waiting; 76 lease lost while COMMAND ran; 126 cannot execute;\n  127 command not found; 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP while waiting.',
  );
  cmd.action(async (name: string, command: string[], options: ExecOptions) => {
    process.exitCode = await runExec(name, command, options);
  });
  return cmd;
}

/** Runs the exec command; resolves with the process exit code. Never rejects. */
export async function runExec(name: string, command: string[], options: ExecOptions): Promise<number> {
  const info = (line: string) => options.quiet || say(line);
  const waiting = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  let child: ChildProcess | undefined;
  let client: Client | undefined;
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
    client = await connectRedis(options.redis);
    locks = new FairLocks(client, { prefix: options.prefix, ...(options.lease !== undefined && { leaseMs: options.lease }) });
    const lock = locks.lock(name);
    const started = performance.now();
    if (options.timeout === 0) {
      lease = (await lock.tryAcquire({ signal: waiting.signal })) ?? undefined;
      if (!lease) throw new CliError(EXIT.TIMEOUT, `the lock "${name}" is held or has waiters (--timeout 0 does not wait)`);
    } else {
      // Giving up needs Redis too (to leave the queue): when it is unreachable, time out anyway.
      const timeout = options.timeout;
      const watchdog =
        timeout === undefined
          ? undefined
          : setTimeout(() => {
              say(`timed out after ${formatMs(timeout)} waiting for the lock "${name}" (could not leave the queue: Redis unreachable?)`);
              process.exit(EXIT.TIMEOUT);
            }, timeout + LEAVE_LIMIT_MS).unref();
      try {
        lease = await lock.acquire({
          signal: waiting.signal,
          ...(timeout !== undefined && { timeoutMs: timeout }),
          onQueued: (position) => info(`waiting for "${name}" (position ${position} in the queue)`),
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
    info(`holding "${name}" (token ${lease.token}) after ${formatMs(performance.now() - started)}: running ${command.join(' ')}`);
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
    if (locks) await bounded(locks.close(), client?.isReady ? 3_000 : 300);
    await closeRedis(client);
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
      env: { ...process.env, FAIRLOCK_NAME: name, FAIRLOCK_TOKEN: String(lease.token) },
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
