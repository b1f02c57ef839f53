/** A partition made inside one Redis: every connection but the admin's is cut, and reconnects are refused. */
import type { ExecutionContext } from 'ava';
import { within } from './bounded.js';
import { scopeOf } from './cleanup.js';
import type { RedisClient } from './redis-client.js';

/**
 * Only `admin` stays connected (maxclients 1, then CLIENT KILL of the normal and pubsub clients):
 * no renewal, wake-up or reconnect gets through until `heal()` (also run first thing at teardown).
 */
export async function cutAllBut(t: ExecutionContext, admin: RedisClient): Promise<{ heal(): Promise<void> }> {
  const heal = async () => void (await within(admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']), 20_000, 'maxclients back'));
  await within(admin.sendCommand(['CONFIG', 'SET', 'maxclients', '1']), 20_000, 'maxclients 1');
  scopeOf(t).add(() => admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']));
  await within(admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']), 20_000, 'kill normal');
  await within(admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']), 20_000, 'kill pubsub');
  return { heal };
}
