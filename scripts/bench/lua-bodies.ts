/**
 * The Lua the profiling scripts send, built exactly as the client builds it, so that the bench
 * measures what runs in production (cost.ts checks the SHA against a real FairLocks run):
 *   new protocol: src/protocol/scripts.ts, `${luaReplyConstants()}\n${common}\n${script}`
 *                 (types.lua alone), KEYS = state, queue, sessions;
 *   old protocol: the seed's src/scripts.ts at OLD_REV, `${common}\n${script}` read with
 *                 `git show`, KEYS = owner, queue, sessions, counter.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { luaReplyConstants } from '../../src/protocol/codes.js';
import { escapeName, lockKeys, waiterId } from '../../src/protocol/keys.js';

/** The last commit of the old (owner/queue/sessions/counter) protocol. */
export const OLD_REV = process.env.OLD_REV ?? 'f76efb3';

export type ScriptName = 'acquire' | 'release' | 'cancel' | 'heartbeat' | 'extend' | 'inspect';

export interface Protocol {
  /** old: the seed protocol; new: src/protocol/lua; patched: a copy of it under test (cost.ts --lua-dir). */
  name: 'old' | 'new' | 'patched';
  /** Where the Lua came from. */
  source: string;
  body(script: ScriptName): string;
  /** `EVALSHA sha numkeys ...keys` for the name. */
  keys(prefix: string, name: string): string[];
  /** A waiter id of session `sid` (lease 5 s, auto-renewed, weight 1, exclusive). */
  id(sid: string, seq: number, leaseMs?: number): string;
  /** ARGV of acquire.lua after the id. */
  acquireArgs(livenessMs: number, mode: 'wait' | 'try', prefix: string): string[];
}

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
export const shaOf = sha1;

/**
 * The new protocol from `dir` (default src/protocol/lua), built as src/protocol/scripts.ts builds
 * it. `transform` edits common.lua (a profiling variant); it must change something.
 */
export function newProtocol(dir?: string, transform?: (common: string) => string, name: 'new' | 'patched' = dir ? 'patched' : 'new'): Protocol {
  const read = (n: string) =>
    readFileSync(dir ? `${dir}/${n}.lua` : fileURLToPath(new URL(`../../src/protocol/lua/${n}.lua`, import.meta.url)), 'utf8');
  let common = read('common');
  if (transform) {
    const changed = transform(common);
    if (changed === common) throw new Error('the variant did not apply to common.lua');
    common = changed;
  }
  const prelude = `${luaReplyConstants()}\n${common}`;
  return {
    name,
    source: dir ? `${dir}/*.lua` : 'src/protocol/lua (working tree)',
    body: (s) => `${prelude}\n${read(s)}`,
    keys: (prefix, name) => {
      const k = lockKeys(prefix, name);
      return ['3', k.state, k.queue, k.sessions];
    },
    id: (sid, seq, leaseMs = 5000) => waiterId(sid, seq, leaseMs, true, 1, 'x'),
    acquireArgs: (livenessMs, mode, prefix) => [String(livenessMs), mode, prefix, 'lock 1'],
  };
}

/** The old protocol from git, or the reason it cannot be had (no history, unknown revision). */
export function oldProtocol(rev = OLD_REV): Protocol | string {
  const cwd = fileURLToPath(new URL('../..', import.meta.url));
  const files = new Map<string, string>();
  try {
    for (const n of ['common', 'acquire', 'release', 'cancel', 'heartbeat', 'extend', 'inspect']) {
      files.set(n, execFileSync('git', ['show', `${rev}:src/lua/${n}.lua`], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
    }
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    return `git show ${rev}:src/lua/*.lua failed: ${String(e.stderr || e.message).trim().split('\n')[0]}`;
  }
  const common = files.get('common')!;
  return {
    name: 'old',
    source: `git show ${rev}:src/lua`,
    body: (s) => `${common}\n${files.get(s)!}`,
    keys: (prefix, name) => {
      const base = `${prefix}:{${escapeName(name)}}`;
      return ['4', `${base}:owner`, `${base}:queue`, `${base}:sessions`, `${base}:counter`];
    },
    id: (sid, seq, leaseMs = 5000) => `${sid}:${seq.toString(36)}:${leaseMs}:1`,
    acquireArgs: (livenessMs, mode, prefix) => [String(livenessMs), mode, prefix],
  };
}

/** The seed pattern's release: compare-and-delete, as the set-nx-poll rows run it. */
export { UNLOCK as COMPARE_AND_DELETE } from './adapters/set-nx-poll.js';
