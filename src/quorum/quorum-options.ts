import { InvalidArgumentError } from '../errors.js';
import { checkDuration, checkObject, describe, resolveOptions, type FairLocksOptions, type ResolvedOptions } from '../options.js';

/**
 * Options of `FairLocks.quorum(clients, options)`: those of FairLocks (each master runs the
 * single-node engine with them: prefix, leaseMs, livenessMs, heartbeatMs, driftFactor) but
 * `durability` (the masters are independent: nothing replicates), and three of the chain's own.
 */
export interface QuorumOptions extends Omit<FairLocksOptions, 'durability'> {
  /**
   * How long one command to a master may take before that master counts as unreachable: an enqueue
   * not answered, a probe (PING) not answered while a wait or a lease is on it. An unreachable
   * master is skipped (DESIGN §8, rule 3) until a probe answers again. @default 1000
   */
  commandTimeoutMs?: number;
  /**
   * How many times an acquire may give back what it holds and start again at master 0 (rule 7:
   * what it holds plus the masters left fell below a majority) before it fails with
   * QuorumLostError. Each restart after the first waits one heartbeatMs. @default 3
   */
  maxRestarts?: number;
  /**
   * The restart guard of DESIGN §8 rule 9: a master that lost its data (a restart without
   * persistence) grants nothing on a quorum name for one leaseMs (an acquire's own longer lease:
   * that long) after the first quorum acquire that finds it so, enforced by the master's own
   * scripts (a `<prefix>:born` key, set on first use). A fresh server waits one guard as well: it
   * cannot be told from a restarted one. Turn it off (`false`) only when every master runs with AOF
   * `appendfsync always` (a restart then keeps every acknowledged write); without either, a master
   * restarted empty can grant a second holder while the first still holds. @default true
   */
  restartGuard?: boolean;
}

/** The quorum's defaults beyond FairLocks' DEFAULTS. */
export const QUORUM_DEFAULTS: Readonly<Required<Pick<QuorumOptions, 'commandTimeoutMs' | 'maxRestarts' | 'restartGuard'>>> = Object.freeze({ commandTimeoutMs: 1_000, maxRestarts: 3, restartGuard: true });

/** The most restarts `maxRestarts` may ask for. */
const MAX_RESTARTS = 100;

export interface ResolvedQuorumOptions {
  /** What each master's FairLocks is made with. */
  perMaster: ResolvedOptions;
  commandTimeoutMs: number;
  maxRestarts: number;
  /** The restart guard each acquire asks of a master: the quorum's leaseMs, or 0 (restartGuard false). */
  guardMs: number;
}

export function resolveQuorumOptions(options: QuorumOptions | undefined): ResolvedQuorumOptions {
  const { commandTimeoutMs, maxRestarts, restartGuard, ...rest } = checkObject(options, 'options') ?? {};
  if ((rest as FairLocksOptions).durability !== undefined) {
    throw new InvalidArgumentError('options.durability does not apply to a quorum: its masters are independent, a majority of them is what keeps a grant');
  }
  const perMaster = resolveOptions(rest);
  const timeout = commandTimeoutMs === undefined ? QUORUM_DEFAULTS.commandTimeoutMs : checkDuration(commandTimeoutMs, 'options.commandTimeoutMs');
  if (maxRestarts !== undefined && (typeof maxRestarts !== 'number' || !Number.isInteger(maxRestarts) || maxRestarts < 0 || maxRestarts > MAX_RESTARTS)) {
    throw new InvalidArgumentError(`options.maxRestarts must be an integer from 0 to ${MAX_RESTARTS}, got ${describe(maxRestarts)}`);
  }
  if (restartGuard !== undefined && typeof restartGuard !== 'boolean') throw new InvalidArgumentError(`options.restartGuard must be a boolean, got ${describe(restartGuard)}`);
  const guard = restartGuard ?? QUORUM_DEFAULTS.restartGuard;
  return { perMaster, commandTimeoutMs: timeout, maxRestarts: maxRestarts ?? QUORUM_DEFAULTS.maxRestarts, guardMs: guard ? perMaster.leaseMs : 0 };
}

/** A majority of `n` masters. */
export function majorityOf(n: number): number {
  return Math.floor(n / 2) + 1;
}
