/**
 * The frame of every command that talks to Redis: connect, run, turn what was thrown into the exit
 * code the docs promise (README.md, Exit codes), and close, bounded, whatever happened.
 */
import { within } from '../bounded.js';
import { FairLocks, type FairLocksOptions } from '../index.js';
import { connect, connectSingle, say, toCliError, type Connection } from './common.js';

/** Where a command's locks live: --redis, --cluster (else FAIRLOCK_CLUSTER decides) and --prefix. */
export interface RedisTarget {
  redis: string;
  cluster?: boolean;
  prefix: string;
}

export interface RunOptions {
  /** One Redis whatever FAIRLOCK_CLUSTER says, and no check of its cluster mode (the demo). */
  single?: boolean;
  /** FairLocks options besides the prefix (exec's --lease). */
  locks?: Omit<FairLocksOptions, 'prefix'>;
  /** An error the command answers itself: its exit code; undefined reports it as any other. */
  exitCodeOf?: (err: unknown) => number | undefined;
  /** How long closing the FairLocks may take, once `work` ended (default 2 s). */
  closeMs?: (redis: Connection) => number;
}

/** What `work` is given: the connection, and the command's one FairLocks (made on first call). */
export interface Run {
  redis: Connection;
  locks(): FairLocks;
}

/**
 * Connects to `target` (one Redis, or a Redis Cluster), runs `work`, and closes its FairLocks and the
 * connection, each bounded: resolves with `work`'s exit code, or with the exit code of what any step
 * threw, said on stderr in one line. Never rejects.
 */
export async function runCommand(target: RedisTarget, work: (run: Run) => Promise<number>, options: RunOptions = {}): Promise<number> {
  let redis: Connection | undefined;
  let locks: FairLocks | undefined;
  try {
    const connection = (redis = options.single ? await connectSingle(target.redis) : await connect(target.redis, target.cluster));
    return await work({
      redis: connection,
      locks: () => (locks ??= new FairLocks(connection.client, { ...options.locks, prefix: target.prefix })),
    });
  } catch (err) {
    return options.exitCodeOf?.(err) ?? failed(err);
  } finally {
    if (locks) await within(locks.close(), redis && options.closeMs ? options.closeMs(redis) : 2_000);
    await redis?.close();
  }
}

/** Says why a command failed (one line on stderr); returns its exit code. */
export function failed(err: unknown): number {
  const e = toCliError(err);
  say(e.message);
  return e.exitCode;
}
