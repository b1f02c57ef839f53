/**
 * README's quick start blocks run as written against the built package: the JavaScript ones with plain
 * `node` (.mjs and .cjs, valid on Node 20), the TypeScript one through tsx.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { ownRedis } from './helpers/cleanup.js';
import { useRedis } from './helpers/fixture.js';

const fx = useRedis();
const root = fileURLToPath(new URL('..', import.meta.url));

function block(tag: string): string {
  const readme = readFileSync(`${root}/README.md`, 'utf8');
  const code = new RegExp(`<!-- ${tag}:[^>]*-->\\s*\`\`\`(?:js|ts)\\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1];
  if (!code) throw new Error(`README has no block marked ${tag}`);
  return code;
}

/** Runs `code` from a file inside the package, so that `fairlock` resolves to this package's own exports. */
async function run(code: string, ext: 'mjs' | 'cjs' | 'ts', env: Record<string, string> = {}): Promise<string> {
  const file = `${root}/quickstart.tmp.${ext}`;
  writeFileSync(file, code);
  try {
    const args = ext === 'ts' ? ['--import', 'tsx', file] : [file];
    const { stdout } = await promisify(execFile)(process.execPath, args, { env: { ...process.env, REDIS_URL: fx.server.url, ...env }, timeout: 30_000 });
    return stdout;
  } finally {
    rmSync(file, { force: true });
  }
}

test.before(() => {
  if (!existsSync(`${root}/dist/index.js`)) throw new Error('run `npm run build` first (npm test does)');
});

test.serial('the quick start runs with node as plain JavaScript', async (t) => {
  const out = await run(block('quickstart'), 'mjs');
  t.regex(out, /holding reports:daily with fencing token \d{16}/);
  t.regex(out, /queue behind us: 0 true/);
  t.regex(out, /try while free: true true/);
});

test.serial('the ioredis quick start runs with node', async (t) => {
  t.regex(await run(block('quickstart-ioredis'), 'mjs'), /ioredis: token \d{16}/);
});

test.serial('the CommonJS quick start runs with node: require("fairlock") works', async (t) => {
  t.regex(await run(block('quickstart-cjs'), 'cjs'), /commonjs: token \d{16}/);
});

test.serial('the await using example runs through tsx', async (t) => {
  const out = await run(block('quickstart-await-using'), 'ts');
  t.regex(out, /await using: token \d{16}/);
  t.regex(out, /free again: true/);
});

test.serial('the three primitives example runs with node', async (t) => {
  const out = await run(block('primitives'), 'mjs');
  t.regex(out, /semaphore: 0 permits left/);
  t.regex(out, /readers together: read read/);
  t.regex(out, /downgrade shares the token: true/);
});

test.serial('the fair share example runs with node: groups take turns, a capped group holds nobody back', async (t) => {
  const out = await run(block('groups'), 'mjs');
  t.regex(out, /turns: acme#1 globex#1 acme#2 acme#3\n/);
  t.regex(out, /acme: 2 held, 1 waiting, capped; globex: 1 held, 0 waiting\n/);
  t.regex(out, /acme's third: group acme, after globex: true/);
});

test.serial('the events and metrics example runs with node', async (t) => {
  const out = await run(block('events'), 'mjs');
  t.regex(out, /granted report: token true, waited true/);
  t.regex(out, /timeout on report after >= 100 ms/);
  t.regex(out, /second acquire: LOCK_TIMEOUT/);
  t.regex(out, /fairlock\.grants 1 \{"name":"report","kind":"lock"\}/);
  t.regex(out, /fairlock\.timeouts 1 \{"name":"report","kind":"lock"\}/);
});

test.serial('the quorum example runs with node against three servers of its own (fresh: the first acquire waits one guard)', async (t) => {
  const servers = await Promise.all([0, 1, 2].map(() => ownRedis(t, { owned: true })));
  const out = await run(block('quorum'), 'mjs', { REDIS_URLS: servers.map((s) => s.url).join(',') });
  t.regex(out, /quorum: token \d{16} on masters 0,1\n/);
  t.regex(out, /quorum next token higher: true\n/);
  t.regex(out, /per master: 0,0,0\n/);
});
