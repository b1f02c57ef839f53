/**
 * Every numeric option of every fairlock command takes decimal integers only (durations: with an
 * optional unit): hex, octal, binary, exponents, fractions, signs, spaces, underscores, empty values and
 * values above Number.MAX_SAFE_INTEGER are refused with exit 64 and a one-line message naming the
 * option. The parser (src/cli/common.ts) is checked value by value, the rest through the built binary.
 */
import test from 'ava';
import type * as Common from '../src/cli/common.js';
import { runCli } from './helpers/cli-process.js';

/** Refused as a count and as a duration alike. */
const BAD_NUMBERS = ['0x10', '0X10', '0o7', '0b11', '1e3', '1E3', '1.5', '.5', '5.', '-1', '+5', ' 5', '5 ', '', ' ', '5_000', '1,000', 'Infinity', 'NaN', '１６', '010', '9007199254740993', '99999999999999999999'];
const BAD_DURATIONS = [...BAD_NUMBERS.map((v) => `${v}s`), '0x10s', '1e3ms', '1.5h', '-5s', '+5s', '5 s', 's', 'ms', '5sec', '5S', '10ms ', '5s5', '1w', '30d'];

test('parseInteger: decimal integers only, within the range; parseDuration: a decimal integer and an optional unit', async (t) => {
  const { parseDuration, parseInteger } = (await import('../src/cli/common.js')) as typeof Common;
  const count = parseInteger(0, Number.MAX_SAFE_INTEGER);
  for (const [v, n] of [['0', 0], ['16', 16], ['1000', 1000], ['9007199254740991', 9007199254740991]] as const) t.is(count(v), n, v);
  for (const v of BAD_NUMBERS) t.throws(() => count(v), undefined, JSON.stringify(v));
  t.throws(() => parseInteger(1, 10)('0'));
  t.throws(() => parseInteger(1, 10)('11'));
  for (const [v, n] of [['0', 0], ['250', 250], ['500ms', 500], ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['2d', 172_800_000], ['2147483647', 2147483647]] as const) t.is(parseDuration(v), n, v);
  for (const v of [...BAD_NUMBERS, ...BAD_DURATIONS]) t.throws(() => parseDuration(v), undefined, JSON.stringify(v));
});

/** Every numeric option: the command and option, and a value it takes (to show the rest of the line is fine). */
const OPTIONS: [string[], string][] = [
  [['exec', 'x', '--permits'], '--permits'],
  [['exec', 'x', '--permits', '20', '--weight'], '--weight'],
  [['exec', 'x', '--timeout'], '--timeout'],
  [['exec', 'x', '--lease'], '--lease'],
  [['exec', 'x', '--grace'], '--grace'],
  [['status', '--limit'], '--limit'],
  [['top', '--limit'], '--limit'],
  [['top', '--interval'], '--interval'],
  [['demo', '--workers'], '--workers'],
  [['demo', '--rounds'], '--rounds'],
  [['demo', '--hold'], '--hold'],
  [['demo', '--permits'], '--permits'],
];

test('every numeric option of every command refuses hex, exponents, fractions, signs, spaces and junk units: exit 64 naming the option', async (t) => {
  const closed = 'redis://127.0.0.1:1'; // never reached: the usage error comes first
  const jobs: { args: string[]; option: string }[] = [];
  for (const [head, option] of OPTIONS) {
    const duration = ['--timeout', '--lease', '--grace', '--interval', '--hold'].includes(option);
    for (const value of duration ? ['0x10', '0x10s', '1e3ms', '+5s', '1.5s', ' 5s', ''] : ['0x10', '1e1', '+5', '1.5', ' 5', '', '9007199254740993']) {
      const tail = head[0] === 'exec' ? ['--redis', closed, '--', 'true'] : head[0] === 'demo' ? ['--redis', closed] : ['--redis', closed];
      jobs.push({ args: [...head, value, ...tail], option });
    }
  }
  // A few at a time: each is one short node process.
  for (let i = 0; i < jobs.length; i += 6) {
    await Promise.all(
      jobs.slice(i, i + 6).map(async ({ args, option }) => {
        const r = await runCli(t, args, { limitMs: 20_000 }).done;
        const what = JSON.stringify(args);
        t.is(r.code, 64, `${what}: ${r.stderr}`);
        t.is(r.stderr.split('\n').length, 2, `${what}: one line: ${r.stderr}`);
        t.true(r.stderr.startsWith('fairlock: ') && r.stderr.includes(option), `${what}: names ${option}: ${r.stderr}`);
      }),
    );
  }
});

test('exec --permits 0x10 is refused (it used to mean 16); --permits 16 is taken', async (t) => {
  const hex = await runCli(t, ['exec', 'x', '--permits', '0x10', '--redis', 'redis://127.0.0.1:1', '--', 'true']).done;
  t.is(hex.code, 64, hex.stderr);
  t.regex(hex.stderr, /--permits <n>' argument '0x10' is invalid.*decimal/);
  // A valid value gets past the parsing: the next failure is the unreachable Redis (69).
  const ok = await runCli(t, ['exec', 'x', '--permits', '16', '--weight', '16', '--timeout', '1s', '--redis', 'redis://127.0.0.1:1', '--', 'true']).done;
  t.is(ok.code, 69, ok.stderr);
});
