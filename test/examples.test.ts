/**
 * Every recipe under examples/ runs as a user would run it, `node examples/<file>.mjs` with REDIS_URL
 * pointing at this file's redis-server, from inside the package so that `fairlock` resolves to this
 * package's own exports; each must exit 0 (a recipe exits non-zero when its own check fails) within a
 * bound and print what it promises.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { useRedis } from './helpers/fixture.js';

const fx = useRedis();
const root = fileURLToPath(new URL('..', import.meta.url));
const exec = promisify(execFile);

async function run(file: string, node = process.execPath): Promise<string> {
  const { stdout } = await exec(node, [`examples/${file}`], {
    cwd: root,
    env: { ...process.env, REDIS_URL: fx.server.url },
    timeout: 60_000, // a recipe takes a few seconds; the bound only stops one that hangs
    killSignal: 'SIGKILL',
  });
  return stdout;
}

test.before(() => {
  if (!existsSync(`${root}/dist/index.js`)) throw new Error('run `npm run build` first (npm test does)');
});

test('every file under examples/ has a test here', (t) => {
  t.deepEqual(readdirSync(`${root}/examples`).sort(), ['one-machine-job.mjs']);
});

test.serial('one-machine-job: the interval job runs, never on two machines at once', async (t) => {
  const out = await run('one-machine-job.mjs');
  t.regex(out, /machine-\d ran the job \(fencing token \d+\)/);
  t.regex(out, /overlapping runs: 0\n/);
  t.regex(out, /ok: the job ran on one machine at a time/);
});
