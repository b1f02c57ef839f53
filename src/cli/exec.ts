/**
 * `fairlock exec NAME [options] -- COMMAND [ARGS...]`: wait in the FIFO queue of NAME (a lock, permits
 * of a semaphore, or one side of a read-write lock), run COMMAND while holding the grant (the lease is
 * auto-renewed), release when it exits, exit with its code.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import ms from 'ms';
import { DEFAULTS, type FairLocks, InvalidArgumentError, LockAbortedError, LockLostError, MAX_PERMITS, type FairLock, type Lease } from '../index.js';
import { checkGroup } from '../options.js';
import {
  CliError,
  EXIT,
  formatMs,
  parseInteger,
  parseDuration,
  redisOptions,
  say,
  signalExitCode,
} from './common.js';
import { runCommand, type Run } from './run-command.js';
import { groupRuns, signalGroup } from './process-group.js';
import { within } from '../bounded.js';

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
  /** The group (tenant) to take turns in (DESIGN §7); undefined: the default group. */
  group?: string;
  /** With --permits: the most permits one group may hold at once. */
  perGroup?: number;
}

/**
 * What exec takes of NAME, from --permits/--weight/--per-group, --read/--write and --group (checked by
 * execTarget). `group` undefined: the default group.
 */
export type ExecTarget =
  | { kind: 'lock'; group?: string | undefined }
  | { kind: 'semaphore'; permits: number; weight: number; perGroup?: number | undefined; group?: string | undefined }
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
  '  fairlock exec gpu --permits 8 --group tenant-42 -- ./job.sh   (tenants take turns: one tenant\'s backlog does not hold back the others)',
  '  fairlock exec tenant-42 --cluster --redis redis://10.0.0.5:7000 -- ./job.sh   (on a Redis Cluster)',
  '',
  'Exit codes:',
  "  COMMAND's own code (128+N if it died of signal N); 64 bad usage (also: --cluster left out for a",
  '  cluster node, or given for another server); 69 Redis unreachable;',
  '  70 internal error; 75 timed out waiting; 76 lease lost while COMMAND ran;',
  '  78 NAME is busy as another kind (lock, semaphore, read-write lock) or with other --permits or --per-group;',
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
        'read-write lock. --group G takes its turn in group G: groups with waiters are served in ' +
        'rotation, FIFO inside each (fair share between tenants; --per-group caps what one group holds). ' +
        'All users of a busy name must agree on its kind, permits and --per-group (exit 78 otherwise). ' +
        'COMMAND sees FAIRLOCK_NAME, FAIRLOCK_TOKEN (the fencing token) and FAIRLOCK_KIND (lock, semaphore ' +
        'or rw) in its environment, plus FAIRLOCK_WEIGHT (semaphore) or FAIRLOCK_MODE (read or write), ' +
        'and FAIRLOCK_GROUP with --group. ' +
        'SIGINT/SIGTERM/SIGHUP while waiting leave the queue; while COMMAND runs they are passed to it. ' +
        'COMMAND runs in a process group of its own (unless stdin is a terminal): signals reach all of it, ' +
        'and NAME is let go only once every process of the group has ended (what still runs when COMMAND ' +
        'exits gets SIGTERM, then SIGKILL after --grace).',
    )
    .argument('<name>', 'lock, semaphore or read-write lock name')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .addOption(new Option('--permits <n>', 'NAME is a fair semaphore of N permits').argParser(parseInteger(1, MAX_PERMITS)))
    .addOption(new Option('--weight <w>', 'with --permits: take W permits (default: 1)').argParser(parseInteger(1, MAX_PERMITS)))
    .addOption(new Option('--per-group <n>', 'with --permits: at most N permits held by one group at once').argParser(parseInteger(1, MAX_PERMITS)))
    .addOption(new Option('--group <group>', 'take turns in this group (tenant): groups with waiters are served in rotation, FIFO inside each'))
    .addOption(new Option('--read', 'take the read (shared) side of the read-write lock NAME').conflicts(['write', 'permits', 'weight', 'perGroup', 'group']))
    .addOption(new Option('--write', 'take the write (exclusive) side of the read-write lock NAME').conflicts(['read', 'permits', 'weight', 'perGroup', 'group']))
    .addOption(new Option('--timeout <duration>', 'give up waiting after this long (0: do not wait at all)').argParser(parseDuration))
    .addOption(new Option('--lease <duration>', `lease length, renewed while COMMAND runs (default: ${ms(DEFAULTS.leaseMs)})`).argParser(parseDuration))
    .addOption(
      new Option('--grace <duration>', "lease lost, or COMMAND exited leaving processes behind: time between SIGTERM and SIGKILL of COMMAND's process group").argParser(parseDuration).default(2_000, '2s'),
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
export function execTarget(options: Pick<ExecOptions, 'permits' | 'weight' | 'read' | 'write' | 'group' | 'perGroup'>): ExecTarget {
  const { permits, weight, read, write, perGroup } = options;
  // Commander refuses --read/--write together or with --permits/--weight/--per-group/--group
  // (conflicts); checked here too for callers of runExec.
  if (read && write) throw new Error('--read and --write cannot be used together');
  if ((read || write) && (permits !== undefined || weight !== undefined || perGroup !== undefined)) {
    throw new Error(`--${read ? 'read' : 'write'} cannot be used with --permits, --weight or --per-group (a read-write lock has no permits)`);
  }
  if ((read || write) && options.group !== undefined) {
    throw new Error(`--group does not apply to a read-write lock (--${read ? 'read' : 'write'}): groups take turns on a lock or a semaphore`);
  }
  if (read || write) return { kind: 'rw', mode: read ? 'read' : 'write' };
  const group = options.group === undefined ? undefined : execGroup(options.group);
  if (weight !== undefined && permits === undefined) throw new Error('--weight needs --permits (the number of permits of the semaphore NAME)');
  if (perGroup !== undefined && permits === undefined) throw new Error('--per-group needs --permits (the number of permits of the semaphore NAME)');
  if (permits === undefined) return { kind: 'lock', group };
  const w = weight ?? 1;
  if (w > permits) throw new Error(`--weight ${w} is more than --permits ${permits}: it could never be granted`);
  if (perGroup !== undefined && perGroup > permits) throw new Error(`--per-group ${perGroup} is more than --permits ${permits}`);
  if (perGroup !== undefined && w > perGroup) throw new Error(`--weight ${w} is more than --per-group ${perGroup}: it could never be granted`);
  return { kind: 'semaphore', permits, weight: w, perGroup, group };
}

/**
 * A --group value checked by the library's own rule (a non-empty string of at most 256 UTF-8 bytes):
 * its message, naming --group, for a bad one.
 */
function execGroup(value: string): string {
  try {
    return checkGroup(value, '--group');
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new Error(err.message);
    throw err;
  }
}

/**
 * What is asked of NAME, for messages: "the lock "x"", "2 of the 4 permits of "x"", "the read side of "x"".
 * The name is quoted as is, as the library's own messages do: say() escapes the whole line.
 */
export function describeTarget(name: string, target: ExecTarget): string {
  const quoted = `"${name}"`;
  if (target.kind === 'rw') return `the ${target.mode} side of the read-write lock ${quoted}`;
  const inGroup = target.group === undefined ? '' : ` in group "${target.group}"`;
  if (target.kind === 'semaphore') return `${target.weight} of the ${target.permits} permits of the semaphore ${quoted}${inGroup}`;
  return `the lock ${quoted}${inGroup}`;
}

/** Why `--timeout 0` got nothing. */
function busyMessage(name: string, target: ExecTarget): string {
  const quoted = `"${name}"`;
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
  if (target.kind === 'rw') return locks.readWrite(name)[target.mode]();
  const group = target.group === undefined ? {} : { group: target.group };
  if (target.kind === 'semaphore') {
    return locks.semaphore(name, { permits: target.permits, weight: target.weight, ...(target.perGroup !== undefined && { perGroup: target.perGroup }), ...group });
  }
  return locks.lock(name, group);
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
  let running: { signal(sig: NodeJS.Signals): void } | undefined;

  const onSignal = (sig: NodeJS.Signals) => {
    if (running) {
      // Forward to the command (its whole process group); it decides how to end, and we exit with its code.
      running.signal(sig);
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

  const hold = async ({ locks }: Run): Promise<number> => {
    const lock = handleFor(locks(), name, target);
    const started = performance.now();
    let lease: Lease | undefined;
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
      await within(lease.release(), 2_000);
      return signalExitCode(interrupted);
    }
    info(`holding ${what} (token ${lease.token}) after ${formatMs(performance.now() - started)}: running ${command.join(' ')}`);
    const outcome = await runChild(command, name, lease, options, info, (r) => (running = r));
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
  };

  try {
    return await runCommand(options, hold, {
      ...(options.lease !== undefined && { locks: { leaseMs: options.lease } }),
      exitCodeOf: (err) => (err instanceof LockAbortedError && interrupted ? signalExitCode(interrupted) : undefined),
      // Leave the queue / release and disconnect, but never hang on an unreachable Redis.
      closeMs: (redis) => (redis.isReady ? 3_000 : 300),
    });
  } finally {
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

/** The running COMMAND, as the signal handler of runExec sees it. */
interface Running {
  /** Passes a signal on: to COMMAND's whole process group, or (stdin a terminal) to COMMAND alone. */
  signal(sig: NodeJS.Signals): void;
}

/** After SIGKILL, how long to wait for the group to be gone before letting the lock go regardless. */
const KILL_WAIT_MS = 2_000;
/** How often to look whether the group has ended. */
const GROUP_POLL_MS = 50;

/**
 * Runs COMMAND and resolves once it, and every process of its group, is gone.
 *
 * COMMAND gets a process group (a session) of its own, unless stdin is a terminal (see below). Then:
 * - forwarded signals reach the whole group: a shell's running step, its children, background jobs;
 * - when COMMAND exits while processes of its group still run, or the lease is lost, the group gets
 *   SIGTERM, then SIGKILL after --grace; the promise resolves (and the lock is let go) only once the
 *   group is empty, or KILL_WAIT_MS after the SIGKILL (a process stuck in the kernel, or one that
 *   left the group with setsid, cannot be waited for);
 * - if fairlock exits while the group runs (a bug, process.exit), the group gets SIGKILL.
 * With stdin a terminal, COMMAND stays in fairlock's group, the terminal's foreground job: it can
 * read the terminal, and Ctrl-C / Ctrl-Z reach it and all its steps from the terminal itself. A
 * background group could not read the terminal (SIGTTIN stops it) and a session of its own could not
 * open /dev/tty (sudo, ssh prompts). Signals sent to fairlock alone and the lost-lease SIGTERM/SIGKILL
 * then reach COMMAND only, not its steps (README says so; `< /dev/null` gives the group behaviour).
 */
function runChild(
  command: string[],
  name: string,
  lease: Lease,
  options: ExecOptions,
  info: (line: string) => void,
  started: (running: Running) => void,
): Promise<ChildOutcome> {
  const [file, ...args] = command as [string, ...string[]];
  const ownGroup = process.stdin.isTTY !== true;
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: 'inherit',
      env: childEnv(name, lease),
      // A session of its own: COMMAND's PID is the id of its process group.
      detached: ownGroup,
    });
    const pgid = ownGroup ? child.pid : undefined;
    const childRuns = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
    const runs = () => (pgid !== undefined ? groupRuns(pgid) : childRuns());
    const signal = (sig: NodeJS.Signals) => {
      if (pgid !== undefined) signalGroup(pgid, sig);
      else if (childRuns()) child.kill(sig);
    };
    const target = pgid !== undefined ? `the command's process group (pgid ${pgid})` : `the command (pid ${child.pid})`;
    // A signal passed on already told the group to end: what outlives COMMAND then gets only the SIGKILL.
    let forwarded = false;
    started({ signal: (sig) => ((forwarded = true), signal(sig)) });
    let lost: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let killedAt: number | undefined;
    let ending = false;
    let settled = false;
    const onExit = () => pgid !== undefined && signalGroup(pgid, 'SIGKILL');
    process.once('exit', onExit);
    const done = (outcome: ChildOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      process.off('exit', onExit);
      lease.signal.removeEventListener('abort', onLost);
      resolve({ ...outcome, ...(lost !== undefined && { lost }) });
    };
    /** SIGTERM to the group now (unless `why` is undefined), SIGKILL after --grace (once). */
    const end = (why: string | undefined, tell: (line: string) => void) => {
      if (ending) return;
      ending = true;
      if (why !== undefined) {
        tell(`${why}: sending SIGTERM to ${target}, SIGKILL in ${formatMs(options.grace)}`);
        signal('SIGTERM');
      }
      killTimer = setTimeout(() => {
        killedAt = performance.now();
        if (!runs()) return;
        say(`${target} is still running: sending SIGKILL`);
        signal('SIGKILL');
      }, options.grace);
    };
    const onLost = () => {
      if (settled || !runs()) return;
      const reason = lease.signal.reason instanceof Error ? lease.signal.reason.message : String(lease.signal.reason);
      lost = reason;
      end(reason, say);
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
      done({ code: spawnError.exitCode, spawnError, what: 'the command did not start' });
    });
    child.once('exit', (code, sig) => {
      const exitCode = code ?? signalExitCode(sig ?? 'SIGKILL');
      const what = sig ? `the command ended by ${sig}` : `the command exited with code ${code}`;
      const finish = () => {
        if (!lost) info(`${what}; releasing "${name}"`);
        done({ code: exitCode, what });
      };
      if (!runs()) return finish();
      // Steps it started still run (a background job, a step that outlived its shell): they end
      // before the lock is let go, not after the next holder has started.
      end(forwarded ? undefined : `${what} but processes it started still run`, info);
      const poll = setInterval(() => {
        if (runs() && (killedAt === undefined || performance.now() - killedAt < KILL_WAIT_MS)) return;
        clearInterval(poll);
        if (runs()) say(`${target} still has processes ${formatMs(KILL_WAIT_MS)} after SIGKILL; letting "${name}" go regardless`);
        finish();
      }, GROUP_POLL_MS);
    });
  });
}

/**
 * COMMAND's environment: ours, plus what it holds. FAIRLOCK_WEIGHT and FAIRLOCK_MODE are set only
 * where they apply, and removed otherwise (an exec inside another one must not see the outer's).
 */
export function childEnv(name: string, lease: Pick<Lease, 'token' | 'kind' | 'weight' | 'mode' | 'group'>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FAIRLOCK_NAME: name, FAIRLOCK_TOKEN: String(lease.token), FAIRLOCK_KIND: lease.kind };
  delete env.FAIRLOCK_WEIGHT;
  delete env.FAIRLOCK_MODE;
  delete env.FAIRLOCK_GROUP;
  if (lease.kind === 'semaphore') env.FAIRLOCK_WEIGHT = String(lease.weight);
  if (lease.mode !== undefined) env.FAIRLOCK_MODE = lease.mode;
  if (lease.group !== undefined) env.FAIRLOCK_GROUP = lease.group;
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
