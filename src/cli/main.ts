#!/usr/bin/env node
/** The `fairlock` command: a thin layer over the public API (see docs/cli.md). */
import { Command, CommanderError } from 'commander';
import { EXIT, say } from './common.js';
import { demoCommand } from './demo.js';
import { execCommand } from './exec.js';
import { statusCommand } from './status.js';

export function program(): Command {
  const p = new Command('fairlock')
    .description('A fair, FIFO, blocking distributed lock on Redis with fencing tokens.')
    .version('0.1.0', '-V, --version')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      // One line per error, exit code 64 (see main below).
      outputError: (text, write) => write(`fairlock: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (see --help)\n`),
    });
  p.addCommand(execCommand());
  p.addCommand(statusCommand());
  p.addCommand(demoCommand());
  return p;
}

async function main(argv: string[]): Promise<void> {
  const p = program();
  // Subcommands added with addCommand() do not inherit these settings: apply them to each one.
  for (const c of p.commands) {
    c.exitOverride().configureOutput(p.configureOutput()).showSuggestionAfterError();
  }
  const exec = p.commands.find((c) => c.name() === 'exec')!;
  exec.configureOutput({
    // `fairlock exec NAME ls -la`: the command's options were taken for ours.
    outputError: (text, write) => {
      const hint = /unknown option/.test(text) ? ' (put -- before the command: fairlock exec NAME [options] -- COMMAND [ARGS...])' : ' (see fairlock exec --help)';
      write(`fairlock: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}${hint}\n`);
    },
  });
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

await main(process.argv);
// Exit now rather than wait for stray handles (every command has already cleaned up after itself).
process.exit(process.exitCode ?? 0);
