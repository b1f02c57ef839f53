/**
 * A standalone master with one replica of its own (never the system Redis), both started for one test
 * and stopped by PID whatever happens; the replica can be stopped (SIGSTOP, link cut) and resumed.
 * SIGCONT runs in the test's teardown before the servers stop.
 */
import type { ExecutionContext } from 'ava';
import { openClient, ownRedis, scopeOf } from './cleanup.js';
import type { RedisServer } from './redis.js';
import type { RedisClient } from './redis-client.js';
import { within, until } from './bounded.js';

export async function info(client: RedisClient, section: string): Promise<string> {
  return String(await client.sendCommand(['INFO', section]));
}

export function field(text: string, name: string): string | undefined {
  return new RegExp(`^${name}:(\\S*)`, 'm').exec(text)?.[1];
}

/** How many WAIT commands the server has run (INFO commandstats). */
export async function waitCalls(client: RedisClient): Promise<number> {
  return Number(/^cmdstat_wait:calls=(\d+)/m.exec(await info(client, 'commandstats'))?.[1] ?? 0);
}

export interface Pair {
  master: RedisServer;
  replica: RedisServer;
  /** A client on the master, for FairLocks and for reads. */
  client: RedisClient;
  /** A client on the replica, for reads. */
  replicaClient: RedisClient;
  /** SIGSTOP the replica and cut its link; SIGCONT comes in the teardown (or from `resume`). */
  cut(): Promise<void>;
  /** SIGCONT the replica and wait until its link is up again. */
  resume(): Promise<void>;
  /** Waits until the replica has every write the master made so far. */
  synced(): Promise<void>;
  /** Another client on the master (a FairLocks of its own: WAIT holds its connection's later commands). */
  another(): Promise<RedisClient>;
}

/** A master and one replica of it, the link up; both stopped by PID when the test ends. */
export async function replicated(t: ExecutionContext): Promise<Pair> {
  // Diskless full sync at once: the default waits 5 s for more replicas to come.
  const master = await within(ownRedis(t, { args: ['--repl-diskless-sync-delay', '0'] }), 15_000, 'starting the master');
  const replica = await within(ownRedis(t, { args: ['--replicaof', '127.0.0.1', String(master.port)] }), 15_000, 'starting the replica');
  const client = await openClient(t, master.url);
  const replicaClient = await openClient(t, replica.url);
  const linkUp = async () => {
    await until(async () => field(await info(replicaClient, 'replication'), 'master_link_status') === 'up', 10_000, 'the replica link up');
    await until(async () => field(await info(client, 'replication'), 'connected_slaves') === '1', 10_000, 'the master sees its replica');
  };
  await linkUp();
  let stopped = false;
  const cont = () => {
    if (!stopped) return;
    stopped = false;
    if (replica.pid !== undefined) process.kill(replica.pid, 'SIGCONT');
  };
  scopeOf(t).add(cont); // runs before the servers' stop (last in, first out)
  const synced = () =>
    until(
      async () => {
        const m = Number(field(await info(client, 'replication'), 'master_repl_offset') ?? -1);
        const r = Number(field(await info(replicaClient, 'replication'), 'slave_repl_offset') ?? -2);
        return r >= m;
      },
      5_000,
      'the replica caught up',
    );
  return {
    master,
    replica,
    client,
    replicaClient,
    async cut() {
      await synced();
      process.kill(replica.pid!, 'SIGSTOP');
      stopped = true;
      const killed = Number(await client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'replica']));
      if (killed !== 1) throw new Error(`CLIENT KILL TYPE replica killed ${killed} connections, expected 1`);
      await until(async () => field(await info(client, 'replication'), 'connected_slaves') === '0', 5_000, 'the master lost its replica');
    },
    async resume() {
      cont();
      await linkUp();
    },
    synced,
    another: () => openClient(t, master.url),
  };
}

