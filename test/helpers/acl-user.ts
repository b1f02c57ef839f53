/**
 * ACL users for the tests that run fairlock under README's rule: the rule as README gives it, and a
 * client connected as the user a rule made (closed with the test).
 */
import { readFileSync } from 'node:fs';
import type { ExecutionContext } from 'ava';
import { createClient } from 'redis';
import type { RedisClient } from './redis-client.js';
import { serverVersion } from './server-version.js';

/** Redis Functions: Redis 7.0 and every Valkey. */
export function hasFunctions(): boolean {
  const v = serverVersion();
  return v.name === 'Valkey' || v.major >= 7;
}

/**
 * README's ACL line (`ACL SETUSER ...`), with `fairlock` replaced by `prefix`, the user given and the
 * password "pw"; without `+fcall +function|load` on a server without Redis Functions (6.2), as README
 * says; and without the commands in `without`.
 */
export function readmeRule(prefix: string, user: string, without: readonly string[] = []): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const m = /<!-- acl:[^>]*-->\s*```\s*\n(ACL SETUSER [^\n]+)\n```/.exec(readme);
  if (!m) throw new Error('README has no ACL rule block');
  return m[1]!
    .replace(/fairlock:\*/g, `${prefix}:*`)
    .split(/\s+/)
    .map((w, i) => (i === 2 ? user : w === '>secret' ? '>pw' : w))
    .filter((w) => hasFunctions() || (w !== '+fcall' && w !== '+function|load'))
    .filter((w) => !without.includes(w));
}

/** Runs `rule` (ACL SETUSER user ... >pw ...) through `admin`, then connects to `url` as that user. */
export async function connectAs(t: ExecutionContext, admin: RedisClient, url: string, rule: string[]): Promise<RedisClient> {
  await admin.sendCommand(rule);
  const as = new URL(url);
  as.username = rule[2]!;
  as.password = 'pw';
  const client = createClient({ url: as.toString() }) as RedisClient;
  client.on('error', () => undefined);
  await client.connect();
  t.teardown(() => client.quit().then(() => undefined, () => undefined));
  return client;
}
