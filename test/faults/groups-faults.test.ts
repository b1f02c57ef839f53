/**
 * Fair share between groups (DESIGN §7) under faults, with child processes killed or stopped by PID:
 *  - SIGKILL of a capped group's holder and of two groups' queue heads: the other groups move on
 *    within a liveness period, the capped group gets its turn back when its dead holder's lease runs
 *    out, and no poll of inspect() ever sees more than the permits, or more than perGroup in a group;
 *  - SIGSTOP of a holder at its group's cap: its lease runs out, its group's next waiter is granted
 *    (the stale holder's fenced write is refused), another group is served meanwhile;
 *  - a wake-up lost in group mode (subscribers kept out) is found by the heartbeat;
 *  - Redis restarted empty while groups wait: every waiter re-enters and is granted, tokens rise;
 *  - durability: a durable hand-off in group mode is confirmed on the replica; with the replica cut
 *    it rejects NotReplicatedError, the grant is released and the next group takes its turn;
 *  - a waiter whose session lapsed while its element stayed in its group's list re-enters (the
 *    'again' path) and finds it there: it keeps its place ahead of its group's later waiters.
 * Order comes from fencing tokens (handed out at grant, one counter per name); durations use this
 * process's clock at both ends (children.ts `receivedAt`).
 */
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { NotReplicatedError, type Durability, type FairLocks, type Lease } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { disposeAll, spawnChild, type Child } from '../helpers/children.js';
import { newLocks, openClient, openSlowReconnectClient, ownRedis, scopeOf } from '../helpers/cleanup.js';
import { fencedLog } from '../helpers/fenced.js';
import { useRedis } from '../helpers/fixture.js';
import { within } from '../helpers/bounded.js';
import { startProxy, until } from '../helpers/proxy.js';
import { whenQueued } from '../helpers/queued.js';
import { newPrefix } from '../helpers/redis.js';
import { replicated } from '../helpers/replicated.js';
import { holdersAt, redisNow, sessionDeadlineAt } from '../helpers/state.js';
import type { Req } from '../properties/subjects.js';

// lease > liveness, so that "the dead holder's lease" and "a dead waiter's liveness" are told apart.
const OPTS = { leaseMs: 3000, livenessMs: 600, heartbeatMs: 150 };
const SLACK = 1500;
const fx = useRedis();
test.after.always(() => disposeAll());

const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tokenOf = (e: { ev: string; token?: number }) => (e.ev === 'granted' ? e.token! : NaN);

/**
 * Polls inspect() every 25 ms until stopped and records every poll that saw more permits held than
 * `permits`, or more than `perGroup` in one group.
 */
function watchLimits(locks: FairLocks, name: string, permits: number, perGroup: number) {
  let stopped = false;
  const bad: string[] = [];
  let polls = 0;
  const loop = (async () => {
    for (let i = 0; i < 4000 && !stopped; i++) {
      const info = await locks.inspect(name);
      polls++;
      const byGroup = new Map<string, number>();
      for (const h of info.holders) byGroup.set(h.group ?? '', (byGroup.get(h.group ?? '') ?? 0) + h.weight);
      const used = [...byGroup.values()].reduce((a, b) => a + b, 0);
      if (used > permits || [...byGroup.values()].some((w) => w > perGroup)) bad.push(JSON.stringify(info.holders.map((h) => [h.group, h.token])));
      await sleep(25);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return { polls, bad };
  };
}

/** Sends an acquire to `child` and waits until it is queued (or granted at once). */
async function ask(child: Child, req: string, name: string, request: Req, group: string, extra: { leaseMs?: number } = {}): Promise<void> {
  child.send({ op: 'acquire', req, name, request, group, timeoutMs: 30_000, ...extra });
  await child.waitFor((e) => e.req === req && (e.ev === 'queued' || e.ev === 'granted' || e.ev === 'error'), 15_000, `queued ${req}`);
}

/** The waiter releases as soon as it is granted; resolves with its grant event. */
async function grantedAndReleased(child: Child, req: string, timeoutMs = 15_000) {
  const e = await child.expect(req, 'granted', timeoutMs);
  child.send({ op: 'release', req });
  await child.expect(req, 'released');
  return e;
}

test.serial('SIGKILL of a capped group\'s holder and of two groups\' queue heads: the others move on within a liveness, the capped group\'s turn comes back when the dead lease runs out, limits hold', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  // The survivors wait in this process (their grants are stamped here); the killed are children.
  const survivors = newLocks(t, client, { prefix, ...OPTS });
  const sem = survivors.semaphore('S', { permits: 2, perGroup: 1 });
  const request: Req = { kind: 'semaphore', permits: 2, weight: 1, perGroup: 1 };
  const [ha, b1, c1] = await Promise.all(Array.from({ length: 3 }, () => spawnChild(t, fx.server.url, prefix, OPTS)));
  await ask(ha!, 'ha', 'S', request, 'a');
  await ha!.expect('ha', 'granted');
  const hb = await sem.acquire({ group: 'b' });
  const stop = watchLimits(locks, 'S', 2, 1);
  const grantedAt = new Map<string, number>();
  const wait = async (group: string): Promise<{ lease: Promise<Lease> }> => {
    const q = whenQueued();
    const lease = sem.acquire({ group, timeoutMs: 30_000, onQueued: q.onQueued }).then(async (l) => {
      grantedAt.set(group, now());
      await l.release();
      return l;
    });
    await within(q.queued, 5_000, `${group} queued`);
    return { lease };
  };
  const a1 = (await wait('a')).lease;
  await ask(b1!, 'b1', 'S', request, 'b');
  const b2 = (await wait('b')).lease;
  await ask(c1!, 'c1', 'S', request, 'c');
  const c2 = (await wait('c')).lease;
  const info = await locks.inspect('S');
  // In activation order; none passed over yet (no permit has been free since they queued).
  t.deepEqual(info.groups.map((g) => [g.group, g.held, g.waiting]), [['a', 1, 1], ['b', 1, 2], ['c', 0, 2]]);

  const killedAt = now();
  await Promise.all([ha!.stop(), b1!.stop(), c1!.stop()]);
  await hb.release(); // b's cap frees: its dead head looks alive until its session's deadline
  const [la1, lb2, lc2] = await within(Promise.all([a1, b2, c2]), 15_000, 'the survivors');
  const { polls, bad } = await stop();
  const first = Math.min(grantedAt.get('b')!, grantedAt.get('c')!) - killedAt;
  const capped = grantedAt.get('a')! - killedAt;
  t.log(`first of b and c granted ${first.toFixed(0)} ms after the kills; a (its holder dead) ${capped.toFixed(0)} ms after; ${polls} polls of inspect()`);
  t.deepEqual(bad, [], 'never more than 2 permits, never more than 1 in a group');
  t.true(polls > 10);
  t.true(first <= OPTS.livenessMs + OPTS.heartbeatMs + SLACK, 'groups b and c are not stalled by the dead holder of a nor by their dead heads');
  t.true(capped <= OPTS.leaseMs + OPTS.heartbeatMs + SLACK, 'a gets its turn back once its dead holder\'s lease ran out');
  t.true(la1.token > lb2.token && la1.token > lc2.token, 'a, capped by its dead holder, came last');
  t.false(b1!.events.some((e) => e.ev === 'granted') || c1!.events.some((e) => e.ev === 'granted'));
  t.deepEqual((await client.keys(`${prefix}:*`)).sort(), [`${prefix}:{S}:state`], 'no group key left behind');
});

test.serial('SIGSTOP of a holder at its group\'s cap: its lease runs out, its group\'s next waiter is granted and the stale write refused; another group is served meanwhile', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const sem = locks.semaphore('P', { permits: 2, perGroup: 1 });
  const request: Req = { kind: 'semaphore', permits: 2, weight: 1, perGroup: 1 };
  const [ha, a1] = await Promise.all([spawnChild(t, fx.server.url, prefix, OPTS), spawnChild(t, fx.server.url, prefix, OPTS)]);
  await ask(ha!, 'ha', 'P', request, 'a', { leaseMs: 1000 });
  await ha!.expect('ha', 'granted');
  const stop = watchLimits(locks, 'P', 2, 1);
  ha!.signal('SIGSTOP');
  const stoppedAt = now();
  await ask(a1!, 'a1', 'P', request, 'a'); // parked at a's cap
  // Group b is served while a is capped by a stopped holder: twice, one after the other.
  for (let i = 0; i < 2; i++) {
    const b = await within(sem.acquire({ group: 'b', timeoutMs: 5_000 }), 10_000, `b's grant ${i}`);
    t.false(a1!.events.some((e) => e.ev === 'granted'), 'a is still capped');
    await b.release();
  }
  const g = await a1!.expect('a1', 'granted', 10_000);
  const late = g.receivedAt - stoppedAt;
  t.log(`a's next waiter granted ${late.toFixed(0)} ms after its holder was stopped (lease 1000 ms)`);
  t.true(late <= 1000 + OPTS.heartbeatMs + SLACK);
  a1!.send({ op: 'write', req: 'a1', key: `${prefix}:store`, value: 'a1' });
  t.true((await a1!.expect('a1', 'wrote')).ev === 'wrote');
  ha!.signal('SIGCONT');
  ha!.send({ op: 'write', req: 'ha', key: `${prefix}:store`, value: 'ha' });
  const w = await ha!.expect('ha', 'wrote');
  t.true(w.ev === 'wrote' && w.aborted && !w.accepted, 'the stale holder knows it lost the lease, and its write is refused');
  t.deepEqual((await fencedLog(client, `${prefix}:store`)).map((e) => e.value), ['a1']);
  ha!.send({ op: 'release', req: 'ha' });
  const rel = await ha!.waitFor((e) => e.req === 'ha' && (e.ev === 'error' || e.ev === 'released'));
  t.true(rel.ev === 'error' && rel.code === 'LOCK_LOST');
  a1!.send({ op: 'release', req: 'a1' });
  await a1!.expect('a1', 'released');
  const { polls, bad } = await stop();
  t.deepEqual(bad, [], `limits held over ${polls} polls`);
});

test.serial('a wake-up lost in group mode (the subscribers kept out) is found by the next heartbeat; the turns go on', async (t) => {
  const server = await ownRedis(t, { owned: true }); // CONFIG SET maxclients
  const prefix = newPrefix();
  const opts = { leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 };
  const admin = await openClient(t, server.url);
  const holderClient = await openClient(t, server.url);
  // The waiters' subscribers (duplicates of this client) retry a failed reconnect only every 2 s.
  const waiterClient = await openSlowReconnectClient(t, server.url);
  const holders = newLocks(t, holderClient, { prefix, ...opts });
  const waiters = newLocks(t, waiterClient, { prefix, ...opts });
  const lease = await holders.lock('W').acquire({ group: 'x' });
  const qy = whenQueued();
  const y = waiters.lock('W').acquire({ group: 'y', timeoutMs: 10_000, onQueued: qy.onQueued });
  await within(qy.queued, 5_000, 'y queued');
  const qx = whenQueued();
  const x = waiters.lock('W').acquire({ group: 'x', timeoutMs: 10_000, onQueued: qx.onQueued });
  await within(qx.queued, 5_000, 'x queued');
  t.deepEqual((await holders.inspect('W')).groups.map((g) => [g.group, g.waiting]), [['y', 1], ['x', 1]]);

  const connected = Number(/connected_clients:(\d+)/.exec(String(await admin.sendCommand(['INFO', 'clients'])))![1]);
  const subscribers = String(await admin.sendCommand(['CLIENT', 'LIST', 'TYPE', 'pubsub'])).trim().split('\n').length;
  await admin.sendCommand(['CONFIG', 'SET', 'maxclients', String(connected - subscribers)]);
  scopeOf(t).add(() => admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']));
  t.true(Number(await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])) >= 2);
  await sleep(50);
  t.is(String(await admin.sendCommand(['CLIENT', 'LIST', 'TYPE', 'pubsub'])).trim(), '', 'nobody listens: wake-ups are lost');
  const releasedAt = now();
  await lease.release();
  const ly = await within(y, 5_000, "y's grant");
  const late = now() - releasedAt;
  t.log(`y granted ${late.toFixed(0)} ms after its wake-up was lost`);
  t.true(late <= 2 * opts.heartbeatMs + SLACK, 'found by the heartbeat');
  await ly.release();
  const lx = await within(x, 5_000, "x's grant");
  t.true(lx.token > ly.token, 'then x, its wake-up lost too');
  await lx.release();
  await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
  t.deepEqual((await admin.keys(`${prefix}:*`)).filter((k) => !k.includes(':wake')).sort(), [`${prefix}:{W}:state`]);
});

test.serial('Redis restarted empty while groups wait: every waiter re-enters and is granted once, tokens above the lost holder\'s', async (t) => {
  const server = await ownRedis(t, { owned: true });
  const prefix = newPrefix();
  const opts = { leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 };
  const [holder, ...waiters] = await Promise.all(Array.from({ length: 4 }, () => spawnChild(t, server.url, prefix, opts)));
  const groups = ['a', 'b', 'c'];
  holder!.send({ op: 'acquire', req: 'h', name: 'R', group: 'a' });
  const hTok = tokenOf(await holder!.expect('h', 'granted'));
  for (const [i, w] of waiters.entries()) {
    w.send({ op: 'acquire', req: `w${i}`, name: 'R', group: groups[i], timeoutMs: 20_000 });
    await w.expect(`w${i}`, 'queued');
  }
  await server.kill();
  await sleep(300);
  await server.restart();
  await holder!.expect('h', 'lost', 5_000);
  const tokens = await Promise.all(waiters.map(async (w, i) => tokenOf(await grantedAndReleased(w, `w${i}`, 10_000))));
  t.true(tokens.every((x) => x > hTok), 'tokens after the data loss are above the lost holder\'s');
  t.is(new Set(tokens).size, tokens.length);
  const admin = await openClient(t, server.url);
  t.deepEqual((await admin.keys(`${prefix}:*`)).filter((k) => !k.includes(':wake')).sort(), [`${prefix}:{R}:state`], 'no group key left');
});

test.serial('durability in group mode: a hand-off is confirmed on the replica; with the replica cut it rejects NotReplicatedError and the next group takes its turn', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const opts = { heartbeatMs: 100, livenessMs: 1_000, leaseMs: 5_000 };
  const DURABLE: Durability = { replicas: 1, timeoutMs: 5_000 };
  const SHORT: Durability = { replicas: 1, timeoutMs: 200 };
  const a = newLocks(t, pair.client, { prefix, ...opts });
  const b = newLocks(t, await pair.another(), { prefix, ...opts });
  const c = newLocks(t, await pair.another(), { prefix, ...opts });
  // Wrapped: an async function's returned promise would be awaited.
  const queue = async (locks: FairLocks, group: string, durability?: Durability): Promise<{ lease: Promise<Lease> }> => {
    const q = whenQueued();
    const lease = locks.lock('n').acquire({ group, durability, onQueued: q.onQueued, timeoutMs: 10_000 });
    lease.catch(() => undefined);
    await within(Promise.race([q.queued, lease]), 5_000, `${group} queued`);
    return { lease };
  };
  const holder = await within(a.lock('n').acquire({ group: 'x' }), 5_000, 'the holder');
  const py = (await queue(b, 'y', DURABLE)).lease;
  const px = (await queue(a, 'x')).lease;
  await within(holder.release(), 5_000, 'the release');
  const ly = await within(py, 5_000, 'the durable hand-off to y');
  t.is(ly.group, 'y');
  const onReplica = (await holdersAt(pair.replicaClient, lockKeys(prefix, 'n').state)).find((h) => h.id === ly.id);
  t.deepEqual(onReplica && [onReplica.token, onReplica.confirmed, onReplica.group], [ly.token, true, 'y'], 'the replica has the confirmed grant, in its group');
  // z's durable waiter comes after x in the rotation: x's turn, then z's, whose grant cannot be confirmed.
  const pz = (await queue(c, 'z', SHORT)).lease;
  await within(ly.release(), 5_000, "y's release");
  const lx = await within(px, 5_000, "x's turn");
  await pair.cut();
  const pw = (await queue(a, 'w')).lease;
  await within(lx.release(), 5_000, "x's release");
  const err = await t.throwsAsync(within(pz, 5_000, "z's durable hand-off"), { instanceOf: NotReplicatedError });
  t.is(err?.acked, 0);
  const lw = await within(pw, 5_000, "w's turn after z's grant was given up");
  t.true(lw.token > lx.token && lx.token > ly.token);
  await within(lw.release(), 5_000, "w's release");
  const info = await a.inspect('n');
  t.deepEqual([info.holders, info.queue, info.groups], [[], [], []]);
  t.deepEqual((await pair.client.keys(`${prefix}:*`)).filter((k) => !k.includes(':wake')).sort(), [`${prefix}:{n}:state`]);
});

test.serial("a waiter whose session lapsed while its element stayed in its group's list re-enters ('again') and keeps its place ahead of its group's later waiters", async (t) => {
  const prefix = newPrefix();
  const proxy = await startProxy(fx.server.port);
  scopeOf(t).add(() => proxy.stop());
  const viaProxy = await openClient(t, proxy.url);
  const h = newLocks(t, fx.client, { prefix, ...OPTS });
  const other = newLocks(t, fx.client, { prefix, ...OPTS });
  const x = newLocks(t, viaProxy, { prefix, livenessMs: 1_000, heartbeatMs: 300, leaseMs: 3_000 });
  const lh = await h.lock('L').acquire({ group: 'h' });
  const queue = async (locks: FairLocks, group: string): Promise<{ lease: Promise<Lease> }> => {
    const q = whenQueued();
    const lease = locks.lock('L').acquire({ group, onQueued: q.onQueued, timeoutMs: 15_000 });
    lease.catch(() => undefined);
    await within(q.queued, 5_000, `${group} queued`);
    return { lease };
  };
  const px = (await queue(x, 'y')).lease; // head of y
  const py2 = (await queue(other, 'y')).lease; // behind it
  const pz = (await queue(other, 'z')).lease;
  await sleep(400);
  proxy.hold(); // x's heartbeats stop reaching Redis
  const state = lockKeys(prefix, 'L').state;
  await until(async () => ((await sessionDeadlineAt(fx.client, state, x.sessionId)) ?? 0) < (await redisNow(fx.client)), 5_000, 50);
  t.true(((await sessionDeadlineAt(fx.client, state, x.sessionId)) ?? 0) < (await redisNow(fx.client)), "x's session lapsed in Redis");
  const yList = `${lockKeys(prefix, 'L').queue}:${Buffer.from('y').toString('hex')}`;
  const elements = async () => (await fx.client.lRange(yList, 0, -1)).map((e) => e.split(':')[0]);
  t.deepEqual(await elements(), [x.sessionId, other.sessionId], "x's element is still first in y's list");
  proxy.heal(); // its next beat learns of the lapse and runs the acquire again
  await sleep(3 * 300);
  t.deepEqual(await elements(), [x.sessionId, other.sessionId], 'found in its place, not added again');
  const queued = (await h.inspect('L')).queue;
  t.deepEqual(queued.map((w) => [w.id.split(':')[0], w.group, w.position]), [[x.sessionId, 'y', 1], [other.sessionId, 'y', 2], [other.sessionId, 'z', 1]], 'and live again');
  await lh.release();
  const lx = await within(px, 5_000, "x's grant");
  await lx.release();
  const lz = await within(pz, 5_000, "z's turn");
  await lz.release();
  const ly2 = await within(py2, 5_000, "y's second");
  t.true(lx.token < lz.token && lz.token < ly2.token, 'x first (its place in y, y first in the rotation), then z, then y again');
  await ly2.release();
});
