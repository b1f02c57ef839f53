/**
 * `fairlock top` under a pseudo-terminal draws the workload's names, kinds, holder counts and queue
 * lengths in the alternate screen, quits on `q` with exit 0 leaving that screen, shows a hostile lock
 * name escaped; `--json` prints one snapshot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { TopSnapshot } from '../src/cli/top.js';
import { newLocks, scopeOf } from './helpers/cleanup.js';
import { scriptBinary } from './helpers/cli-process.js';
import { useRedis } from './helpers/fixture.js';
import { freePort, newPrefix } from './helpers/redis.js';

const fx = useRedis();
const BIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const NODE = process.execPath;


interface Proc {
  proc: ChildProcess;
  output: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Starts a process in a group of its own, killed (the whole group, by PID) after 12 s or when `t` ends. */
function start(t: ExecutionContext, file: string, args: string[]): Proc {
  const proc = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const kill = () => {
    try {
      if (proc.pid && proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const limit = setTimeout(kill, 12_000);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.once('close', (code, signal) => {
      clearTimeout(limit);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  scopeOf(t).add(() => (kill(), done));
  return { proc, output: () => stdout, done };
}

/** Polls until `check` holds; fails after `timeoutMs`. */
async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A lock held, a semaphore of 2 with 2 holders and 1 waiter, a read-write lock with 2 readers. */
async function workload(t: ExecutionContext, prefix: string) {
  const locks = newLocks(t, fx.client, { prefix });
  await locks.lock('build').acquire({ timeoutMs: 5_000 });
  const gpu = locks.semaphore('gpu', { permits: 2 });
  await gpu.acquire({ timeoutMs: 5_000 });
  await gpu.acquire({ timeoutMs: 5_000 });
  const abort = new AbortController();
  const waiting = gpu.acquire({ signal: abort.signal, timeoutMs: 20_000 }).catch(() => undefined);
  scopeOf(t).add(() => (abort.abort(), waiting)); // runs before locks.close (last in, first out)
  const config = locks.readWrite('config');
  await config.read().acquire({ timeoutMs: 5_000 });
  await config.read().acquire({ timeoutMs: 5_000 });
  await until(async () => (await locks.inspect('gpu')).queue.length === 1, 'the third gpu request to queue');
}

const ALT_ON = '\x1b[?1049h';
const ALT_OFF = '\x1b[?1049l';
// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

test('top draws the names, kinds, holders and queues on a terminal, and q restores the terminal', async (t) => {
  const script = scriptBinary();
  if (!script) {
    t.fail('`script` from util-linux is missing: it makes the pseudo-terminal of this test (apt-get install -y bsdutils; .ci/run does it)');
    return;
  }
  const prefix = newPrefix('top');
  await workload(t, prefix);
  const command = `stty cols 160 rows 40 && exec '${NODE}' '${BIN}' top --redis ${fx.server.url} --prefix ${prefix} --interval 200ms`;
  const top = start(t, script, ['-qfec', command, '/dev/null']);
  // The last frame: what follows the last cursor-home.
  const screen = () => plain(top.output().split('\x1b[H').at(-1) ?? '');
  const row = (name: string) => screen().split('\n').find((l) => l.startsWith(`${name} `)) ?? '';
  await until(() => /^build +lock +1 +0 /.test(row('build')) && /^gpu +semaphore\/2 +2 +1 /.test(row('gpu')) && /^config +rw +2 +0 /.test(row('config')), `the three names on the screen:\n${screen()}`);
  t.true(top.output().includes(ALT_ON), 'drawn in the alternate screen');
  const s = screen();
  t.regex(s, /NAME +KIND +HOLDERS +QUEUE +OLDEST WAIT +GRANTS\/S/);
  t.regex(row('gpu'), /^gpu +semaphore\/2 +2 +1 +\d+(ms|\.\d+s) /, 'the oldest wait of the queued request');
  t.is((s.match(/^ +token \d+ +held \d.* +lease left .* +read +/gm) ?? []).length, 2, 'both readers with token, held for and lease left');
  t.is((s.match(/^ +token \d+ +held .* +weight 1 +/gm) ?? []).length, 2, 'both semaphore holders');

  top.proc.stdin!.write('q');
  const r = await top.done;
  t.is(r.code, 0, r.stderr);
  const out = r.stdout;
  t.true(out.lastIndexOf(ALT_OFF) > out.lastIndexOf(ALT_ON), 'left the alternate screen');
  t.true(out.lastIndexOf('\x1b[?25h') > out.lastIndexOf('\x1b[?25l'), 'showed the cursor again');
});

test('top --json prints one snapshot and exits', async (t) => {
  const prefix = newPrefix('top');
  await workload(t, prefix);
  const r = await start(t, NODE, [BIN, 'top', '--json', '--redis', fx.server.url, '--prefix', prefix]).done;
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as TopSnapshot;
  t.is(s.prefix, prefix);
  t.false(s.truncated);
  const byName = Object.fromEntries(s.locks.map((l) => [l.name, l]));
  t.deepEqual(Object.keys(byName).sort(), ['build', 'config', 'gpu']);
  t.is(byName.build!.kind, 'lock');
  t.is(byName.gpu!.kind, 'semaphore');
  t.is(byName.gpu!.limit, 2);
  t.is(byName.config!.kind, 'rw');
  t.deepEqual(s.locks.map((l) => [l.name, l.holders.length, l.queueLength]).sort(), [['build', 1, 0], ['config', 2, 0], ['gpu', 2, 1]]);
  t.true(byName.gpu!.oldestWaitMs! >= 0);
  t.is(byName.build!.oldestWaitMs, null);
  for (const l of s.locks) {
    t.is(l.grantsPerSec, null, 'one snapshot cannot know a rate');
    for (const h of l.holders) t.true(Number.isSafeInteger(h.token) && h.heldMs !== null && h.heldMs >= 0 && h.leaseLeftMs > 0, JSON.stringify(h));
  }
  t.deepEqual(byName.config!.holders.map((h) => h.mode), ['read', 'read']);
});

test('top without a terminal prints plain snapshots until SIGTERM, then exits 0', async (t) => {
  const prefix = newPrefix('top');
  await workload(t, prefix);
  const top = start(t, NODE, [BIN, 'top', '--redis', fx.server.url, '--prefix', prefix, '--interval', '200ms']);
  await until(() => (top.output().match(/^fairlock top /gm) ?? []).length >= 2, `two snapshots:\n${top.output()}`);
  top.proc.kill('SIGTERM');
  const r = await top.done;
  t.is(r.code, 0, r.stderr);
  t.false(r.stdout.includes('\x1b'), 'no escape sequences');
  const last = r.stdout.split(/^fairlock top /m).at(-1)!;
  t.regex(last, /^gpu +semaphore\/2 +2 +1 /m);
  t.regex(last, /^gpu .* 0\.00$/m, 'no grants on gpu since the first snapshot');
});

/**
 * Proves a reader that goes away (`fairlock top | head`, `fairlock status | head`) ends the command
 * quietly: no crash on EPIPE with a stack trace, and top stops instead of running on unread.
 */
test('top and status piped into a reader that closes early exit quietly (EPIPE), top at once', async (t) => {
  const prefix = newPrefix('top');
  await workload(t, prefix);
  for (const command of [
    `'${NODE}' '${BIN}' top --redis ${fx.server.url} --prefix ${prefix} --interval 100ms | head -c 10 >/dev/null; echo "exit \${PIPESTATUS[0]}" >&2`,
    `'${NODE}' '${BIN}' status --redis ${fx.server.url} --prefix ${prefix} | head -c 1 >/dev/null; echo "exit \${PIPESTATUS[0]}" >&2`,
  ]) {
    const r = await start(t, 'bash', ['-c', command]).done;
    t.is(r.code, 0, r.stderr);
    t.notRegex(r.stderr, /EPIPE|Unhandled|at .*\.js:\d+/, `no crash: ${r.stderr}`);
    t.regex(r.stderr, /^exit 0$/m, `the command exited 0 (${r.stderr.trim()})`);
  }
});

/** A lock name that clears the screen, writes the clipboard (OSC 52 + BEL), forges a row, C1 CSI, DEL, bidi override. */
const EVIL = 'x\x1b[2J\x1b]52;c;aGk=\x07\nforged-row lock 1 0\x9b31m\x7f\u202eevil';
const SHOWN = 'x\\x1b[2J\\x1b]52;c;aGk=\\x07\\nforged-row lock 1 0\\x9b31m\\x7f\\u{202e}evil';
/** top's own sequences: alternate screen, cursor, home, clear, erase to end of line / of screen. */
// eslint-disable-next-line no-control-regex
const OWN_SEQUENCES = /\x1b\[(\?1049[hl]|\?25[hl]|H|2J|K|J)/g;

test('top on a terminal shows a hostile lock name escaped: no raw control byte from it, no forged row', async (t) => {
  const script = scriptBinary();
  if (!script) {
    t.fail('`script` from util-linux is missing: it makes the pseudo-terminal of this test (apt-get install -y bsdutils; .ci/run does it)');
    return;
  }
  const prefix = newPrefix('top');
  const locks = newLocks(t, fx.client, { prefix });
  await locks.lock(EVIL).acquire({ timeoutMs: 5_000 });
  const command = `stty cols 200 rows 40 && exec '${NODE}' '${BIN}' top --redis ${fx.server.url} --prefix ${prefix} --interval 200ms`;
  const top = start(t, script, ['-qfec', command, '/dev/null']);
  await until(() => (top.output().match(/fairlock top /g) ?? []).length >= 2, `two frames:\n${JSON.stringify(top.output())}`);
  top.proc.stdin!.write('q');
  const r = await top.done;
  t.is(r.code, 0, r.stderr);
  const rest = r.stdout.replace(OWN_SEQUENCES, '');
  // eslint-disable-next-line no-control-regex
  const raw = /[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u.exec(rest);
  t.is(raw, null, `a raw ${JSON.stringify(raw?.[0])} in ${JSON.stringify(rest)}`);
  t.false(/^forged-row/m.test(plain(r.stdout)), 'no forged row');
  t.true(plain(r.stdout).includes(SHOWN), `the name shown escaped: ${JSON.stringify(plain(r.stdout))}`);
});

test('top: --help, bad usage 64, Redis unreachable 69, each failure one line', async (t) => {
  const help = await start(t, NODE, [BIN, 'top', '--help']).done;
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /--interval <duration>/);
  const closed = `redis://127.0.0.1:${await freePort()}`;
  for (const [args, code, message] of [
    [['top', '--interval', '10ms'], 64, /at least 100ms/],
    [['top', '--limit', '0'], 64, /--limit/],
    [['top', '--json', '--redis', closed], 69, /cannot connect to Redis/],
    [['top', '--redis', closed], 69, /cannot connect to Redis/],
  ] as const) {
    const r = await start(t, NODE, [BIN, ...args]).done;
    t.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, new RegExp(`^fairlock: .*${message.source}.*\\n$`));
  }
});

/**
 * Proves top shows how groups take turns on a name: a GROUPS column (`-` for a name without groups),
 * each holder's group, the name's groups in turn order under it, and the same in --json (inspect()'s
 * groups and perGroup, each holder's group).
 */
test('top shows the groups of a name: GROUPS, the group of each holder, the groups in turn order; --json has them', async (t) => {
  const prefix = newPrefix('top');
  const locks = newLocks(t, fx.client, { prefix });
  const gpu = locks.semaphore('gpu', { permits: 2, perGroup: 1 });
  await gpu.acquire({ group: 'a', timeoutMs: 5_000 });
  await gpu.acquire({ group: 'b', timeoutMs: 5_000 });
  const abort = new AbortController();
  const waiting = ['a', 'c'].map((group) => gpu.acquire({ group, signal: abort.signal, timeoutMs: 20_000 }).catch(() => undefined));
  scopeOf(t).add(() => (abort.abort(), Promise.all(waiting))); // runs before locks.close (last in, first out)
  await until(async () => (await locks.inspect('gpu')).queue.length === 2, 'the two group requests to queue');
  await locks.lock('plain').acquire({ timeoutMs: 5_000 });
  const groups = (await locks.inspect('gpu')).groups;
  t.deepEqual(groups.map((g) => [g.group, g.held, g.waiting]), [['a', 1, 1], ['c', 0, 1], ['b', 1, 0]]);

  const json = await start(t, NODE, [BIN, 'top', '--json', '--redis', fx.server.url, '--prefix', prefix]).done;
  t.is(json.code, 0, json.stderr);
  const byName = Object.fromEntries((JSON.parse(json.stdout) as TopSnapshot).locks.map((l) => [l.name, l]));
  t.is(byName.gpu!.perGroup, 1);
  t.deepEqual(byName.gpu!.groups, groups);
  t.deepEqual(byName.gpu!.holders.map((h) => h.group), ['a', 'b']);
  t.is(byName.plain!.perGroup, undefined);
  t.deepEqual(byName.plain!.groups, [{ held: 1, waiting: 0, capped: false }], 'the default group: no group field');

  const top = start(t, NODE, [BIN, 'top', '--redis', fx.server.url, '--prefix', prefix, '--interval', '200ms']);
  await until(() => (top.output().match(/^fairlock top /gm) ?? []).length >= 2, `two snapshots:\n${top.output()}`);
  top.proc.kill('SIGTERM');
  const r = await top.done;
  t.is(r.code, 0, r.stderr);
  const last = r.stdout.split(/^fairlock top /m).at(-1)!;
  t.regex(last, /^NAME +KIND +HOLDERS +QUEUE +GROUPS +OLDEST WAIT +GRANTS\/S$/m);
  t.regex(last, /^gpu +semaphore\/2 +2 +2 +3 +\S+ +\S+$/m);
  t.regex(last, /^plain +lock +1 +0 +- +- +\S+$/m);
  t.is((last.match(/^ +token \d+ .* weight 1 {2}group "[ab]" /gm) ?? []).length, 2, 'each holder with its group');
  t.regex(last, /^ {4}group "a" +holds 1 {2}waiting 1(  capped)?\n {4}group "c" +holds 0 {2}waiting 1\n {4}group "b" +holds 1 {2}waiting 0\n/m);
});
