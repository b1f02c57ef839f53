/**
 * The two ways Scripts runs the one engine (src/protocol/scripts.ts, src/protocol/lua/engine.lua):
 * as a Redis Function library loaded once per server (FCALL) where the server has Functions (7.0+,
 * Valkey) and the user may use them, else per call with EVALSHA (Redis 6.2, a cluster, an ACL
 * without +fcall or +function|load). Both paths run the same entry points on the same keys; a
 * refused FCALL or FUNCTION LOAD falls back to EVALSHA, a command refused inside the engine does not
 * (it is NO_PERMISSION), and a server that lost the library or the scripts (FUNCTION FLUSH, SCRIPT
 * FLUSH) gets them again on the next call.
 */
import test, { type ExecutionContext } from 'ava';
import { FairLockError } from '../../src/errors.js';
import { lockKeys, waiterId } from '../../src/protocol/keys.js';
import { Scripts, engineCall } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { connectAs, readmeRule } from '../helpers/acl-user.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import type { RedisClient } from '../helpers/redis-client.js';
import { serverVersion, testUnless } from '../helpers/server-version.js';
import { holdersAt } from '../helpers/state.js';
import { LIVENESS, clusterLikeScripts, expectKind } from './kit.js';

const fx = useRedis({ owned: true }); // ACL SETUSER and FUNCTION FLUSH change the server: never a user's own Redis

const v = serverVersion();
const functions = v.name === 'Valkey' || v.major >= 7;
const withFunctions = testUnless(functions ? undefined : `${v.label} has no Redis Functions (FCALL: Redis 7.0)`);
const withoutFunctions = testUnless(functions ? `${v.label} has Redis Functions` : undefined);

/** How many times the server ran `command` (INFO commandstats). */
async function calls(command: string): Promise<number> {
  const info = String(await fx.client.sendCommand(['INFO', 'commandstats']));
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

/** The fairlock libraries the server has loaded. */
async function libraries(): Promise<{ name: string; functions: string[] }[]> {
  const list = (await fx.client.sendCommand(['FUNCTION', 'LIST', 'LIBRARYNAME', 'fairlock_*'])) as unknown[][];
  return list.map((lib) => {
    const at = (k: string) => lib[lib.indexOf(k) + 1];
    const fns = (at('functions') as unknown[][]).map((f) => String(f[f.indexOf('name') + 1]));
    return { name: String(at('library_name')), functions: fns.sort() };
  });
}

/** A client of a user with README's rule minus `without` (password "pw"), closed with the test. */
function asUser(t: ExecutionContext, user: string, prefix: string, without: string[]): Promise<RedisClient> {
  return connectAs(t, fx.client, fx.server.url, readmeRule(prefix, user, without));
}

/** A hand-off on a fresh name through `s`: a holder, a waiter, the release; returns what Redis says. */
async function handOff(s: Scripts, prefix: string) {
  const keys = lockKeys(prefix, 'n');
  const a = waiterId('a', 1, 5_000, true, 1, 'x');
  const b = waiterId('b', 1, 5_000, true, 1, 'x');
  const ga = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  const qb = expectKind(await s.acquire(keys, b, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, a);
  const held = await holdersAt(fx.client, keys.state);
  return { ga, qb, rel: rel.kind, held: held.map((h) => [h.id, h.token > ga.token, h.confirmed]), queue: await fx.client.lLen(keys.queue) };
}

const EXPECTED_HANDOFF = {
  rel: 'released',
  held: [[waiterId('b', 1, 5_000, true, 1, 'x'), true, false]],
  queue: 0,
};

withFunctions.serial('a server with Functions: the library is loaded once and every entry point runs by FCALL', async (t) => {
  await fx.client.sendCommand(['FUNCTION', 'FLUSH']);
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  t.is(s.engine, 'unknown', 'until the first call');
  const fcalls = await calls('fcall');
  const evalshas = await calls('evalsha');
  const r = await handOff(s, prefix);
  t.like(r, EXPECTED_HANDOFF);
  t.is(s.engine, 'function');
  const libs = await libraries();
  t.is(libs.length, 1, 'one library');
  t.regex(libs[0]!.name, /^fairlock_[0-9a-f]{12}$/, 'named by a hash of its code');
  t.deepEqual(libs[0]!.functions, ['acquire', 'cancel', 'commit', 'extend', 'heartbeat', 'inspect', 'release', 'types'].map((n) => `${libs[0]!.name}_${n}`));
  t.true((await calls('fcall')) - fcalls >= 3, 'acquire, acquire, release by FCALL');
  t.is((await calls('evalsha')) - evalshas, 0, 'no EVALSHA');

  // Another Scripts (another process) finds the library loaded; so do the other entry points.
  const other = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'n');
  await other.heartbeat(keys, 'b', LIVENESS, { held: [waiterId('b', 1, 5_000, true, 1, 'x')] });
  await other.extend(keys, waiterId('b', 1, 5_000, true, 1, 'x'), 5_000);
  await other.inspect(keys, 10);
  await other.cancel(keys, waiterId('c', 1, 5_000, true, 1, 'x'));
  t.is(other.engine, 'function');
  t.is((await libraries()).length, 1, 'not loaded twice');
  t.is((await calls('evalsha')) - evalshas, 0, 'still no EVALSHA');
});

withFunctions.serial('FUNCTION FLUSH between calls: the next call loads the library again', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'n');
  expectKind(await s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'granted');
  await fx.client.sendCommand(['FUNCTION', 'FLUSH']);
  t.is((await s.release(keys, waiterId('a', 1, 5_000, true, 1, 'x'))).kind, 'released');
  t.is(s.engine, 'function');
  t.is((await libraries()).length, 1);
});

test.serial('the EVALSHA path (a cluster) runs the same engine on the same keys; SCRIPT FLUSH costs one EVAL', async (t) => {
  const prefix = newPrefix();
  const s = clusterLikeScripts(fx, prefix);
  t.is(s.engine, 'script', 'a cluster never tries FCALL');
  const fcalls = await calls('fcall');
  const evalshas = await calls('evalsha');
  t.like(await handOff(s, prefix), EXPECTED_HANDOFF);
  t.is(s.engine, 'script');
  t.is((await calls('fcall')) - fcalls, 0, 'no FCALL');
  t.true((await calls('evalsha')) - evalshas >= 3);

  await fx.client.sendCommand(['SCRIPT', 'FLUSH']);
  const evals = await calls('eval');
  const keys = lockKeys(prefix, 'n');
  t.is((await s.release(keys, waiterId('b', 1, 5_000, true, 1, 'x'))).kind, 'released', 'NOSCRIPT, then EVAL');
  t.is((await calls('eval')) - evals, 1);

  // The bodies engineCall gives (what tests load up front) are the ones Scripts sends: no EVAL.
  await fx.client.sendCommand(['SCRIPT', 'FLUSH']);
  for (const name of ['acquire', 'release', 'inspect'] as const) await fx.client.scriptLoad(engineCall(name).body);
  const evals2 = await calls('eval');
  const fresh = clusterLikeScripts(fx, prefix);
  expectKind(await fresh.acquire(keys, waiterId('c', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'granted');
  await fresh.inspect(keys, 1);
  t.is((await fresh.release(keys, waiterId('c', 1, 5_000, true, 1, 'x'))).kind, 'released');
  t.is((await calls('eval')) - evals2, 0, 'every body was found by its SHA');
});

test.serial('both paths on one name: a grant by one is released by the other, FIFO and tokens as one engine', async (t) => {
  const prefix = newPrefix();
  const keys = lockKeys(prefix, 'n');
  const f = new Scripts(adaptClient(fx.client), prefix);
  const e = clusterLikeScripts(fx, prefix);
  const [a, b, c] = ['a', 'b', 'c'].map((sid) => waiterId(sid, 1, 5_000, true, 1, 'x')) as [string, string, string];
  const ga = expectKind(await f.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await e.acquire(keys, b, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await f.acquire(keys, c, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.is((await e.release(keys, a)).kind, 'released');
  const hb = await f.heartbeat(keys, 'b', LIVENESS, { held: [b] });
  t.deepEqual(hb.holders.map((h) => h.id), [b]);
  t.true(hb.holders[0]!.token > ga.token);
  t.is((await f.release(keys, b)).kind, 'released');
  const gc = expectKind(await e.acquire(keys, c, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.true(gc.token > hb.holders[0]!.token);
  t.is((await f.release(keys, a)).kind, 'already', 'the releasers are shared too');
  t.is(f.engine, functions ? 'function' : 'script');
  t.is(e.engine, 'script');
});

for (const without of [['+fcall'], ['+function|load'], ['+fcall', '+function|load']]) {
  withFunctions.serial(`a user without ${without.join(' ')}: Scripts falls back to EVALSHA and works`, async (t) => {
    await fx.client.sendCommand(['FUNCTION', 'FLUSH']); // the library not loaded yet: FUNCTION LOAD is needed
    const prefix = newPrefix();
    const client = await asUser(t, `nofn${without.length}${without[0]!.length}`, prefix, without);
    const s = new Scripts(adaptClient(client), prefix);
    t.like(await handOff(s, prefix), EXPECTED_HANDOFF);
    t.is(s.engine, 'script');
    t.deepEqual(await libraries(), [], 'nothing loaded');
  });
}

withFunctions.serial('a user with +fcall alone uses a library another process loaded', async (t) => {
  await fx.client.sendCommand(['FUNCTION', 'FLUSH']);
  const prefix = newPrefix();
  await new Scripts(adaptClient(fx.client), prefix).inspect(lockKeys(prefix, 'other'), 1); // the admin's process loads it
  const client = await asUser(t, 'fcallonly', prefix, ['+function|load']);
  const s = new Scripts(adaptClient(client), prefix);
  t.like(await handOff(s, prefix), EXPECTED_HANDOFF);
  t.is(s.engine, 'function');
});

test.serial('a command refused inside the engine is NO_PERMISSION, and does not switch the engine to EVALSHA', async (t) => {
  const prefix = newPrefix();
  const client = await asUser(t, 'norpush', prefix, ['+rpush']);
  const s = new Scripts(adaptClient(client), prefix);
  const keys = lockKeys(prefix, 'n');
  expectKind(await s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const engine = s.engine;
  t.is(engine, functions ? 'function' : 'script');
  const err = await t.throwsAsync(s.acquire(keys, waiterId('b', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), { instanceOf: FairLockError });
  t.is(err?.code, 'NO_PERMISSION', err?.message);
  t.is(s.engine, engine, 'still the same engine');
});

withoutFunctions.serial('a server without Functions (6.2): the first FCALL is refused and every call runs by EVALSHA', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  t.like(await handOff(s, prefix), EXPECTED_HANDOFF);
  t.is(s.engine, 'script');
});
