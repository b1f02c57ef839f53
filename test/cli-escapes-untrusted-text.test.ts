/**
 * Text from Redis or from the user (names, prefixes, ids, arguments, bad option values) reaches the
 * terminal escaped, never raw, in `status`, `status NAME`, piped `top`, `exec` and usage errors: a name
 * with ESC/CSI, OSC 52 + BEL, a newline and forged row, C1 CSI, DEL and a bidi override shows as visible
 * escapes, with no forged line; so does a group (a tenant id) of that text. (`top` under a pseudo-terminal:
 * test/top.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import { escapeControls } from '../src/cli/escape-controls.js';
import { newLocks, scopeOf } from './helpers/cleanup.js';
import { runCli, until } from './helpers/cli-process.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();

/** Clears the screen, writes the clipboard (OSC 52 ... BEL), forges a row, C1 CSI, DEL, bidi override. */
const EVIL = 'x\x1b[2J\x1b]52;c;aGk=\x07\nforged-row lock 1 0\x9b31m\x7f\u202eevil\u2066';
/** How EVIL must be shown. */
const SHOWN = 'x\\x1b[2J\\x1b]52;c;aGk=\\x07\\nforged-row lock 1 0\\x9b31m\\x7f\\u{202e}evil\\u{2066}';
/** Any control (but the line feed fairlock ends its own lines with), bidi or separator character. */
// eslint-disable-next-line no-control-regex
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/u;

/** Asserts that `text` holds nothing raw from EVIL and no forged row, and shows EVIL escaped. */
function assertEscaped(t: ExecutionContext, text: string, what: string): void {
  const raw = RAW.exec(text);
  t.is(raw, null, `${what}: a raw ${JSON.stringify(raw?.[0])} at ${raw?.index}: ${JSON.stringify(text)}`);
  t.false(/^forged-row/m.test(text), `${what}: the forged row is a line of its own: ${JSON.stringify(text)}`);
  t.true(text.includes(SHOWN), `${what}: the name shown escaped: ${JSON.stringify(text)}`);
}

test('escapeControls shows C0, DEL, C1, bidi, separators and zero-width characters, and doubles backslashes', (t) => {
  t.is(escapeControls(EVIL), SHOWN);
  t.is(escapeControls('tab\there\r\0'), 'tab\\there\\r\\x00');
  t.is(escapeControls('a\u2028b\u2029c\u200bd\ufeffe\u{e0041}'), 'a\\u{2028}b\\u{2029}c\\u{200b}d\\u{feff}e\\u{e0041}');
  // A name that really holds a backslash and "x1b" cannot pass for an escaped ESC.
  t.is(escapeControls('lit\\x1b'), 'lit\\\\x1b');
  t.not(escapeControls('lit\\x1b'), escapeControls('lit\x1b'));
  t.is(escapeControls('jobs/tenant-42 ünïcødé 日本 ✓'), 'jobs/tenant-42 ünïcødé 日本 ✓', 'printable text of any script is left alone');
  for (let c = 0; c <= 0x10ffff; c += c < 0x3000 ? 1 : 97) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const out = escapeControls(String.fromCodePoint(c));
    if (RAW.test(out)) t.fail(`U+${c.toString(16)} passes raw`);
  }
});

test('status NAME and status (the listing) print a hostile name escaped', async (t) => {
  const prefix = newPrefix('esc');
  const locks = newLocks(t, fx.client, { prefix });
  const lease = await locks.lock(EVIL).acquire({ timeoutMs: 5_000 });
  const abort = new AbortController();
  const waiter = newLocks(t, fx.client, { prefix }).lock(EVIL).acquire({ signal: abort.signal, timeoutMs: 20_000 }).catch(() => undefined);
  scopeOf(t).add(() => (abort.abort(), waiter));
  await until(async () => (await locks.inspect(EVIL)).queue.length === 1, 'the waiter to queue');
  const args = ['--redis', fx.server.url, '--prefix', prefix];

  const one = await runCli(t, ['status', EVIL, ...args]).done;
  t.is(one.code, 0, one.stderr);
  assertEscaped(t, one.stdout, 'status NAME');
  t.regex(one.stdout, /^holder {2}token \d+/m);

  const list = await runCli(t, ['status', ...args]).done;
  t.is(list.code, 0, list.stderr);
  assertEscaped(t, list.stdout, 'status');
  t.regex(list.stdout, /^x\\x1b\[2J.*evil\\u\{2066\} +lock +1 +\d+ +\S+ +1$/m, 'one row, columns in place');

  // --json was already right: the name comes back exactly.
  const json = await runCli(t, ['status', ...args, '--json']).done;
  t.deepEqual((JSON.parse(json.stdout) as { locks: { name: string }[] }).locks.map((l) => l.name), [EVIL]);

  // A hostile prefix (user input; a prefix holds no space or brace) in the "nothing here" line.
  const empty = await runCli(t, ['status', '--redis', fx.server.url, '--prefix', `${prefix}-\x1b[2J\x1b]52;c;aGk=\x07\x9b31m\x7f\u202e`]).done;
  t.is(empty.code, 0, empty.stderr);
  t.is(RAW.exec(empty.stdout), null, JSON.stringify(empty.stdout));
  t.true(empty.stdout.includes(`${prefix}-\\x1b[2J\\x1b]52;c;aGk=\\x07\\x9b31m\\x7f\\u{202e}"`), JSON.stringify(empty.stdout));
  await lease.release();
});

test('top without a terminal (piped) prints a hostile name escaped', async (t) => {
  const prefix = newPrefix('esc');
  const locks = newLocks(t, fx.client, { prefix });
  await locks.lock(EVIL).acquire({ timeoutMs: 5_000 });
  const top = runCli(t, ['top', '--redis', fx.server.url, '--prefix', prefix, '--interval', '200ms']);
  await until(() => (top.stdout().match(/^fairlock top /gm) ?? []).length >= 2, `two snapshots:\n${top.stdout()}`);
  top.proc.kill('SIGTERM');
  const r = await top.done;
  t.is(r.code, 0, r.stderr);
  assertEscaped(t, r.stdout, 'top | cat');
  t.false(r.stdout.includes('\x1b'), 'no escape sequences at all in the plain snapshot');
});

test("exec's messages (holding, waiting, busy, timed out, the command line) show a hostile name escaped", async (t) => {
  const prefix = newPrefix('esc');
  const args = ['--redis', fx.server.url, '--prefix', prefix];
  const ran = await runCli(t, ['exec', EVIL, ...args, '--', 'true', EVIL]).done;
  t.is(ran.code, 0, ran.stderr);
  assertEscaped(t, ran.stderr, 'exec (holding, running, releasing)');
  t.regex(ran.stderr, /^fairlock: holding the lock /m);
  t.regex(ran.stderr, /running true x\\x1b/);

  const locks = newLocks(t, fx.client, { prefix });
  const lease = await locks.lock(EVIL).acquire({ timeoutMs: 5_000 });
  const busy = await runCli(t, ['exec', EVIL, ...args, '--timeout', '0', '--', 'true']).done;
  t.is(busy.code, 75, busy.stderr);
  assertEscaped(t, busy.stderr, 'exec --timeout 0 (busy)');
  const waited = await runCli(t, ['exec', EVIL, ...args, '--timeout', '300ms', '--', 'true']).done;
  t.is(waited.code, 75, waited.stderr);
  assertEscaped(t, waited.stderr, 'exec --timeout 300ms (waiting, timed out)');
  t.regex(waited.stderr, /position 1/);
  await lease.release();
});

/**
 * Proves a group (user input, like a name: a tenant id) reaches the terminal escaped wherever it is
 * shown: `status NAME` (holder, groups, queue), piped `top`, and exec's messages; --json keeps it exact.
 */
test('a hostile group is shown escaped by status NAME, top and exec', async (t) => {
  const prefix = newPrefix('esc');
  const locks = newLocks(t, fx.client, { prefix });
  const lease = await locks.lock('g').acquire({ group: EVIL, timeoutMs: 5_000 });
  const abort = new AbortController();
  const waiter = newLocks(t, fx.client, { prefix }).lock('g').acquire({ group: EVIL, signal: abort.signal, timeoutMs: 20_000 }).catch(() => undefined);
  scopeOf(t).add(() => (abort.abort(), waiter));
  await until(async () => (await locks.inspect('g')).queue.length === 1, 'the waiter to queue');
  const args = ['--redis', fx.server.url, '--prefix', prefix];

  const one = await runCli(t, ['status', 'g', ...args]).done;
  t.is(one.code, 0, one.stderr);
  assertEscaped(t, one.stdout, 'status NAME with a hostile group');
  t.is(one.stdout.split(`"${SHOWN}"`).length - 1, 3, `holder, groups and queue each show the group once: ${JSON.stringify(one.stdout)}`);
  const json = JSON.parse((await runCli(t, ['status', 'g', ...args, '--json']).done).stdout) as { groups: { group?: string }[]; holder: { group?: string } };
  t.is(json.holder.group, EVIL, '--json: the exact string');
  t.deepEqual(json.groups.map((g) => g.group), [EVIL]);

  const top = runCli(t, ['top', ...args, '--interval', '200ms']);
  await until(() => (top.stdout().match(/^fairlock top /gm) ?? []).length >= 2, `two snapshots:\n${top.stdout()}`);
  top.proc.kill('SIGTERM');
  const piped = await top.done;
  t.is(piped.code, 0, piped.stderr);
  assertEscaped(t, piped.stdout, 'top | cat with a hostile group');

  const ran = await runCli(t, ['exec', 'other', ...args, '--group', EVIL, '--', 'true']).done;
  t.is(ran.code, 0, ran.stderr);
  assertEscaped(t, ran.stderr, 'exec --group');
  t.true(ran.stderr.includes(`holding the lock "other" in group "${SHOWN}"`), ran.stderr);
  await lease.release();
});

test('usage errors echo a bad value escaped', async (t) => {
  for (const args of [
    ['status', 'x', '--redis', `not a url ${EVIL}`],
    ['status', '--limit', EVIL],
    ['exec', 'x', '--timeout', EVIL, '--', 'true'],
    [EVIL],
  ]) {
    const r = await runCli(t, args).done;
    t.is(r.code, 64, r.stderr);
    t.is(RAW.exec(r.stderr), null, `${args[0]}: ${JSON.stringify(r.stderr)}`);
    t.is(r.stderr.split('\n').length, 2, `one line: ${JSON.stringify(r.stderr)}`);
  }
});
