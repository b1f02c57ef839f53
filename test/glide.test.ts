/**
 * Valkey GLIDE behind the client seam, beyond test/clients.test.ts: a hand-off's wake-up arrives over
 * GLIDE's own subscriber (made from the client's config) on one Redis and on a cluster (sharded),
 * durable grants run WAIT through GLIDE, and clients fairlock cannot use are refused at once.
 */
import test, { type ExecutionContext } from 'ava';
import { GlideClient, GlideClusterClient, ProtocolVersion, RequestError } from '@valkey/valkey-glide';
import { FairLocks, FairLockError, InvalidArgumentError, NotReplicatedError, type FairLocksOptions } from '../src/index.js';
import { lockKeys, shardWakeChannel } from '../src/protocol/keys.js';
import { redisWording } from '../src/redis/glide.js';
import { within, until } from './helpers/bounded.js';
import { openClient, ownRedis, scopeOf } from './helpers/cleanup.js';
import { clientFamilies, clusterFamilies, clusterUrl, type TestClient } from './helpers/clients.js';
import { adminCommand, startRedisCluster } from './helpers/cluster.js';
import { useRedis } from './helpers/fixture.js';
import { whenQueued } from './helpers/queued.js';
import { newPrefix } from './helpers/redis.js';
import { spreadName } from './cluster/target.js';

const fx = useRedis();

/** Heartbeats a minute apart: a hand-off found by a heartbeat would take that long, by a wake-up milliseconds. */
const SLOW_BEAT = { heartbeatMs: 60_000, livenessMs: 120_000 };
/** Generous (2 shared cores), and still far below one heartbeat. */
const WAKE_BOUND_MS = 10_000;

async function glideClient(t: ExecutionContext, url: string): Promise<TestClient> {
  const c = await clientFamilies(url).find((f) => f.id === 'glide')!.connect();
  scopeOf(t).add(() => c.close());
  return c;
}

function locksOn(t: ExecutionContext, client: unknown, options: FairLocksOptions): FairLocks {
  const locks = new FairLocks(client as GlideClient, options);
  scopeOf(t).add(() => within(locks.close(), 3_000, 'FairLocks.close()').catch(() => undefined));
  return locks;
}

/** One hand-off from `a` to a waiter of `b` on `name`: resolves how long the wake-up took. */
async function handOff(a: FairLocks, b: FairLocks, name: string): Promise<number> {
  const holder = await a.lock(name).acquire();
  const q = whenQueued();
  const waiting = b.lock(name).acquire({ timeoutMs: 60_000, onQueued: q.onQueued });
  await within(q.queued, 10_000, 'the waiter queued');
  const started = performance.now();
  await holder.release();
  const lease = await within(waiting, 30_000, 'the hand-off');
  const took = performance.now() - started;
  if (lease.token <= holder.token) throw new Error('the token did not rise');
  await lease.release();
  return took;
}

test('one Redis: the hand-off between two FairLocks on GLIDE clients is woken over GLIDE\'s subscriber, which got the message', async (t) => {
  const prefix = newPrefix();
  const [ca, cb] = [await glideClient(t, fx.server.url), await glideClient(t, fx.server.url)];
  const a = locksOn(t, ca.client, { prefix, ...SLOW_BEAT });
  const b = locksOn(t, cb.client, { prefix, ...SLOW_BEAT });
  const channel = `${prefix}:wake:${b.sessionId}`;
  // A second subscriber on b's channel counts what was published to it.
  const spy = await openClient(t, fx.server.url);
  const seen: string[] = [];
  const listener = spy.duplicate();
  listener.on('error', () => undefined);
  await listener.connect();
  scopeOf(t).add(() => listener.disconnect().catch(() => undefined));
  await listener.subscribe(channel, (m: string) => seen.push(m));
  const took = await handOff(a, b, 'h');
  t.log(`hand-off in ${took.toFixed(0)} ms (heartbeat every ${SLOW_BEAT.heartbeatMs} ms)`);
  t.true(took < WAKE_BOUND_MS, `woken in ${took.toFixed(0)} ms, not by a heartbeat`);
  t.is(seen.length, 1, 'one wake-up published to the waiter\'s session channel');
  const subscribers = (await spy.sendCommand(['PUBSUB', 'NUMSUB', channel])) as [string, number];
  t.is(Number(subscribers[1]), 2, 'GLIDE\'s subscriber (and the spy) on the channel');
});

test('cluster: hand-offs on names of all three masters are woken over GLIDE\'s sharded subscriber (ssubscribe at run time)', async (t) => {
  const cluster = await within(startRedisCluster(), 30_000, 'starting the cluster');
  scopeOf(t).add(() => cluster.stop());
  const url = clusterUrl(cluster.startupNodes);
  const family = clusterFamilies(url).find((f) => f.id === 'glide')!;
  const [ca, cb] = [await family.connect(), await family.connect()];
  scopeOf(t).add(() => ca.close());
  scopeOf(t).add(() => cb.close());
  const prefix = newPrefix();
  const a = locksOn(t, ca.client, { prefix, ...SLOW_BEAT });
  const b = locksOn(t, cb.client, { prefix, ...SLOW_BEAT });
  const names = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'].map(spreadName);
  const owners = new Set(await Promise.all(names.map((n) => cluster.ownerOf(`x{${n}}`))));
  t.is(owners.size, 3, 'the names land on all three masters');
  for (const name of names) {
    const took = await handOff(a, b, name);
    t.true(took < WAKE_BOUND_MS, `${name}: woken in ${took.toFixed(0)} ms, not by a heartbeat`);
    const owner = await cluster.ownerOf(`x{${name}}`);
    const reply = (await adminCommand(owner, ['PUBSUB', 'SHARDNUMSUB', shardWakeChannel(prefix, name, b.sessionId)])) as unknown[];
    t.is(Number(reply[1]), 1, `${name}: b's shard channel has GLIDE's subscriber on its master`);
  }
});

test('durability through GLIDE: WAIT on its own client confirms a grant, and a missing replica is NotReplicated after timeoutMs (longer than GLIDE\'s requestTimeout)', async (t) => {
  const master = await within(ownRedis(t, { args: ['--repl-diskless-sync-delay', '0'] }), 15_000, 'starting the master');
  const c = await glideClient(t, master.url);
  const prefix = newPrefix();
  const locks = locksOn(t, c.client, { prefix, heartbeatMs: 200, livenessMs: 1_000 });
  // No replica yet: WAIT 1 3000 answers 0 after 3 s, past the client's requestTimeout (2 s).
  const started = performance.now();
  await t.throwsAsync(locks.lock('d').acquire({ durability: { replicas: 1, timeoutMs: 3_000 } }), { instanceOf: NotReplicatedError });
  const waited = performance.now() - started;
  t.true(waited >= 2_900, `WAIT ran to its own timeout (${waited.toFixed(0)} ms)`);
  const replica = await within(ownRedis(t, { args: ['--replicaof', '127.0.0.1', String(master.port)] }), 15_000, 'starting the replica');
  const admin = await openClient(t, master.url);
  await until(async () => /^connected_slaves:1/m.test(String(await admin.sendCommand(['INFO', 'replication']))), 10_000, 'the replica linked');
  t.truthy(replica.pid);
  const lease = await locks.lock('d').acquire({ timeoutMs: 10_000, durability: { replicas: 1, timeoutMs: 5_000 } });
  t.true(lease.token > 0);
  await lease.release();
});

test('a closed GLIDE client, or one without subscribe() at run time (GLIDE before 2.3), is refused at once with a reason', async (t) => {
  const client = await GlideClient.createClient({ addresses: [{ host: '127.0.0.1', port: fx.server.port }] });
  const old = await GlideClient.createClient({ addresses: [{ host: '127.0.0.1', port: fx.server.port }] });
  scopeOf(t).add(() => old.close());
  client.close();
  t.throws(() => new FairLocks(client), { instanceOf: InvalidArgumentError, message: /GlideClient\) was closed/ });
  Object.defineProperty(old, 'subscribe', { value: undefined }); // what GLIDE 2.2 and earlier look like
  t.throws(() => new FairLocks(old), { instanceOf: InvalidArgumentError, message: /cannot subscribe at run time .*2\.3/ });
  // Not a GlideClusterClient by accident: the cluster class has its routed script call.
  t.is(typeof (GlideClusterClient.prototype as unknown as Record<string, unknown>).invokeScriptWithRoute, 'function');
  t.is(typeof (GlideClient.prototype as unknown as Record<string, unknown>).invokeScriptWithRoute, 'undefined');
});

test('a RESP2 GLIDE client works: the subscriber fairlock makes from its config speaks RESP3', async (t) => {
  const prefix = newPrefix();
  const addresses = [{ host: '127.0.0.1', port: fx.server.port }];
  const [ca, cb] = await Promise.all([0, 1].map(() => GlideClient.createClient({ addresses, protocol: ProtocolVersion.RESP2, requestTimeout: 2_000 })));
  scopeOf(t).add(() => ca!.close());
  scopeOf(t).add(() => cb!.close());
  const took = await handOff(locksOn(t, ca, { prefix, ...SLOW_BEAT }), locksOn(t, cb, { prefix, ...SLOW_BEAT }), 'resp2');
  t.true(took < WAKE_BOUND_MS, `woken in ${took.toFixed(0)} ms, not by a heartbeat`);
});

test('errors Redis answers through GLIDE read as with every client: a wrong-type key is BAD_KEY naming it', async (t) => {
  const prefix = newPrefix();
  const c = await glideClient(t, fx.server.url);
  const locks = locksOn(t, c.client, { prefix, heartbeatMs: 200, livenessMs: 1_000 });
  const keys = lockKeys(prefix, 'bad');
  await fx.client.set(keys.state, 'not mine');
  const err = await t.throwsAsync(locks.lock('bad').acquire({ timeoutMs: 3_000 }));
  t.true(err instanceof FairLockError);
  t.is((err as FairLockError).code, 'BAD_KEY', err?.message);
  t.true(err!.message.includes(keys.state), err?.message);
  // GLIDE's wording put back as Redis sent it (the kinds of GLIDE's redis-rs).
  const said = (m: string) => String((redisWording(new RequestError(m)) as Error).message);
  t.is(said('An error was signalled by the server: - NoScriptError: No matching script. Please use EVAL.'), 'NOSCRIPT No matching script. Please use EVAL.');
  t.is(said('An error was signalled by the server: - TryAgain: Multiple keys'), 'TRYAGAIN Multiple keys');
  t.is(said('FAIRLOCK_BADARG: bad thing'), 'FAIRLOCK_BADARG bad thing');
  t.is(said('WRONGTYPE: Operation against a key holding the wrong kind of value'), 'WRONGTYPE Operation against a key holding the wrong kind of value');
  const timeout = new Error('timed out');
  t.is(redisWording(timeout), timeout, 'not an answer from Redis: left alone');
});
