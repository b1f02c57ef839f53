/**
 * Running the built `fairlock` binary (node dist/cli/main.js) from a test, and cleaning up after it.
 *
 * fairlock runs in a process group of its own; `exec` runs its COMMAND in another one (a session of
 * its own). When the test ends, whatever its outcome, `killCliTree` SIGKILLs the groups of
 * fairlock's children (the COMMAND and every step it started) and then fairlock's own group, by PID.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { scopeOf } from './cleanup.js';

export const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const NODE = process.execPath;

interface ProcStat {
  state: string;
  ppid: number;
  pgid: number;
}

/** Fields of /proc/PID/stat, or undefined when the process does not exist (or there is no /proc). */
function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const [state, ppid, pgid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid), pgid: Number(pgid) };
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is a running process. A zombie (dead, not yet reaped) counts as gone: where PID 1
 * does not reap orphans (some containers), a killed step stays a zombie for ever.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = procStat(pid);
  return stat === undefined ? readdirSafe('/proc').length === 0 : stat.state !== 'Z' && stat.state !== 'X';
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function kill(target: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(target, signal);
  } catch {
    // already gone
  }
}

/** SIGKILLs the process groups of `pid`'s children that are not `pid`'s own group, then `pid`'s group. */
export function killCliTree(pid: number): void {
  const own = procStat(pid)?.pgid ?? pid;
  for (const entry of readdirSafe('/proc')) {
    const child = Number(entry);
    if (!Number.isInteger(child)) continue;
    const stat = procStat(child);
    if (stat?.ppid === pid && stat.pgid !== own && stat.pgid > 1) kill(-stat.pgid);
  }
  kill(-pid);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has exited and its pipes closed; never rejects. */
  done: Promise<CliResult>;
}

/**
 * Starts `node dist/cli/main.js ...args` in a process group of its own, stdin from /dev/null. Its
 * tree is killed after `limitMs` (no test can hang) and when test `t` ends.
 */
export function runCli(t: ExecutionContext, args: string[], options: { env?: NodeJS.ProcessEnv; limitMs?: number } = {}): CliRun {
  const proc = spawn(NODE, [BIN, ...args], { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let closed = false;
  const stop = () => closed || proc.pid === undefined || killCliTree(proc.pid);
  const limit = setTimeout(stop, options.limitMs ?? 30_000);
  const done = new Promise<CliResult>((resolve) =>
    proc.once('close', (code, signal) => {
      closed = true;
      clearTimeout(limit);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  scopeOf(t).add(() => (stop(), done));
  return { proc, stdout: () => stdout, stderr: () => stderr, done };
}

/** Polls until `check` holds; throws after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `script` from util-linux: the pseudo-terminal (.ci/run installs it when missing). */
export function scriptBinary(): string | undefined {
  try {
    const path = execFileSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).trim();
    return /util-linux/.test(execFileSync(path, ['--version'], { encoding: 'utf8' })) ? path : undefined;
  } catch {
    return undefined;
  }
}
