import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { useRedis } from './helpers/fixture.js';


const fx = useRedis();

const root = fileURLToPath(new URL('..', import.meta.url));

test('the README quick start runs as written against the built package', async (t) => {
  t.true(existsSync(`${root}/dist/index.js`), 'run `npm run build` first (npm test does)');
  const readme = readFileSync(`${root}/README.md`, 'utf8');
  const block = /<!-- quickstart[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  t.truthy(block, 'README has a quick start block');
  // Inside the package, so that `import 'fairlock'` resolves to this package's own exports.
  const file = `${root}/quickstart.tmp.ts`;
  writeFileSync(file, block!);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
      env: { ...process.env, REDIS_URL: fx.server.url },
      timeout: 30_000,
    });
    t.regex(stdout, /holding reports:daily with fencing token \d{16}/);
    t.regex(stdout, /queue behind us: 0 true/);
    t.regex(stdout, /try while free: true true/);
  } finally {
    rmSync(file, { force: true });
  }
});
