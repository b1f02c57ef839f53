/**
 * The quorum's handover (QuorumLease's release; "Quorum" in the header of
 * src/protocol/lua/engine.lua), on three real independent redis-server processes: a holder whose
 * first grant came by a hand-off releases master 0 first, passing its grant on master 1; the waiter
 * granted there releases that grant with its own acquire on master 1, so master 1 sees no release
 * call from the holder at all (counted with MONITOR). When the waiter does not get to master 1 (cut
 * from it by the TCP proxy), the holder's heartbeat releases the grant there, long before its lease
 * would run out. Order from tokens and grants, never from clocks.
 */
import test, { type ExecutionContext } from 'ava';
import { DEFAULTS, FairLocks, type Lease, type QuorumOptions } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { openClient, scopeOf } from '../helpers/cleanup.js';
import { startMasters, FAST } from '../helpers/masters.js';
import { monitor } from '../helpers/monitor.js';
import { startProxy } from '../helpers/proxy.js';
import { queue, sleep, traceOnFailure, type QuorumLease } from './kit.js';

/** Polls `check` every 20 ms until it holds or `ms` passed; its last answer. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (await check()) return true;
    await sleep(20);
  }
  return check();
}

/**
 * Three quorums over three fresh masters with `options`: a and b direct, c's client of master 1
 * through a proxy (cut with proxy.hold()); everything is closed with the test.
 */
async function cutFromMaster1(t: ExecutionContext, options: QuorumOptions) {
  const m = await startMasters(t, 3);
  const proxy = await startProxy(m.servers[1]!.port);
  scopeOf(t).add(() => proxy.stop());
  const clients = [];
  for (const [i, s] of m.servers.entries()) clients.push(await openClient(t, i === 1 ? proxy.url : s.url));
  const c = FairLocks.quorum(clients, options);
  scopeOf(t).add(() => c.close());
  scopeOf(t).add(() => proxy.heal()); // runs first: the closes then go through
  const [a, b] = await Promise.all([m.quorum(options), m.quorum(options)]);
  const m1Holders = async () => (await a.inspect('h')).masters[1]!.info?.holders.length ?? -1;
  return { m, proxy, a: a!, b: b!, c, m1Holders };
}

/**
 * a holds (uncontended), b and c queue; a releases and b is granted masters 0 and 1 (it waited: its
 * release will hand over); then c is cut from master 1, so its acquire cannot release b's grant there.
 */
async function bHoldsAndCIsCut(t: ExecutionContext, { proxy, a, b, c }: Awaited<ReturnType<typeof cutFromMaster1>>) {
  const first = await a.lock('h').acquire();
  const bWait = await queue(b, 'h');
  const cWait = await queue(c, 'h');
  await first.release();
  const bLease = (await bWait.lease) as QuorumLease;
  t.deepEqual(bLease.masters, [0, 1]);
  proxy.hold();
  return { bLease, cWait };
}

test('a contended hand-off: the holder sends no release to master 1, the waiter\'s acquire there releases its grant', async (t) => {
  const m = await startMasters(t, 3);
  const [a, b, c] = await Promise.all([m.quorum(), m.quorum(), m.quorum()]);
  const m1 = await openClient(t, m.servers[1]!.url);
  await traceOnFailure(t, [a!, b!, c!], async () => {
    const first = await a.lock('h').acquire(); // uncontended: released in one parallel round
    const bWait = await queue(b!, 'h');
    const cWait = await queue(c!, 'h');
    await first.release();
    const bLease = (await bWait.lease) as QuorumLease;
    t.deepEqual(bLease.masters, [0, 1]);
    const seen = await monitor(t, m.servers[1]!.port);
    await bLease.release(); // b waited on master 0: it releases master 0 first, handing over master 1
    const cLease = (await cWait.lease) as QuorumLease;
    t.deepEqual(cLease.masters, [0, 1], 'c holds masters 0 and 1');
    t.true(cLease.token > bLease.token, 'tokens rise');
    const m1Holders = async () => (await c!.inspect('h')).masters[1]!.info?.holders.map((h) => h.id) ?? [];
    t.is((await m1Holders()).length, 1, 'one holder on master 1: c');
    t.is(seen.calls('release'), 0, 'master 1 saw no release call: c\'s acquire released b\'s grant there');
    t.is(seen.calls('acquire'), 1, 'one acquire call on master 1 for the hand-off: c\'s');
    t.not((await m1.hGet(lockKeys(DEFAULTS.prefix, 'h').state, 'r')) ?? '', '', 'master 1 remembers b\'s grant as released');
    await cLease.release();
    // nobody waited behind c: it released every master itself (master 0 first, then the rest)
    t.true(await eventually(async () => (await m1Holders()).length === 0, 2_000), 'master 1 is free after c\'s release');
  });
});

test('the waiter cannot reach master 1: the holder\'s heartbeat releases its grant there, long before the lease would end', async (t) => {
  // a grant left to run out would stay for 20 s
  const setup = await cutFromMaster1(t, { ...FAST, leaseMs: 20_000 });
  const { m, proxy, a, b, c, m1Holders } = setup;
  const lost: string[] = [];
  b.on('lost', (lease) => lost.push(String((lease as Lease).token)));
  const m1 = await openClient(t, m.servers[1]!.url);
  await traceOnFailure(t, [a, b, c], async () => {
    const { bLease, cWait } = await bHoldsAndCIsCut(t, setup);
    await bLease.release();
    t.true(await eventually(async () => (await m1Holders()) === 0, 5_000), 'b\'s grant on master 1 is released (by its heartbeat) within 5 s, not at its 20 s lease');
    t.true(((await m1.hGet(lockKeys(DEFAULTS.prefix, 'h').state, 'r')) ?? '') !== '', 'released, not run out');
    const cLease = (await cWait.lease) as QuorumLease;
    t.deepEqual(cLease.masters, [0, 2], 'c skipped the master it cannot reach');
    t.true(cLease.token > bLease.token, 'tokens rise');
    t.deepEqual(lost, [], 'b was never told lost');
    proxy.heal();
    await cLease.release();
  });
});

test('close() right after a contended release releases what it handed over: no grant is left to run out', async (t) => {
  // a beat every 5 s and a 20 s lease: only close()'s own beat can free master 1 within 2.5 s
  const setup = await cutFromMaster1(t, { ...FAST, leaseMs: 20_000, heartbeatMs: 5_000, livenessMs: 10_000 });
  const { proxy, a, b, c, m1Holders } = setup;
  await traceOnFailure(t, [a, b, c], async () => {
    const { bLease, cWait } = await bHoldsAndCIsCut(t, setup);
    await bLease.release();
    await b.close();
    t.true(await eventually(async () => (await m1Holders()) === 0, 2_500), 'b\'s grant on master 1 was released by close()');
    const cLease = (await cWait.lease) as QuorumLease;
    t.deepEqual(cLease.masters, [0, 2]);
    proxy.heal();
    await cLease.release();
  });
});
