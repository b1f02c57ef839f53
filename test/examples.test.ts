/**
 * Every recipe under examples/ runs as a user runs it (`node examples/<file>.mjs`, REDIS_URL set, the
 * package resolving to itself), exits 0 within a bound and prints what it promises. fenced-sqlite.mjs
 * needs `node:sqlite` (Node >= 22.13): on this Node when it has it, else on Node 24 (scripts/node.sh).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

/** A Node that has node:sqlite: this one, or Node 24 installed by scripts/node.sh (empty where it cannot run). */
async function nodeWithSqlite(): Promise<string> {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major > 22 || (major === 22 && minor >= 13)) return process.execPath;
  const { stdout } = await exec('bash', ['scripts/node.sh', '24'], { cwd: root, timeout: 300_000 });
  return stdout.trim();
}

test.before(() => {
  if (!existsSync(`${root}/dist/index.js`)) throw new Error('run `npm run build` first (npm test does)');
});

test('every file under examples/ has a test here and a line in README\'s Recipes section', (t) => {
  const files = readdirSync(`${root}/examples`).sort();
  t.deepEqual(files, ['bullmq-fair-tenants.mjs', 'fenced-sqlite.mjs', 'one-machine-job.mjs']);
  const recipes = /\n## Recipes\n([\s\S]*?)\n## /.exec(readFileSync(`${root}/README.md`, 'utf8'))?.[1] ?? '';
  for (const file of files) t.true(recipes.includes(`- [\`examples/${file}\`](examples/${file}): `), file);
});

test.serial('one-machine-job: the interval job runs, never on two machines at once', async (t) => {
  const out = await run('one-machine-job.mjs');
  t.regex(out, /machine-\d ran the job \(fencing token \d+\)/);
  t.regex(out, /overlapping runs: 0\n/);
  t.regex(out, /ok: the job ran on one machine at a time/);
});

test.serial('bullmq-fair-tenants: one pool shared by tenants, caps kept, quiet tenants not held behind a burst', async (t) => {
  const out = await run('bullmq-fair-tenants.mjs');
  t.regex(out, /once all jobs were in: acme 2 running, 22 waiting \(at its cap\);/);
  t.regex(out, /the pool's grants in token order, by tenant:( (acme|globex|initech)){30}\n/);
  // at most one grant of each other waiting tenant before a quiet tenant's first: acme's 2 running + 1
  t.regex(out, /acme's jobs granted before each quiet tenant's first job: \{"globex":[0-3],"initech":[0-3]\} \(of 24\)/);
  t.regex(out, /jobs done: 30\/30; most jobs running at once: \{"acme":2,"globex":[12],"initech":[12],"pool":4\} \(caps: 2 per tenant, 4 in the pool\)/);
  t.regex(out, /ok: at most 2 jobs per tenant and 4 in all ran at once, and the quiet tenants were not held behind acme's burst/);
});

test.serial('fenced-sqlite: the stale holder\'s UPDATE is refused by the fence', async (t) => {
  const node = await nodeWithSqlite();
  if (!node) {
    t.log('no Node with node:sqlite on this platform (scripts/node.sh needs Linux x64): only the Node 20 fallback runs');
    t.regex(await run('fenced-sqlite.mjs'), /skipped: node:sqlite needs Node >= 22\.13/);
    return;
  }
  const out = await run('fenced-sqlite.mjs', node);
  t.regex(out, /A holds token \d+; writes: true/);
  t.regex(out, /B holds token \d+ \(after A's lease ran out\); writes: true true/);
  t.regex(out, /A \(stale, token \d+\) writes: false -> rejected by the fence/);
  t.regex(out, /row: value="written by B again" fence=\d+/);
  t.regex(out, /ok: the stale holder was fenced off/);
});
