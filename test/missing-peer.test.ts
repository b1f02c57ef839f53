/**
 * A missing optional peer is a FairLockError with a stable code, never Node's ERR_MODULE_NOT_FOUND:
 * instrument(locks) without @opentelemetry/api rejects with MISSING_PEER saying what to install (proved on
 * a copy of dist/ whose node_modules lacks it); a `meter` that is not one is an InvalidArgumentError.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';
import { FairLocks, instrument, InvalidArgumentError } from '../src/index.js';
import { newLocks } from './helpers/cleanup.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();
const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);


test('instrument() without @opentelemetry/api installed rejects with a FairLockError MISSING_PEER naming the package', async (t) => {
  if (!existsSync(join(root, 'dist/index.js'))) throw new Error('run `npm run build` first (npm test does)');
  const dir = mkdtempSync(join(tmpdir(), 'fairlock-no-otel-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.false(existsSync(join(tmpdir(), 'node_modules')), 'no node_modules above the temporary directory');
  const pkg = join(dir, 'node_modules', 'fairlock');
  mkdirSync(pkg, { recursive: true });
  cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
  for (const dep of ['async-mutex', 'commander', 'ms']) symlinkSync(join(root, 'node_modules', dep), join(dir, 'node_modules', dep), 'dir');
  // node-redis comes from this worktree by file URL: the child needs a client, not a resolvable 'redis'.
  const redisUrl = pathToFileURL(require.resolve('redis')).href;
  writeFileSync(
    join(dir, 'probe.mjs'),
    `import { FairLocks, FairLockError, instrument } from 'fairlock';
const { createClient } = await import(${JSON.stringify(redisUrl)});
const client = await createClient({ url: process.env.REDIS_URL }).connect();
const locks = new FairLocks(client, { prefix: process.env.PREFIX });
let out;
try {
  await import('@opentelemetry/api');
  out = { resolvable: true };
} catch {
  try {
    await instrument(locks);
    out = { resolved: true };
  } catch (err) {
    out = { fairLockError: err instanceof FairLockError, name: err.name, code: err.code, message: err.message, causeCode: err.cause?.code };
  }
}
await locks.close();
await client.quit();
console.log(JSON.stringify(out));
`,
  );
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    // execFile's timeout kills the child by its PID (SIGKILL) if it overruns.
    execFile(process.execPath, [join(dir, 'probe.mjs')], { cwd: dir, env: { ...process.env, REDIS_URL: fx.server.url, PREFIX: newPrefix() }, timeout: 30_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout }),
    );
  });
  const out = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  t.like(out, { fairLockError: true, name: 'FairLockError', code: 'MISSING_PEER', causeCode: 'ERR_MODULE_NOT_FOUND' });
  t.regex(String(out.message), /npm install @opentelemetry\/api/);
  t.regex(String(out.message), /options\.meter/);
});

test('instrument() with a meter that is not one is refused with InvalidArgumentError', async (t) => {
  const locks: FairLocks = newLocks(t, fx.client, { prefix: newPrefix() });
  for (const meter of [{}, { createHistogram: () => undefined }, 'meter', null]) {
    const e = await t.throwsAsync(instrument(locks, { meter: meter as never }), { instanceOf: InvalidArgumentError });
    t.regex(e!.message, /options\.meter/);
  }
  t.is(locks.listenerCount('granted'), 0, 'nothing was left listening');
});
