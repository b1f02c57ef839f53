/**
 * The process group of `fairlock exec`'s COMMAND: signalling all of it, and telling whether any of it
 * still runs. COMMAND is spawned detached (a session and process group of its own, whose id is its
 * PID), so that the shell's steps, their children and background jobs can be reached together and
 * the lock let go only once none of them runs (README, Command line, `fairlock exec`).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Sends `signal` (0: none, just check) to every process of group `pgid`; false when the group is empty. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    // EPERM: a member runs as another user (a setuid step): it is there, but out of our reach.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a process of group `pgid` still runs. kill(-pgid, 0) also finds zombies (dead, not yet
 * reaped): where PID 1 does not reap orphans (some containers), a killed step would stay one for
 * ever. So on Linux the members found in /proc decide: a group of zombies only has ended. Elsewhere
 * (no /proc) kill(-pgid, 0) alone decides.
 */
export function groupRuns(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  if (!entries.includes('self')) return true;
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}
