/**
 * Which server the tests start: the `redis-server` first on PATH (scripts/test-servers.sh puts each
 * server of the matrix there in turn). Tests that need a feature of a later version ask here and
 * skip themselves with a reason that names the server, never silently.
 */
import test, { type TestFn } from 'ava';
import { hasShardedPubSub, serverVersion } from './server-features.js';

export { hasShardedPubSub, serverVersion, type ServerVersion } from './server-features.js';

/** The reason a test that needs sharded pub/sub gives when it skips itself, or undefined when it can run. */
export function withoutShardedPubSub(): string | undefined {
  return hasShardedPubSub() ? undefined : `${serverVersion().label} has no sharded pub/sub (SPUBLISH, SSUBSCRIBE: Redis 7.0)`;
}

/**
 * ava's `test` for the tests of a file that need what `reason` says is missing: with a reason, every
 * test is registered as skipped with "[skipped: reason]" in its title (ava prints it) and the hooks
 * are not run (they would start servers for nothing); without one, ava's `test` itself.
 */
export function testUnless(reason: string | undefined): TestFn {
  if (!reason) return test;
  const skip = (title: string) => test.skip(`${title} [skipped: ${reason}]`, () => undefined);
  const noop = () => undefined;
  const hook = Object.assign(noop, { always: noop, skip: noop });
  return Object.assign(skip, {
    serial: Object.assign((title: string) => skip(title), { skip, only: skip, failing: skip, before: hook, after: hook, beforeEach: hook, afterEach: hook }),
    skip,
    only: skip,
    failing: skip,
    todo: test.todo,
    before: hook,
    after: hook,
    beforeEach: hook,
    afterEach: hook,
    macro: test.macro,
    meta: test.meta,
  }) as unknown as TestFn;
}
