/**
 * Nothing kept per lock name outlives its use: 10,000 distinct 1 KiB names acquired and released once
 * (lock, semaphore, read-write) leave the heap flat, without instrument() and with instrument({ maxNames:
 * 10 }) (names beyond maxNames fold into "other"). Each run is a child process (`node --expose-gc`).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();
const PROBE = fileURLToPath(new URL('./helpers/heap-probe.ts', import.meta.url));
const NAMES = 10_000;
const NAME_CHARS = 1_024;
/** Generous: 10,000 names of 1 KiB kept by one map would be ~10 MiB; a flat heap moves well under 1 MiB. */
const BOUND_BYTES = 2 * 1024 * 1024;

interface ProbeResult {
  growthBytes: number;
  before: number;
  after: number;
  grants: { name: string; value: number }[];
  localNames: number;
}

/** Runs the probe and resolves its report; the child is killed (by PID) after `limitMs` or when the test ends. */
async function probe(t: ExecutionContext, env: Record<string, string>, limitMs = 150_000): Promise<ProbeResult> {
  const child = spawn(process.execPath, ['--expose-gc', '--import=tsx', PROBE], {
    env: { ...process.env, REDIS_URL: fx.server.url, PREFIX: newPrefix(), NAMES: String(NAMES), NAME_CHARS: String(NAME_CHARS), LIMIT_MS: String(limitMs - 30_000), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  t.teardown(kill);
  const timer = setTimeout(kill, limitMs);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`heap probe exited with ${signal ?? code}: ${err.slice(-2_000)}`);
  const result = JSON.parse(out.trim().split('\n').pop()!) as ProbeResult;
  t.log(`heap growth over ${NAMES} names: ${(result.growthBytes / 1024 / 1024).toFixed(2)} MiB`);
  return result;
}

test('without instrument(), 10,000 distinct 1 KiB names acquired and released leave the heap flat', async (t) => {
  const r = await probe(t, { INSTRUMENT: '0' });
  t.is(r.localNames, 0);
  t.true(r.growthBytes < BOUND_BYTES, `the heap grew by ${r.growthBytes} bytes`);
});

test('with instrument({ maxNames: 10 }), 10,000 distinct 1 KiB names leave the heap flat and count under "other"', async (t) => {
  const r = await probe(t, { INSTRUMENT: '1', MAX_NAMES: '10' });
  t.true(r.growthBytes < BOUND_BYTES, `the heap grew by ${r.growthBytes} bytes`);
  const total = r.grants.reduce((n, g) => n + g.value, 0);
  const other = r.grants.filter((g) => g.name === 'other').reduce((n, g) => n + g.value, 0);
  const names = new Set(r.grants.map((g) => g.name));
  t.is(total, NAMES + 300, 'every grant is counted (the probe warms up on 300 names)');
  t.is(other, total - 10, 'the first 10 names are recorded as themselves, every later one as "other"');
  t.is(names.size, 11);
});
