/**
 * `fairlock exec` runs COMMAND in a process group of its own and lets the lock go only once that
 * whole group is gone: a step that COMMAND's shell started cannot go on running under a lock that the
 * next holder already has. Proved with shells that run a step, as in `kill PID`, `docker stop` or a
 * pod stop (SIGTERM to fairlock's PID alone), with a step left in the background, and with a lost
 * lease and a step that ignores SIGTERM. Every command appends to ONE shared file: the order of its
 * lines is the order of events (no clocks compared). Every process is killed by PID at the end.
 */
import { spawn } from 'node:child_process';
import { readFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { dropHolder } from './helpers/state.js';
import { lockKeys } from '../src/protocol/keys.js';
import { newLocks, scopeOf } from './helpers/cleanup.js';
import { BIN, NODE, isRunning, runCli, scriptBinary, until } from './helpers/cli-process.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();
let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fairlock-pgroup-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const linesOf = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** The PID a line "WHAT PID" of `file` names, once it is there. */
async function pidFrom(file: string, what: string): Promise<number> {
  let pid = 0;
  await until(() => {
    const line = linesOf(file).find((l) => l.startsWith(`${what} `));
    if (line) pid = Number(line.split(' ')[1]);
    return pid > 0;
  }, `"${what} PID" in ${file}`);
  return pid;
}

/** Kills `pids` (and the groups they lead) by PID when the test ends, whatever its outcome. */
function killAtEnd(t: ExecutionContext, pids: () => number[]): void {
  scopeOf(t).add(() => {
    for (const pid of pids()) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

test.serial('SIGTERM to fairlock while a step of its shell runs: the next holder never runs before that step has ended', async (t) => {
  const prefix = newPrefix('pg');
  const file = join(dir, `${prefix}.log`);
  const args = ['--redis', fx.server.url, '--prefix', prefix, '--quiet'];
  // The issue's shape: sh -c 'sh -c "sleep 5; echo done"; true', but short (3 s) and bounded.
  const step = `echo step $$ >> ${q(file)}; sleep 3; echo done >> ${q(file)}`;
  const first = runCli(t, ['exec', 'n', ...args, '--', 'sh', '-c', `echo cmd $$ >> ${q(file)}; sh -c ${q(step)}; true`]);
  const pids: number[] = [];
  killAtEnd(t, () => pids);
  pids.push(await pidFrom(file, 'cmd'), await pidFrom(file, 'step'));
  const next = runCli(t, ['exec', 'n', ...args, '--', 'sh', '-c', `echo next >> ${q(file)}`]);
  const locks = newLocks(t, fx.client, { prefix });
  await until(async () => (await locks.inspect('n')).queue.length === 1, 'the second exec to queue');
  first.proc.kill('SIGTERM'); // fairlock's PID only, as `kill PID` does
  const [r1, r2] = await Promise.all([first.done, next.done]);
  t.is(r1.code, 143, `the shell died of SIGTERM: ${r1.stderr}`);
  t.is(r2.code, 0, r2.stderr);
  // Let a step that survived finish (it would write "done" within ~3 s), then read the order.
  await until(() => !isRunning(pids[1]!), 'the step to end', 8_000).catch(() => undefined);
  const lines = linesOf(file);
  t.true(lines.includes('next'), lines.join(' | '));
  const done = lines.indexOf('done');
  t.true(done === -1 || done < lines.indexOf('next'), `the step wrote after the next holder: ${lines.join(' | ')}`);
  t.false(isRunning(pids[1]!), 'the step is gone');
});

test.serial('a step left running in the background when COMMAND exits is stopped before the lock goes to the next holder', async (t) => {
  const prefix = newPrefix('pg');
  const file = join(dir, `${prefix}.log`);
  const args = ['--redis', fx.server.url, '--prefix', prefix, '--quiet', '--grace', '500ms'];
  const locks = newLocks(t, fx.client, { prefix });
  const lease = await locks.lock('n').acquire({ timeoutMs: 5_000 });
  const step = `echo step $$ >> ${q(file)}; sleep 3; echo late >> ${q(file)}`;
  const first = runCli(t, ['exec', 'n', ...args, '--', 'sh', '-c', `sh -c ${q(step)} & i=0; until grep -q '^step' ${q(file)} || [ $i -gt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 0`]);
  await until(async () => (await locks.inspect('n')).queue.length === 1, 'the first exec to queue');
  const next = runCli(t, ['exec', 'n', ...args, '--', 'sh', '-c', `echo next >> ${q(file)}`]);
  await until(async () => (await locks.inspect('n')).queue.length === 2, 'the second exec to queue');
  await lease.release();
  const pids: number[] = [];
  killAtEnd(t, () => pids);
  pids.push(await pidFrom(file, 'step'));
  const [r1, r2] = await Promise.all([first.done, next.done]);
  t.is(r1.code, 0, r1.stderr);
  t.is(r2.code, 0, r2.stderr);
  await until(() => !isRunning(pids[0]!), 'the step to end', 8_000).catch(() => undefined);
  const lines = linesOf(file);
  const late = lines.indexOf('late');
  t.true(late === -1 || late < lines.indexOf('next'), `the background step wrote after the next holder: ${lines.join(' | ')}`);
  t.false(isRunning(pids[0]!), 'the step is gone');
});

test.serial('a lost lease: SIGTERM then SIGKILL reach a step that ignores SIGTERM, and it is gone before exit 76', async (t) => {
  const prefix = newPrefix('pg');
  const file = join(dir, `${prefix}.log`);
  // The step ignores SIGTERM (so do the sleeps it starts): only SIGKILL to its group stops it. Bounded: ~30 s.
  const step = `trap '' TERM; echo step $$ >> ${q(file)}; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`;
  const r = runCli(t, ['exec', 'l', '--redis', fx.server.url, '--prefix', prefix, '--lease', '1s', '--grace', '300ms', '--', 'sh', '-c', `sh -c ${q(step)}; true`]);
  const pids: number[] = [];
  killAtEnd(t, () => pids);
  pids.push(await pidFrom(file, 'step'));
  // Redis forgets the holder: the next heartbeat (every lease/3) finds the lease gone.
  const inspector = newLocks(t, fx.client, { prefix });
  const holder = (await inspector.inspect('l')).holder;
  t.truthy(holder, 'the exec holds the lock');
  t.is(await dropHolder(fx.client, lockKeys(prefix, 'l').state, holder!.id), 1);
  // Checked the moment fairlock exits (on 'exit', before the pipes close).
  const atExit = new Promise<boolean>((resolve) => r.proc.once('exit', () => resolve(isRunning(pids[0]!))));
  const res = await r.done;
  t.is(res.code, 76, res.stderr);
  t.regex(res.stderr, /lost the lock "l"/);
  t.false(await atExit, `the step (pid ${pids[0]}) still ran when fairlock exited 76: ${res.stderr}`);
  t.regex(res.stderr, /SIGKILL/);
});


test.serial('stdin a terminal: COMMAND stays in the foreground job, so a prompt that reads /dev/tty (sudo, ssh) still works', async (t) => {
  const script = scriptBinary();
  if (!script) {
    t.fail('`script` from util-linux is missing: it makes the pseudo-terminal of this test (apt-get install -y bsdutils; .ci/run does it)');
    return;
  }
  const prefix = newPrefix('pg');
  const prompt = `printf 'name? ' > /dev/tty; read x < /dev/tty; echo "got:$x"`;
  const command = `exec ${q(NODE)} ${q(BIN)} exec n --redis ${fx.server.url} --prefix ${prefix} --quiet -- sh -c ${q(prompt)}`;
  const proc = spawn(script, ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const kill = () => {
    try {
      if (proc.pid) process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  const limit = setTimeout(kill, 20_000);
  scopeOf(t).add(() => (clearTimeout(limit), kill(), done));
  await until(() => out.includes('name? '), `the prompt:\n${out}`);
  proc.stdin!.write('hello\n');
  t.is(await done, 0, out);
  t.regex(out, /got:hello/);
});
