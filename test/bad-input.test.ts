/**
 * Bad input fails fast with an InvalidArgumentError naming the argument, whatever the value: objects
 * without a prototype, options of the wrong type, and names that cannot be sent to Redis as they are
 * (ill-formed UTF-16 would become the same bytes as another name).
 */
import test from 'ava';
import { FairLocks, InvalidArgumentError } from '../src/index.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';

const fx = useRedis();

function fresh(t: { teardown(fn: () => Promise<void>): void }, options = {}): FairLocks {
  const locks = new FairLocks(fx.client, { prefix: newPrefix(), ...options });
  t.teardown(() => locks.close());
  return locks;
}

const bare = () => Object.create(null) as never;

test('an object without a prototype as a name, duration or prefix is an InvalidArgumentError, not a TypeError', async (t) => {
  const locks = fresh(t);
  const invalid = { instanceOf: InvalidArgumentError };
  t.throws(() => locks.lock(bare()), { ...invalid, message: /name must be a non-empty string, got an object/ });
  t.throws(() => new FairLocks(fx.client, { prefix: bare() }), { ...invalid, message: /options\.prefix/ });
  t.throws(() => new FairLocks(fx.client, { leaseMs: bare() }), { ...invalid, message: /options\.leaseMs/ });
  t.throws(() => new FairLocks(fx.client, { driftFactor: bare() }), { ...invalid, message: /options\.driftFactor/ });
  const lock = locks.lock('p');
  await t.throwsAsync(lock.acquire({ timeoutMs: bare() }), { ...invalid, message: /options\.timeoutMs/ });
  await t.throwsAsync(lock.acquire({ leaseMs: bare() }), { ...invalid, message: /options\.leaseMs/ });
  await t.throwsAsync(lock.tryAcquire({ leaseMs: bare() }), { ...invalid, message: /options\.leaseMs/ });
  await t.throwsAsync(locks.inspect(bare()), { ...invalid, message: /name/ });
  // A value whose toString throws is described, never converted.
  const hostile = { toString() { throw new Error('no'); }, [Symbol.toPrimitive]() { throw new Error('no'); } };
  t.throws(() => locks.lock(hostile as never), invalid);
  await t.throwsAsync(lock.acquire({ timeoutMs: hostile as never }), invalid);
  await t.throwsAsync(lock.acquire({ timeoutMs: Symbol('x') as never }), invalid);
  await t.throwsAsync(lock.acquire({ timeoutMs: 10n as never }), invalid);
});

test('options that are not an object are refused before they are merged with the defaults', async (t) => {
  const locks = fresh(t);
  const lock = locks.lock('o');
  const invalid = { instanceOf: InvalidArgumentError, message: /acquire options must be an object/ };
  for (const bad of ['x', null, 42, true, ['timeoutMs'], () => undefined]) {
    await t.throwsAsync(lock.acquire(bad as never), invalid, `acquire(${String(bad)})`);
    await t.throwsAsync(lock.tryAcquire(bad as never), invalid, `tryAcquire(${String(bad)})`);
    await t.throwsAsync(lock.using(async () => 1, bad as never), invalid, `using(fn, ${String(bad)})`);
    t.throws(() => locks.lock('o', bad as never), { instanceOf: InvalidArgumentError, message: /lock options must be an object/ });
    t.throws(() => new FairLocks(fx.client, bad as never), { instanceOf: InvalidArgumentError, message: /options must be an object/ });
  }
  await t.throwsAsync(lock.using('not a function' as never), { instanceOf: InvalidArgumentError, message: /using\(\) needs a function/ });
  t.is((await locks.inspect('o')).holder, null, 'nothing was acquired');
});

test('names with lone surrogates are refused; well-formed names with astral characters work', async (t) => {
  const locks = fresh(t);
  for (const name of ['a\uD800b', 'a\uDBFFb', '\uDC00', 'x\uD83D']) {
    t.throws(() => locks.lock(name), { instanceOf: InvalidArgumentError, message: /well-formed UTF-16/ }, JSON.stringify(name));
    await t.throwsAsync(locks.inspect(name), { instanceOf: InvalidArgumentError });
  }
  t.throws(() => new FairLocks(fx.client, { prefix: 'p\uD800' }), { instanceOf: InvalidArgumentError, message: /options\.prefix/ });
  // U+FFFD itself and a real pair are fine and are two different locks.
  const a = await locks.lock('a\uFFFDb').acquire();
  const b = await locks.lock('a\uD83D\uDE00b').tryAcquire();
  t.truthy(b, 'a name with an emoji is another lock than one with U+FFFD');
  await a.release();
  await b?.release();
});
