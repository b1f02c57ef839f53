#!/usr/bin/env node
/** The `fairlock` command: a thin layer over the public API (see README.md, Command line). */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { EXIT, say } from './common.js';
import { escapeControls } from './escape-controls.js';
import { demoCommand } from './demo.js';
import { execCommand } from './exec.js';
import { statusCommand } from './status.js';
import { topCommand } from './top.js';

/** The package's version: package.json sits two levels up from both src/cli and dist/cli. */
const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Commander's message on one line; it may quote what the user typed: escaped (src/cli/escape-controls.ts). */
const oneLine = (text: string) => escapeControls(text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' '));

/** Errors are one line on stderr and throw a CommanderError (exit code 64, see main). */
function configure(c: Command, hint: (text: string) => string): Command {
  return c
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ outputError: (text, write) => write(`fairlock: ${oneLine(text)}${hint(text)}\n`) });
}

function program(): Command {
  const p = configure(new Command('fairlock'), () => ' (see fairlock --help)')
    .description('Fair, FIFO, blocking distributed locks, semaphores and read-write locks on Redis, with fencing tokens.')
    .version(version, '-V, --version');
  // `fairlock exec NAME ls -la`: the command's own options were taken for ours.
  const execHint = (text: string) =>
    /unknown option/.test(text) ? ' (put -- before the command: fairlock exec NAME [options] -- COMMAND [ARGS...])' : ' (see fairlock exec --help)';
  p.addCommand(configure(execCommand(), execHint));
  p.addCommand(configure(statusCommand(), () => ' (see fairlock status --help)'));
  p.addCommand(configure(topCommand(), () => ' (see fairlock top --help)'));
  p.addCommand(configure(demoCommand(), () => ' (see fairlock demo --help)'));
  return p;
}

async function main(argv: string[]): Promise<void> {
  const p = program();
  try {
    await p.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, --version and `help` exit 0; `fairlock` alone prints help and counts as bad usage.
      const ok = ['commander.helpDisplayed', 'commander.version'].includes(err.code) || (err.code === 'commander.help' && err.exitCode === 0);
      process.exitCode = ok ? EXIT.OK : EXIT.USAGE;
      return;
    }
    say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = EXIT.INTERNAL;
  }
}

// A reader that went away (`fairlock top | head`, a closed terminal): what we print has nowhere to go.
// Without a listener the stream's EPIPE would crash the process with a stack trace, and for `exec`
// before it released its lock; `top` stops on it (see live()), every other command goes on silently.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

await main(process.argv);
// Exit now rather than wait for stray handles (every command has already cleaned up after itself).
process.exit(process.exitCode ?? 0);
