/**
 * The engine's release, driven directly (the header of src/protocol/lua/engine.lua is the spec): a
 * holder gives its grant up (released), a repeat answers already (the last 8 releasers are kept in
 * the state's `r` field), anyone else is not a holder; the waiters that now fit are granted (their
 * token taken at that moment, above every earlier one) and woken by one PUBLISH each on their
 * session's channel (on a cluster, SPUBLISH on the name's shard channel of that session); dead
 * waiters at the head are skipped; a repeated release frees nothing twice.
 */
import test, { type ExecutionContext } from 'ava';
import { shardWakeChannel, wakeChannel, waiterId } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt } from '../helpers/state.js';
import { sleep, LIVENESS, clusterLikeScripts, expectKind, kit, numbersOut } from './kit.js';
import { testUnless, withoutShardedPubSub } from '../helpers/server-version.js';

/** The tests of sharded pub/sub, which a server before Redis 7.0 lacks: skipped there, with the reason. */
const shardedTest = testUnless(withoutShardedPubSub());

const fx = useRedis();
const { setup, heldIds, queued, deadline, shapeOf } = kit(fx);

/** A subscriber (a duplicate of the fixture's client) on `channels`, closed when the test ends. */
async function subscribe(t: ExecutionContext, channels: string[]) {
  const sub = fx.client.duplicate();
  sub.on('error', () => undefined);
  t.teardown(() => (sub.isOpen ? sub.disconnect().catch(() => undefined) : undefined));
  await sub.connect();
  const messages: { channel: string; message: string }[] = [];
  await sub.subscribe(channels, (message, channel) => {
    messages.push({ channel, message });
  });
  return {
    messages,
    /** Resolves once `n` messages came, or after 5 s (the test then sees fewer). */
    async received(n: number) {
      for (let i = 0; i < 250 && messages.length < n; i++) await sleep(20);
      return messages;
    },
  };
}

test('released, then already on a repeat; not-holder for an id that never held (or only waits)', async (t) => {
  const { s, keys } = setup();
  const idA = waiterId('a', 1, 5_000, true, 1, 'x');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is((await s.release(keys, waiterId('z', 1, 5_000, true, 1, 'x'))).kind, 'not-holder');
  const r = await s.release(keys, idA);
  t.is(r.kind, 'released');
  t.true(r.now > 0);
  t.deepEqual(await heldIds(keys.state), [], 'the holder entry is gone');
  t.is(await fx.client.hGet(keys.state, 'h'), '');
  t.is(await fx.client.hGet(keys.state, 'r'), idA, 'remembered as a releaser');
  t.is((await s.release(keys, idA)).kind, 'already');
  t.is((await s.release(keys, idA)).kind, 'already', 'and again');

  // A waiter is not a holder: its release answers not-holder and it stays queued.
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.is((await s.release(keys, idC)).kind, 'not-holder');
  t.deepEqual(await queued(keys.queue), [idC]);
  t.deepEqual(await heldIds(keys.state), [idB]);
});

test('the last 8 releasers answer already after other hand-offs; the 9th back answers not-holder', async (t) => {
  const { s, keys } = setup();
  const ids = Array.from({ length: 10 }, (_, i) => waiterId(`w${i}`, 1, 5_000, true, 1, 'x'));
  expectKind(await s.acquire(keys, ids[0]!, LIVENESS, 'wait', 'lock', 1), 'granted');
  for (const id of ids.slice(1)) expectKind(await s.acquire(keys, id, LIVENESS, 'wait', 'lock', 1), 'queued');
  // ids[0..8] each release in turn, each handing off to the next
  for (const [i, id] of ids.slice(0, 9).entries()) {
    t.is((await s.release(keys, id)).kind, 'released', `hand-off ${i}`);
    t.deepEqual(await heldIds(keys.state), [ids[i + 1]!]);
  }
  t.is(await fx.client.hGet(keys.state, 'r'), ids.slice(1, 9).reverse().join(' '), 'the 8 newest releasers, newest first');
  t.is((await s.release(keys, ids[0]!)).kind, 'not-holder', '9 hand-offs back: forgotten');
  for (let back = 1; back <= 8; back++) {
    t.is((await s.release(keys, ids[9 - back]!)).kind, 'already', `${back} back`);
  }
  t.deepEqual(await heldIds(keys.state), [ids[9]!], 'none of the repeats touched the holder');
  t.is(await fx.client.hGet(keys.state, 'r'), ids.slice(1, 9).reverse().join(' '), 'repeats do not reorder the list');
});

test('a hand-off grants the next waiter and wakes it: PUBLISH "id token exp" on <prefix>:wake:<session>', async (t) => {
  const { prefix, s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 3_000, true, 1, 'x');
  const idV = waiterId('v', 1, 3_000, true, 1, 'x');
  t.is(wakeChannel(prefix, 'w'), `${prefix}:wake:w`);
  const sub = await subscribe(t, [`${prefix}:wake:w`, `${prefix}:wake:v`, `${prefix}:wake:h`]);
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const h = expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, idV, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, idH);
  t.is(rel.kind, 'released');
  const [granted] = await holdersAt(fx.client, keys.state);
  t.true(granted!.token > h.token && granted!.token >= rel.now * 1_000, 'the token is taken at the grant');
  const messages = await sub.received(1);
  t.deepEqual(messages, [{ channel: `${prefix}:wake:w`, message: `${idW} ${granted!.token} ${rel.now + 3_000}` }], 'min(session deadline, now + lease)');
  const sessionDeadline = await deadline(keys.state, 'w');
  t.is(sessionDeadline, w.now + LIVENESS);
  t.is(await fx.client.hGet(keys.state, 'h'), `${idW} ${granted!.token} ${sessionDeadline} 3000 ${rel.now} 0`, 'unconfirmed, until the session deadline');
  t.is(await fx.client.hGet(keys.state, 't'), String(granted!.token));
  t.deepEqual(await queued(keys.queue), [idV]);
});

test('the wake-up names the session deadline when it comes before now + lease', async (t) => {
  const { prefix, s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 60_000, true, 1, 'x');
  const sub = await subscribe(t, [`${prefix}:wake:w`]);
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  await s.release(keys, idH);
  const token = (await holdersAt(fx.client, keys.state))[0]?.token;
  const messages = await sub.received(1);
  t.deepEqual(messages, [{ channel: `${prefix}:wake:w`, message: `${idW} ${token} ${w.now + LIVENESS}` }]);
});

test('a dead waiter at the head (its session deadline passed) is dropped, the next live one granted', async (t) => {
  const { prefix, s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idD = waiterId('d', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 5_000, true, 1, 'x');
  const sub = await subscribe(t, [`${prefix}:wake:d`, `${prefix}:wake:w`]);
  const h = expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, idD, 100, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  await sleep(300); // d's 100 ms liveness runs out
  t.is((await s.release(keys, idH)).kind, 'released');
  t.deepEqual(await heldIds(keys.state), [idW]);
  t.true((await holdersAt(fx.client, keys.state))[0]!.token > h.token);
  t.is(await fx.client.exists(keys.queue), 0, 'the dead waiter left the queue');
  // Messages of one subscriber connection arrive in publish order: d's would have come first.
  const messages = await sub.received(1);
  t.deepEqual(
    messages.map((m) => m.channel),
    [`${prefix}:wake:w`],
    'only the live waiter is woken',
  );
});

test('a repeated release frees nothing twice: on a semaphore the next waiter is not granted by the repeat', async (t) => {
  const { s, keys } = setup();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((sid) => waiterId(sid, 1, 5_000, true, 1, 'x')) as [string, string, string, string];
  expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'semaphore', 2), 'granted');
  expectKind(await s.acquire(keys, b, LIVENESS, 'wait', 'semaphore', 2), 'granted');
  expectKind(await s.acquire(keys, c, LIVENESS, 'wait', 'semaphore', 2), 'queued');
  expectKind(await s.acquire(keys, d, LIVENESS, 'wait', 'semaphore', 2), 'queued');
  t.is((await s.release(keys, a)).kind, 'released');
  t.deepEqual(await heldIds(keys.state), [b, c]);
  t.is((await s.release(keys, a)).kind, 'already');
  t.is((await s.release(keys, a)).kind, 'already');
  t.deepEqual(await heldIds(keys.state), [b, c], 'still 2 permits used');
  t.deepEqual(await queued(keys.queue), [d], 'd still waits');
});

test('a holder whose lease ran out is dropped by the next release, which grants on; its own release then answers not-holder', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 100, false, 1, 'x');
  const idW = waiterId('w', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  await sleep(300);
  t.is((await s.release(keys, waiterId('z', 1, 5_000, true, 1, 'x'))).kind, 'not-holder');
  t.deepEqual(await heldIds(keys.state), [idW], 'the expired entry is deleted and the waiter granted');
  t.is((await s.release(keys, idH)).kind, 'not-holder', 'a lease that ran out was not given up by its holder');
});

shardedTest('on a cluster (wake = "S...") a hand-off wakes the waiter with SPUBLISH "id token exp" on <prefix>:{name}:wake:<session>, nothing on the plain channel', async (t) => {
  const { prefix, keys } = setup();
  const s = clusterLikeScripts(fx, prefix);
  const shardChannel = shardWakeChannel(prefix, 'n', 'w');
  t.is(shardChannel, `${prefix}:{n}:wake:w`);
  const plainChannel = wakeChannel(prefix, 'w');

  const shard = fx.client.duplicate();
  shard.on('error', () => undefined);
  t.teardown(() => (shard.isOpen ? shard.disconnect().catch(() => undefined) : undefined));
  await shard.connect();
  const sharded: { channel: string; message: string }[] = [];
  await shard.sSubscribe([shardChannel, shardWakeChannel(prefix, 'n', 'v')], (message, channel) => {
    sharded.push({ channel, message });
  });
  const plain = await subscribe(t, [plainChannel, wakeChannel(prefix, 'v')]);

  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 3_000, true, 1, 'x');
  const idV = waiterId('v', 1, 3_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, idV, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, idH);
  t.is(rel.kind, 'released');
  t.is(s.engine, 'script', 'a cluster runs the engine with EVALSHA');
  const token = (await holdersAt(fx.client, keys.state))[0]?.token;
  for (let i = 0; i < 250 && sharded.length < 1; i++) await sleep(20);
  t.deepEqual(sharded, [{ channel: shardChannel, message: `${idW} ${token} ${rel.now + 3_000}` }], 'one SPUBLISH, to the granted session only');
  t.deepEqual(await heldIds(keys.state), [idW]);
  t.deepEqual(await queued(keys.queue), [idV]);

  // A marker published after the release comes after anything the release published on the plain channel.
  await fx.client.publish(plainChannel, 'marker');
  t.deepEqual(await plain.received(1), [{ channel: plainChannel, message: 'marker' }], 'no PUBLISH on the plain channel');

  // The plain Scripts (a prefix as `wake`) on the same keys: PUBLISH, nothing sharded.
  const standalone = new Scripts(adaptClient(fx.client), prefix);
  t.is((await standalone.release(keys, idW)).kind, 'released');
  const both = await plain.received(2);
  t.is(both.length, 2);
  t.is(both[1]?.channel, wakeChannel(prefix, 'v'));
  t.regex(both[1]?.message ?? '', new RegExp(`^${idV} \\d+ \\d+$`));
  await shard.sSubscribe(shardChannel, () => undefined); // a round trip on the shard connection: anything sent before it has arrived
  t.is(sharded.length, 1, 'nothing sharded from the plain Scripts');
});

// The engine's fast path for the common release (the only holder, nobody queued, plain mode) must
// write what the general path writes. A dead waiter's element in the queue sends the release down the
// general path, which drops it and ends with the same state; the two are compared, numbers aside.
test('the release of the only holder writes what the general path writes', async (t) => {
  const runs: Record<string, string>[] = [];
  for (const general of [false, true]) {
    const { s, keys } = setup();
    const ids = [1, 2, 3].map((n) => waiterId('h', n, 5_000, true, 1, 'x'));
    for (const id of ids.slice(0, 2)) {
      expectKind(await s.acquire(keys, id, LIVENESS, 'wait', 'lock', 1), 'granted');
      t.is((await s.release(keys, id)).kind, 'released');
    }
    expectKind(await s.acquire(keys, ids[2]!, LIVENESS, 'wait', 'lock', 1), 'granted');
    if (general) await fx.client.rPush(keys.queue, `${waiterId('dead', 1, 5_000, true, 1, 'x')} 1`); // its session has no deadline
    t.is((await s.release(keys, ids[2]!)).kind, 'released');
    t.is(await fx.client.exists(keys.queue), 0, 'nobody queued after');
    runs.push(await shapeOf(keys.state));
    t.is((await s.release(keys, ids[2]!)).kind, 'already');
  }
  t.deepEqual(runs[0], runs[1]);
  t.is(runs[0]!.h, '');
  t.is(runs[0]!.r, [3, 2, 1].map((n) => numbersOut(waiterId('h', n, 5_000, true, 1, 'x'))).join(' '));
});

test('a hand-off to a head that fills the name writes and wakes as the general path does: lock, write, every permit, quorum floor', async (t) => {
  const shapes = [
    { kind: 'lock', limit: 1, held: [1, 'x'], next: [1, 'x'] },
    { kind: 'semaphore', limit: 3, held: [1, 'x'], next: [3, 'x'] },
    { kind: 'rw', limit: 0, held: [1, 'r'], next: [1, 'w'] },
  ] as const;
  for (const [k, shape] of shapes.entries()) {
    for (const quorum of [undefined, { floor: Date.now() * 1_000 + 5_000_000 }]) {
      const label = `${shape.kind} ${shape.next[1]}${quorum ? ' (quorum)' : ''}`;
      const runs: unknown[] = [];
      for (const general of [false, true]) {
        const { prefix, s, keys } = setup();
        const sub = await subscribe(t, [wakeChannel(prefix, `w${k}`)]);
        const holder = waiterId(`h${k}`, 1, 5_000, true, shape.held[0], shape.held[1]);
        const h = expectKind(await s.acquire(keys, holder, LIVENESS, 'wait', shape.kind, shape.limit, undefined, {}, quorum), 'granted');
        // the general path: a dead waiter ahead (its session has no deadline), dropped on the way
        if (general) await fx.client.rPush(keys.queue, `${waiterId('dead', 1, 5_000, true, shape.next[0], shape.next[1])} 1`);
        const next = waiterId(`w${k}`, 1, 3_000, true, shape.next[0], shape.next[1]);
        const w = expectKind(await s.acquire(keys, next, LIVENESS, 'wait', shape.kind, shape.limit, undefined, {}, quorum), 'queued');
        const after = waiterId(`v${k}`, 1, 3_000, true, shape.next[0], shape.next[1]);
        expectKind(await s.acquire(keys, after, LIVENESS, 'wait', shape.kind, shape.limit, undefined, {}, quorum), 'queued');
        const rel = await s.release(keys, holder);
        t.is(rel.kind, 'released', label);
        const [granted, ...others] = await holdersAt(fx.client, keys.state);
        t.deepEqual(others, [], `${label}: one holder`);
        t.true(granted!.token > h.token && granted!.token >= (quorum?.floor ?? rel.now * 1_000), `${label}: the token is taken at the grant`);
        t.is(await fx.client.hGet(keys.state, 'h'), `${next} ${granted!.token} ${w.sessionDeadline} 3000 ${rel.now} 0`, `${label}: unconfirmed, until the session's deadline`);
        t.is(await fx.client.hGet(keys.state, 't'), String(granted!.token));
        t.is(await fx.client.hGet(keys.state, 'r'), holder);
        t.deepEqual((await fx.client.lRange(keys.queue, 0, -1)).map((e) => e.split(' ')[0]), [after], `${label}: the rest stays queued`);
        t.deepEqual(await sub.received(1), [{ channel: wakeChannel(prefix, `w${k}`), message: `${next} ${granted!.token} ${Math.min(w.sessionDeadline, rel.now + 3_000)}` }], label);
        runs.push({ state: await shapeOf(keys.state), queue: (await fx.client.lRange(keys.queue, 0, -1)).map(numbersOut) });
      }
      t.deepEqual(runs[0], runs[1], `${label}: the fast path's writes are the general path's`);
    }
  }
});

test('a hand-off that moves the keys\' expiry moves it as the general path does', async (t) => {
  const runs: unknown[] = [];
  for (const general of [false, true]) {
    const { s, keys } = setup();
    const holder = waiterId('h', 1, 5_000, true, 1, 'x');
    expectKind(await s.acquire(keys, holder, LIVENESS, 'wait', 'lock', 1), 'granted');
    if (general) await fx.client.rPush(keys.queue, `${waiterId('dead', 1, 5_000, true, 1, 'x')} 1`);
    const w = expectKind(await s.acquire(keys, waiterId('w', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'queued');
    expectKind(await s.acquire(keys, waiterId('v', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'queued');
    const soon = w.now + 60_000;
    await fx.client.hSet(keys.state, 'x', String(soon));
    for (const key of [keys.state, keys.queue]) await fx.client.pExpireAt(key, soon);
    const rel = await s.release(keys, holder);
    t.is(rel.kind, 'released');
    const x = Number(await fx.client.hGet(keys.state, 'x'));
    t.true(x >= rel.now + 86_400_000, 'x moved a day on');
    for (const key of [keys.state, keys.queue]) t.true(Math.abs(rel.now + (await fx.client.pTTL(key)) - x) < 5_000, `${key} expires at x`);
    runs.push(await shapeOf(keys.state));
  }
  t.deepEqual(runs[0], runs[1]);
});

test('a hand-off to a hand-made id whose lease has a leading zero writes the lease as the general path formats it', async (t) => {
  const { s, keys } = setup();
  const holder = waiterId('h', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, holder, LIVENESS, 'wait', 'lock', 1), 'granted');
  const next = 'w:1:05000:1:1:x'; // valid by the id's pattern, but no client writes "05000"
  const w = expectKind(await s.acquire(keys, next, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, holder);
  t.is(rel.kind, 'released');
  const token = (await holdersAt(fx.client, keys.state))[0]?.token;
  t.is(await fx.client.hGet(keys.state, 'h'), `${next} ${token} ${w.sessionDeadline} 5000 ${rel.now} 0`, 'the lease as a number, not its text');
});
