/** README's Redis Cluster block runs as written, with node, against a 3-master cluster this test starts. */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { clusterTest as test } from './target.js';
import { scopeOf } from '../helpers/cleanup.js';
import { startRedisCluster } from '../helpers/cluster.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('the README\'s Redis Cluster example runs with node against a real cluster', async (t) => {
  if (!existsSync(`${root}/dist/index.js`)) throw new Error('run `npm run build` first (npm test does)');
  const readme = readFileSync(`${root}/README.md`, 'utf8');
  const code = /<!-- cluster:[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!code) throw new Error('README has no block marked cluster');
  const cluster = await startRedisCluster();
  scopeOf(t).add(() => cluster.stop());
  const file = `${root}/cluster-readme.tmp.mjs`;
  writeFileSync(file, code);
  try {
    const REDIS_CLUSTER = cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',');
    const { stdout } = await promisify(execFile)(process.execPath, [file], { env: { ...process.env, REDIS_CLUSTER }, timeout: 30_000 });
    for (const name of ['tenant:1', 'tenant:2', 'tenant:3']) t.regex(stdout, new RegExp(`cluster: ${name} token \\d{16}`));
  } finally {
    rmSync(file, { force: true });
  }
});
