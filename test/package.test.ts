/**
 * What a user gets and reads is complete and accurate: the tarball holds licence, docs and dist/ but no
 * tests; README's tables name every error code and public member; docs/api/ has a page for every export
 * and no other; the clients README says are refused are refused. Needs no Redis.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { GlideClient, GlideClusterClient } from '@valkey/valkey-glide';
import { Cluster as IORedisCluster5 } from 'ioredis';
import { Cluster as IORedisCluster6 } from 'ioredis-v6';
import { createCluster as createCluster4 } from 'redis';
import { createClientPool as createClientPool5, createCluster as createCluster5 } from 'redis-v5';
import { createClientPool as createClientPool6, createCluster as createCluster6 } from 'redis-v6';
import ts from 'typescript';
import { ERROR_CODES, FairLocks, InvalidArgumentError } from '../src/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}/README.md`, 'utf8');

test.before(() => {
  if (!existsSync(`${root}/dist/index.d.ts`)) throw new Error('run `npm run build` first (npm test does)');
});

/** The rows of the first Markdown table after `marker` in README: the cells of each row, trimmed. */
function tableAfter(marker: string): string[][] {
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README has no ${JSON.stringify(marker)}`);
  const lines = readme.slice(at).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(' | ').map((c) => c.trim()));
  }
  return rows.slice(2); // header and --- line
}

/** The code-formatted name at the start of a cell: "`timeoutMs`" -> timeoutMs, "`onQueued(position)`" -> onQueued. */
const nameOf = (cell: string) => /^`([A-Za-z_.]+)/.exec(cell)?.[1];

test('npm pack holds LICENSE, README, CHANGELOG and dist, and no tests', async (t) => {
  // --ignore-scripts: no `prepare` rebuild of dist/ under the feet of test files running beside this one.
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, timeout: 60_000 });
  const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const wanted of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js']) {
    t.true(files.includes(wanted), `the package holds ${wanted}`);
  }
  t.true(files.some((f) => f.startsWith('dist/protocol/lua/')), 'the package holds the Lua scripts');
  t.deepEqual(files.filter((f) => /(^|\/)test\/|\.test\.|^scripts\/|^docs\//.test(f)), [], 'no tests, scripts or docs in the package');
});

test('every ERROR_CODES entry has a row in README\'s error-code table, and the table no other', (t) => {
  const rows = tableAfter('<!-- error-codes:');
  const documented = rows.map((r) => nameOf(r[0]!));
  t.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
  for (const row of rows) t.true(row.length === 4 && row.every((c) => c.length > 0), `a full row for ${row[0]}`);
});

/** The checker and the exports of dist/index.d.ts, as a user's project sees them. */
function published(): { checker: ts.TypeChecker; exports: ts.Symbol[] } {
  const program = ts.createProgram([`${root}/dist/index.d.ts`], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(`${root}/dist/index.d.ts`)!)!;
  return { checker, exports: checker.getExportsOfModule(module) };
}

test('docs/api has a page for every name dist/index.d.ts exports, and for nothing else', (t) => {
  const exported = published().exports.map((s) => s.name).sort();
  t.true(exported.length > 20, `found the exports (${exported.length})`);
  const pages = ['classes', 'interfaces', 'type-aliases', 'variables', 'functions', 'enumerations']
    .filter((dir) => existsSync(`${root}/docs/api/${dir}`))
    .flatMap((dir) => readdirSync(`${root}/docs/api/${dir}`).map((f) => f.replace(/\.md$/, '')))
    .sort();
  t.deepEqual(pages, exported);
  const index = readFileSync(`${root}/docs/api/README.md`, 'utf8').replace(/\\_/g, '_');
  for (const name of exported) t.true(index.includes(`[${name}](`), `docs/api/README.md links ${name}`);
});

test('README\'s AcquireOptions, Lease and LockInfo tables name every member of the published types', (t) => {
  const { checker, exports } = published();
  const members = (name: string) => {
    const symbol = exports.find((s) => s.name === name)!;
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    return checker.getPropertiesOfType(type).map((p) => p.name).filter((n) => !n.startsWith('__@')); // __@asyncDispose...: a symbol key
  };
  const names = (marker: string) => tableAfter(marker).map((r) => nameOf(r[0]!)).sort();
  t.deepEqual(names('**`AcquireOptions`**'), members('AcquireOptions').sort());
  t.deepEqual(names('**`Lease`**').filter((n) => n !== undefined), members('Lease').sort());
  t.deepEqual(names('**`LockInfo`**'), members('LockInfo').sort());
  for (const extra of ['weight', 'permits']) t.regex(readme, new RegExp(`\\*\\*\`Semaphore(Acquire)?Options\`\\*\\*[^*]*adds \`${extra}\``));
});

/** An ioredis client after disconnect(): status 'end'. */
function closed<T extends { disconnect(): void }>(client: T): T {
  client.disconnect();
  return client;
}

test('the clients README\'s compatibility table lists as refused are refused at once, by name', async (t) => {
  const nowhere = 'redis://127.0.0.1:1'; // never connected: each is made and refused without I/O
  const refused: [string, () => unknown, RegExp][] = [
    ['ioredis 5 Cluster, closed', () => closed(new IORedisCluster5([nowhere], { lazyConnect: true })), /Cluster\) was closed/],
    ['ioredis 6 Cluster, closed', () => closed(new IORedisCluster6([nowhere], { lazyConnect: true })), /Cluster\) was closed/],
    ['node-redis 4 createCluster(), unconnected', () => createCluster4({ rootNodes: [{ url: nowhere }] }), /cluster\) is not connected/],
    ['node-redis 5 createCluster(), unconnected', () => createCluster5({ rootNodes: [{ url: nowhere }] }), /cluster\) is not connected/],
    ['node-redis 6 createCluster(), unconnected', () => createCluster6({ rootNodes: [{ url: nowhere }] }), /cluster\) is not connected/],
    ['node-redis 5 createClientPool()', () => createClientPool5({ url: nowhere }), /pool/],
    ['node-redis 6 createClientPool()', () => createClientPool6({ url: nowhere }), /pool/],
  ];
  for (const [what, make, message] of refused) {
    t.throws(() => new FairLocks(make() as never), { instanceOf: InvalidArgumentError, message }, what);
  }
  t.regex(readme, /\| Redis Cluster clients \(node-redis `createCluster\(\)`, ioredis `Cluster`\) \|[^\n]*test\/cluster\//);
  t.regex(readme, /\| node-redis `createClientPool\(\)`[^\n]*\*\*refused\*\*/);
  // GLIDE clients made with lazyConnect (no I/O): one shaped like GLIDE before 2.3 (no run-time
  // subscribe() / ssubscribe()), and one closed.
  const lazy = { addresses: [{ host: '127.0.0.1', port: 1 }], lazyConnect: true };
  const [old, oldCluster, closedGlide] = [await GlideClient.createClient(lazy), await GlideClusterClient.createClient(lazy), await GlideClient.createClient(lazy)];
  Object.defineProperty(old, 'subscribe', { value: undefined });
  Object.defineProperty(oldCluster, 'ssubscribe', { value: undefined });
  closedGlide.close();
  try {
    t.throws(() => new FairLocks(old), { instanceOf: InvalidArgumentError, message: /GlideClient\) cannot subscribe at run time .*2\.3/ });
    t.throws(() => new FairLocks(oldCluster), { instanceOf: InvalidArgumentError, message: /GlideClusterClient\) cannot subscribe at run time .*2\.3/ });
    t.throws(() => new FairLocks(closedGlide), { instanceOf: InvalidArgumentError, message: /GlideClient\) was closed/ });
  } finally {
    old.close();
    oldCluster.close();
  }
  t.regex(readme, /\| Valkey GLIDE before 2\.3[^\n]*\*\*refused\*\*/);
});
