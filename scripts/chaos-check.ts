/**
 * The chaos checker: a pure function of the event log and the fenced stores' accepted-writes logs
 * (the driver that makes them is chaos-lib.ts; the worker that writes most lines is chaos-worker.ts).
 *
 * The log is one Redis list, so positions in it are a real-time order (see chaos-lib.ts). Lines:
 *   kind K L [C]                  the run's primitive, first line: "lock 1", "semaphore <permits>",
 *                                 "rw 0" (a log without one is a lock's); C: a semaphore's perGroup cap
 *   spawn P | ready P | done P | exit P code signal           process P's life (driver / worker)
 *   kill P F | pause P F | resume P F | disconnect P F | disconnected P F
 *                                 fault F (f1, f2, ...) of P, logged by the driver before (kill,
 *                                 pause, disconnect) or after (resume, disconnected) it acts
 *   partition P F holder|waiter|subscriber silent|reset | healed P F
 *                                 fault F: P's lock connections (holder, waiter: P held or waited
 *                                 then) or its wake-up subscriber alone cut by the driver's proxies,
 *                                 logged before the cut and after the heal. A holder or waiter cut
 *                                 is a fault window of P like the others. A subscriber cut alone
 *                                 excuses nothing: the waiter's heartbeats still reach Redis, a
 *                                 hand-off lives until the waiter's liveness deadline, and a lost
 *                                 wake-up is found by the next heartbeat (DESIGN: wake-ups).
 *                                 Counted (not a violation): the acquires of P queued after its
 *                                 subscriber was cut and entered before `healed`, i.e. granted
 *                                 with no wake-up to tell them.
 *   settled P F                   one liveness period (driver's own clock) after fault F ended (a
 *                                 kill: after the process exited; its session has lapsed by then)
 *   call P op lock [weight=N] [mode=read|write] [group=G]   before acquire() is called (weight:
 *                                 permits of a semaphore acquire, default 1; mode: the side of a
 *                                 read-write lock; group: the group it names, none = no group)
 *   queued P op lock position     from onQueued: the enqueue script has run in Redis
 *   enter P op lock token [weight=N] [mode=..]    after acquire() resolved, before the section
 *   leave P op lock token entered=0|1   after the section; entered: signal not aborted when read
 *                                 right after `enter` landed
 *   verdict P op lock token held=0|1    signal not aborted when read after `leave` landed; a lease
 *                                 only goes from held to lost, so held=1 proves it was believed
 *                                 held at every moment from `enter` to `leave` in the log
 *   acqerr P op lock code [waited=ms] message | relerr P op lock token code
 *   (enter and acqerr carry waited=<ms>: the acquire's duration by the worker's own monotonic
 *   clock, a duration of one process, never compared with another's; the longest wait is its max)
 *
 * A quorum run (chaos --quorum N) adds, after the kind line:
 *   quorum N lease=ms                       the run is over N masters (kind lock)
 *   master M kill|stop|restart|partition F  fault F of master M begins (driver, before it acts):
 *                                 SIGKILL then a restart with its AOF, SIGSTOP then SIGCONT, SIGKILL
 *                                 then a restart empty on the same port, its proxy cut then healed
 *   master M back F               the master answers again (driver, after it acted)
 *   master M settled F            one settle period (lease + liveness + command timeout, the
 *                                 driver's clock) after `back`: the fault's window ends here
 *   majority down F M1,M2.. bound=ms | majority downed F | majority up F | majority settled F
 *                                 the optional phase in which a majority is down: before the driver
 *                                 acts, after it acted, before it heals, a settle period after
 *   queued P op lock position master=M      the master the acquire first queued on
 *   mdown P M | mup P M           process P's quorum counted master M unreachable / reachable again
 *
 * A cluster run (chaos --cluster, scripts/chaos-cluster.ts) adds, after the kind line:
 *   cluster nodes=N durability=D            the workers lock through a Redis Cluster of N nodes
 *   cluster kill|failover|migrate|partition|replica F name=.. master=.. [..]
 *                                 fault F of the cluster begins (driver, before it acts)
 *   cluster promoted F .. | cluster back F  a replica was promoted / the cluster is stable again
 *   cluster unstable F message    the fault's act or recovery failed (a note, not a violation)
 *   cluster settled F             one lease + liveness period (driver's clock) after `back`
 *   From the fault line to `settled` is the fault's window. A waiter whose wait (queued to enter)
 *   overlaps one is excused from the fifo check (a failover may lose its queue entry, a partition
 *   lapses its session: it re-enters), never from the token or overlap checks: a grant lost in a
 *   failover is acceptable only if its holder learned it (held=0 or entered=0, counted per fault
 *   kind as lost-and-reported); a lost grant kept silent (held=1) under a later holder is an overlap.
 *
 * "Fit" is the primitive's exclusion rule, applied to a set of sections held at one moment: a lock
 * fits one; a semaphore fits when the weights add up to at most its permits (and, with a perGroup
 * cap, the weights of each group to at most the cap); a read-write lock fits any number of reads,
 * or one write alone.
 * Violations:
 *   - overlap: at the `enter` (entered=1) of a section, that section and the sections with held=1
 *     open there (`enter` before, `leave` after it) do not fit (all believed they held when that
 *     `enter` landed); also a lease believed lost at `enter` yet held at `leave` (a lost lease came
 *     back).
 *   - token: a token entered twice on a lock. And a token lower than one entered before it: the
 *     engine grants in ticket (= token) order, so when B (entered=1) enters after A with
 *     token(B) < token(A), B was granted no later than A, before A's `enter`, and was held (B still
 *     believed it at its own `enter`) from A's `enter` to its own: B counts as held over that span,
 *     and a point of it where the held sections do not fit is a violation (either the grants were
 *     out of order or Redis held more than fits). For a lock any such B is one (this is "tokens
 *     increase in the order they are entered"); for a semaphore or a read-write lock, holders that
 *     may be held together can log their `enter` in either order. Also: `enter` of A before `call`
 *     of B on one lock, both entered, and token(B) < token(A) (a later caller got a lower token
 *     than a grant already made), for the A that the fifo check below does not cover.
 *   - fenced: for a lock, a section with held=1 whose `b` or `e` write is missing from the accepted
 *     log (a store that refuses a token lower than the highest seen), or two holders' writes
 *     interleaved in it. For a read-write lock the store refuses a read whose token is lower than
 *     the highest write's, and a write whose token is lower than the highest read's or write's; a
 *     section with held=1 must see both writes accepted, and the writes of two sections that do
 *     not fit together must not interleave. A semaphore is not fenced (its holders are concurrent;
 *     tokens do not order them): no store.
 *   - liveness: a process that was never killed whose acquire failed with LOCK_TIMEOUT, whose `call`
 *     has no outcome (enter or acqerr), or that never logged `done`.
 *   - fifo: `queued` of A precedes `call` of B on one lock in the log, both entered, and yet
 *     token(B) < token(A); excused when a fault window of A's process (from the kill/pause/
 *     disconnect/partition line of a fault, but a subscriber cut's, to its `settled` line, or to
 *     the end for a kill) overlaps A's
 *     wait from `queued` to `enter`: a faulted waiter may lose its place by re-entering. With groups
 *     (DESIGN §7) only pairs of one group are held to it (groups take turns); the token check
 *     above (enter of A before call of B) holds across groups, as tokens are handed out at grant.
 *   - rr (round robin, with groups, when every request weighs 1 and there is no perGroup cap): a
 *     witness B of group Y, queued and entered, its wait free of faults of its process (so its
 *     element stayed in Y's list from `queued` to its grant, and Y was in the rotation all along).
 *     Its window: the grants with a token from the lowest token of those called after B's `queued`
 *     (granted after it) up to B's token (granted before B). The rotation serves Y between any two
 *     grants of another group X while Y waits, so X has at most one grant more than Y in the window.
 *     Grants that the log does not show would make this unsound, so a witness is used only when
 *     none of Y can hide in its window. A request of Y called before B queued (so it may be ahead of
 *     B) may hide one when it has no `enter` (its process was killed, or its acquire failed) or a
 *     fault of its process lies between its call and its enter (a hand-off to a paused or cut-off
 *     waiter lapses unseen; it is granted again later under another token). Such a request must be
 *     settled before B queued: entered (every grant it had came before its enter), or its process
 *     killed and `settled` (its session lapsed: a dead waiter is dropped, never granted), or some
 *     request of Y called after its last line entered (FIFO inside Y: the hidden one's elements
 *     were ahead, so popped first). Hidden grants of X only make X's count too low. Not checked (faults
 *     make it unsound or the rule allows it): weights above 1 (a group's pass grows by its weight:
 *     turns are not one grant each), a perGroup cap (a capped group is passed over while holders
 *     the log cannot see, e.g. a killed process's lease, keep it capped), and a head that does not
 *     fit stopping everyone (only with weights).
 *     In a quorum run this count is reported as `unfair` (not a violation) and is taken only where
 *     it is sound: A first queued on master 0, and both A's and B's acquires (call to enter) free of
 *     their process's faults, of their process's mdown..mup spans, and of every master fault
 *     window. There the chain promises master 0's FIFO order (DESIGN §8); elsewhere it does not (a
 *     client that skips master 0 may pass or be passed, a restarted master loses its queue).
 *     The token check above (enter of A before call of B) covers every pair of a quorum run.
 *   - quorum (a quorum run): in the majority phase, an acquire called between `majority downed`
 *     and `majority up` that enters before `majority up` (a grant without a majority), or fails
 *     there with another code than QUORUM_LOST, or whose waited= exceeds the bound of the
 *     `majority down` line (it hung).
 */
import { firstIndex } from './first-index.js';

export type ChaosKind = 'lock' | 'semaphore' | 'rw';

/** What a quorum run adds to the result. */
export interface QuorumResult {
  masters: number;
  /** Master faults by kind. */
  masterFaults: { kill: number; stop: number; restart: number; partition: number };
  /** FIFO inversions where the chain promises master 0's order (see the header), and the pairs checked. */
  unfair: number;
  unfairPairs: number;
  /** mdown lines: a worker's quorum counted a master unreachable. */
  masterDownMarks: number;
  /** The longest wait (waited=, ms) of an acquire that passed the unfair check's conditions. */
  longestUntouchedWaitMs: number;
  /** The majority phases (0 or 1) and what the acquires called in them did. */
  majority: { phases: number; calls: number; quorumLost: number; otherErrors: number; maxWaitMs: number; boundMs: number };
}

/** What a cluster run adds to the result. */
export interface ClusterResult {
  durability: number;
  /** Cluster faults by kind. */
  faults: Record<string, number>;
  /** Sections whose holder learned of a loss (held=0 or entered=0) inside a fault window, by the fault's kind. */
  lostReported: Record<string, number>;
  /** Faults whose act or recovery failed. */
  unstable: number;
}

export interface ChaosResult {
  kind: ChaosKind;
  /** Permits of a semaphore (1 for a lock, 0 for a read-write lock). */
  limit: number;
  grants: number;
  sections: number;
  kills: number;
  pauses: number;
  disconnects: number;
  /** Partitions of a process's lock connections, or of its subscriber alone. */
  partitions: number;
  /** Acquires queued while their process's subscriber alone was cut, and entered before the heal. */
  grantsWhileSubscriberCut: number;
  lost: number;
  acquireErrors: number;
  /** Acquire errors by code (a disconnect can fail an acquire whose script reply was lost). */
  errorCodes: Record<string, number>;
  fifoPairs: number;
  /** Pairs (enter of A before call of B) checked for a later caller's lower token, beyond fifoPairs. */
  tokenPairs: number;
  /** Groups named by the acquires (0: none), and the semaphore's perGroup cap. */
  groups: number;
  perGroup?: number;
  /** Round-robin windows checked (witnesses, see rr in the header), and why none were (when so). */
  rrWindows: number;
  rrSkipped?: string;
  violations: { overlap: number; token: number; fenced: number; liveness: number; fifo: number; rr: number; quorum: number };
  /** The longest acquire that entered (waited=, the worker's own clock), ms. */
  longestWaitMs: number;
  /** Set in a quorum run. */
  quorum?: QuorumResult;
  /** Set in a cluster run. */
  cluster?: ClusterResult;
  details: string[];
}

export const totalViolations = (r: ChaosResult): number => Object.values(r.violations).reduce((a, b) => a + b, 0);

export function summary(r: ChaosResult): string {
  const v = r.violations;
  const kind =
    (r.kind === 'semaphore' ? `semaphore permits=${r.limit}` : r.kind) +
    (r.groups > 0 ? ` groups=${r.groups}${r.perGroup === undefined ? '' : ` perGroup=${r.perGroup}`}` : '');
  const q = r.quorum;
  if (q) {
    const mf = q.masterFaults;
    const mj = q.majority;
    return (
      `chaos (quorum of ${q.masters}): grants=${r.grants} violations=${totalViolations(r)} ` +
      `(overlap=${v.overlap} token=${v.token} fenced=${v.fenced} liveness=${v.liveness} quorum=${v.quorum}) ` +
      `unfair=${q.unfair} of ${q.unfairPairs} pairs longest-wait=${r.longestWaitMs}ms (untouched ${q.longestUntouchedWaitMs}ms) ` +
      `faults: worker kill=${r.kills} pause=${r.pauses} master kill=${mf.kill} stop=${mf.stop} restart=${mf.restart} partition=${mf.partition} ` +
      `majority-phases=${mj.phases}${mj.phases ? ` (calls=${mj.calls} QUORUM_LOST=${mj.quorumLost} other=${mj.otherErrors} max-wait=${mj.maxWaitMs}ms bound=${mj.boundMs}ms)` : ''} ` +
      `lost-leases=${r.lost} acquire-errors=${r.acquireErrors}${r.acquireErrors ? JSON.stringify(r.errorCodes) : ''} mdown-marks=${q.masterDownMarks} ` +
      `token-pairs-checked=${r.tokenPairs}`
    );
  }
  const c = r.cluster;
  const cl = c
    ? ` cluster(durability=${c.durability}): faults ${Object.entries(c.faults).map(([k, n]) => `${k}=${n}`).join(' ') || 'none'}` +
      ` lost-reported ${Object.entries(c.lostReported).map(([k, n]) => `${k}=${n}`).join(' ') || 'none'}${c.unstable ? ` unstable=${c.unstable}` : ''}`
    : '';
  return (
    `chaos (${kind}${c ? ', cluster' : ''}): grants=${r.grants} sections=${r.sections} kills=${r.kills} pauses=${r.pauses} disconnects=${r.disconnects} ` +
    (r.partitions > 0 ? `partitions=${r.partitions} (granted-while-subscriber-cut=${r.grantsWhileSubscriberCut}) ` : '') +
    `lost-leases=${r.lost} acquire-errors=${r.acquireErrors}${r.acquireErrors ? JSON.stringify(r.errorCodes) : ''} ` +
    `fifo-pairs-checked=${r.fifoPairs} token-pairs-checked=${r.tokenPairs} ` +
    (r.groups > 0 ? `rr-windows-checked=${r.rrWindows}${r.rrSkipped ? ` (${r.rrSkipped})` : ''} ` : '') +
    `violations=${totalViolations(r)} (overlap=${v.overlap} token=${v.token} fenced=${v.fenced} liveness=${v.liveness} fifo=${v.fifo}` +
    (r.groups > 0 ? ` rr=${v.rr}` : '') +
    ')' +
    cl
  );
}

/** One acquire call, put together from its lines (positions are indices in the event log). */
interface Op {
  op: string;
  pid: number;
  lock: string;
  /** Permits taken (1 for a lock and for either side of a read-write lock). */
  weight: number;
  /** 'r' or 'w' on a read-write lock, 'x' otherwise. */
  mode: 'x' | 'r' | 'w';
  /** The group named ('' = none). */
  group: string;
  call?: number;
  queued?: number;
  enter?: number;
  token?: number;
  leave?: number;
  entered?: boolean;
  verdict?: number;
  held?: boolean;
  acqerr?: { at: number; code: string; message: string };
  /** waited= of its enter or acqerr (the worker's own clock). */
  waitedMs?: number;
  /** master= of its queued line (a quorum run). */
  queuedMaster?: number;
}

interface Pid {
  pid: number;
  killed: boolean;
  done: boolean;
  exit?: string;
  /** Fault windows by fault id: from the kill/pause/disconnect/partition line to the settled line (or the end). */
  faults: Map<string, { from: number; to: number }>;
  /** Cuts of the subscriber alone, by fault id (no excusal: see partition in the header). */
  subscriberCuts: Map<string, { from: number; to: number; healed?: number }>;
  /** A quorum run: spans from `mdown P M` to `mup P M` (or the end). */
  downs: { master: number; from: number; to: number }[];
}

/** Number of elements of the ascending array `xs` that are < x. */
function countBelow(xs: number[], x: number): number {
  return firstIndex(xs.length, (i) => xs[i]! >= x);
}

/**
 * For each A of `as` (with its position `at`) counts the B of `bs` whose `call` comes after `at`
 * (the pairs) and, among them, those with a token lower than A's (the inversions). Fenwick tree over
 * token ranks: O(n log n).
 */
function inversions(
  as: { at: number; o: Op }[],
  bs: Op[],
  tokens: number[],
  onBad: (a: { at: number; o: Op }, bad: number, worst: Op) => void,
): number {
  const sortedAs = [...as].sort((x, y) => y.at - x.at);
  const sortedBs = [...bs].sort((x, y) => y.call! - x.call!);
  const rank = (t: number) => countBelow(tokens, t) + 1; // 1-based
  const tree = new Array<number>(tokens.length + 1).fill(0);
  const add = (i: number) => {
    for (; i < tree.length; i += i & -i) tree[i]!++;
  };
  const below = (i: number) => {
    let s = 0;
    for (; i > 0; i -= i & -i) s += tree[i]!;
    return s;
  };
  let pairs = 0;
  let j = 0;
  for (const a of sortedAs) {
    for (; j < sortedBs.length && sortedBs[j]!.call! > a.at; j++) add(rank(sortedBs[j]!.token!));
    pairs += j;
    const bad = below(rank(a.o.token!) - 1);
    if (bad > 0) onBad(a, bad, sortedBs.slice(0, j).reduce((m, x) => (x.token! < m.token! ? x : m)));
  }
  return pairs;
}

/** Goes over the logs; see the header of this file for what each violation means. */
export function check(log: readonly string[], fenced: Map<string, { token: number; value: string }[]>): ChaosResult {
  const details: string[] = [];
  const notes: string[] = [];
  const v = { overlap: 0, token: 0, fenced: 0, liveness: 0, fifo: 0, rr: 0, quorum: 0 };
  const flag = (kind: keyof typeof v, msg: string) => {
    v[kind]++;
    if (details.length < 50) details.push(`${kind}: ${msg}`);
  };
  const note = (msg: string) => {
    if (notes.length < 10) notes.push(`note: ${msg}`);
  };
  const line = (at: number | undefined) => (at === undefined ? '(none)' : `#${at} "${log[at]}"`);

  // Set by the kind line (a callback below: written as a cast so that TypeScript does not narrow it).
  let kind = 'lock' as ChaosKind;
  let limit = 1;
  let cap: number | undefined;
  let kindAt: number | undefined;
  const ops = new Map<string, Op>();
  const pids = new Map<number, Pid>();
  const pidOf = (pid: number): Pid => {
    let p = pids.get(pid);
    if (!p) pids.set(pid, (p = { pid, killed: false, done: false, faults: new Map(), subscriberCuts: new Map(), downs: [] }));
    return p;
  };
  const counts = { kills: 0, pauses: 0, disconnects: 0, partitions: 0 };
  let releaseErrors = 0;
  /** Reads the optional weight= and mode= fields of a call or enter line into `o` (first seen wins). */
  const extras = (o: Op, fields: string[], at: number) => {
    for (const f of fields) {
      const w = /^weight=(\d+)$/.exec(f);
      const m = /^mode=(read|write)$/.exec(f);
      const g = /^group=(\S+)$/.exec(f);
      if (w) o.weight = Number(w[1]);
      else if (m) o.mode = m[1] === 'read' ? 'r' : 'w';
      else if (g) o.group = g[1]!;
      else if (/^waited=\d+$/.test(f)) continue; // read by the enter line itself
      else note(`unknown field "${f}" in ${line(at)}`);
    }
  };

  // A quorum run: its masters, the master fault windows, the majority phase.
  let quorumMasters = 0;
  const masterWindows = new Map<string, { master: number; kind: string; from: number; to: number }>();
  const masterFaults = { kill: 0, stop: 0, restart: 0, partition: 0 };
  let majority: { downAt: number; downedAt?: number; upAt?: number; settledAt?: number; boundMs: number } | undefined;
  let downMarks = 0;
  // A cluster run: its header and fault windows.
  let clusterRun: ClusterResult | undefined;
  const clusterWindows = new Map<string, { kind: string; from: number; to: number }>();


  log.forEach((text, at) => {
    const f = text.split(' ');
    const what = f[0]!;
    if (what === 'quorum') {
      quorumMasters = Number(f[1]);
      return;
    }
    if (what === 'master') {
      const [m, step, id] = [Number(f[1]), f[2] ?? '', f[3] ?? ''];
      if (step === 'kill' || step === 'stop' || step === 'restart' || step === 'partition') {
        masterFaults[step]++;
        if (!masterWindows.has(id)) masterWindows.set(id, { master: m, kind: step, from: at, to: Infinity });
        else note(`${line(at)} reuses a fault id`);
      } else if (step === 'settled') {
        const w = masterWindows.get(id);
        if (w && w.to === Infinity) w.to = at;
        else note(`${line(at)} settles no open master fault`);
      } else if (step !== 'back') note(`unknown log line ${line(at)}`);
      return;
    }
    if (what === 'cluster') {
      const step = f[1] ?? '';
      const id = f[2] ?? '';
      if (step.startsWith('nodes=')) {
        clusterRun ??= { durability: Number(/durability=(\d+)/.exec(text)?.[1] ?? 0), faults: {}, lostReported: {}, unstable: 0 };
      } else if (['kill', 'failover', 'migrate', 'partition', 'replica'].includes(step)) {
        if (clusterRun) clusterRun.faults[step] = (clusterRun.faults[step] ?? 0) + 1;
        if (!clusterWindows.has(id)) clusterWindows.set(id, { kind: step, from: at, to: Infinity });
        else note(`${line(at)} reuses a fault id`);
      } else if (step === 'settled') {
        const w = clusterWindows.get(id);
        if (w && w.to === Infinity) w.to = at;
        else note(`${line(at)} settles no open cluster fault`);
      } else if (step === 'unstable') {
        if (clusterRun) clusterRun.unstable++;
        note(`cluster fault did not recover cleanly: ${line(at)}`);
      } else if (step !== 'back' && step !== 'promoted') note(`unknown log line ${line(at)}`);
      return;
    }
    if (what === 'majority') {
      const step = f[1];
      if (step === 'down' && majority === undefined) majority = { downAt: at, boundMs: Number(/bound=(\d+)/.exec(text)?.[1] ?? Infinity) };
      else if (step === 'downed' && majority) majority.downedAt ??= at;
      else if (step === 'up' && majority) majority.upAt ??= at;
      else if (step === 'settled' && majority) majority.settledAt ??= at;
      else note(`unexpected log line ${line(at)}`);
      return;
    }
    if (what === 'kind') {
      const k = f[1];
      const n = Number(f[2]);
      const c = f[3] === undefined ? undefined : Number(f[3]);
      if ((k === 'lock' || k === 'semaphore' || k === 'rw') && Number.isInteger(n) && kindAt === undefined && (c === undefined || (k === 'semaphore' && Number.isInteger(c)))) {
        [kind, limit, kindAt, cap] = [k, k === 'lock' ? 1 : n, at, c];
      } else note(`${line(at)} is not a first, readable kind line`);
      return;
    }
    const pid = Number(f[1]);
    if (!Number.isInteger(pid)) {
      note(`unreadable log line ${line(at)}`);
      return;
    }
    const p = pidOf(pid);
    switch (what) {
      case 'spawn':
      case 'ready':
      case 'resume':
      case 'disconnected':
        return;
      case 'healed': {
        const w = p.subscriberCuts.get(f[2] ?? '');
        if (w) w.healed ??= at;
        return;
      }
      case 'done':
        p.done = true;
        return;
      case 'exit':
        p.exit = f.slice(2).join(' ');
        return;
      case 'mdown':
        downMarks++;
        p.downs.push({ master: Number(f[2]), from: at, to: Infinity });
        return;
      case 'mup': {
        const d = p.downs.find((x) => x.master === Number(f[2]) && x.to === Infinity);
        if (d) d.to = at;
        return;
      }
      case 'settled': {
        const w = p.faults.get(f[2] ?? '') ?? p.subscriberCuts.get(f[2] ?? '');
        if (w && w.to === Infinity) w.to = at;
        else note(`${line(at)} settles no open fault`);
        return;
      }
      case 'kill':
      case 'pause':
      case 'disconnect':
        if (what === 'kill') p.killed = true;
        counts[what === 'kill' ? 'kills' : what === 'pause' ? 'pauses' : 'disconnects']++;
        if (!p.faults.has(f[2] ?? '')) p.faults.set(f[2] ?? '', { from: at, to: Infinity });
        else note(`${line(at)} reuses a fault id`);
        return;
      case 'partition': {
        counts.partitions++;
        const what = f[3];
        const windows = what === 'subscriber' ? p.subscriberCuts : p.faults;
        if (what !== 'holder' && what !== 'waiter' && what !== 'subscriber') note(`${line(at)} cuts neither a holder, a waiter nor a subscriber (counted as a fault of the process)`);
        if (!p.faults.has(f[2] ?? '') && !p.subscriberCuts.has(f[2] ?? '')) windows.set(f[2] ?? '', { from: at, to: Infinity });
        else note(`${line(at)} reuses a fault id`);
        return;
      }
    }
    const [opName, lock] = [f[2], f[3]];
    if (opName === undefined || lock === undefined) {
      note(`unreadable log line ${line(at)}`);
      return;
    }
    let o = ops.get(opName);
    if (!o) ops.set(opName, (o = { op: opName, pid, lock, weight: 1, mode: 'x', group: '' }));
    // A line repeated (a retried append whose first attempt landed) keeps its first position.
    switch (what) {
      case 'call':
        if (o.call === undefined) {
          o.call = at;
          extras(o, f.slice(4), at);
        }
        break;
      case 'queued':
        if (o.queued === undefined) {
          o.queued = at;
          const m = /^master=(-?\d+)$/.exec(f[5] ?? '');
          if (m) o.queuedMaster = Number(m[1]);
        }
        break;
      case 'enter':
        if (o.enter === undefined) {
          [o.enter, o.token] = [at, Number(f[4])];
          if (o.call === undefined) extras(o, f.slice(5), at);
          const w = f.slice(5).find((x) => x.startsWith('waited='));
          if (w) o.waitedMs = Number(w.slice(7));
        }
        break;
      case 'leave':
        if (o.leave === undefined) [o.leave, o.entered] = [at, f[5] === 'entered=1'];
        break;
      case 'verdict':
        if (o.verdict === undefined) [o.verdict, o.held] = [at, f[5] === 'held=1'];
        break;
      case 'acqerr':
        if (o.acqerr === undefined) {
          const w = /^waited=(\d+)$/.exec(f[5] ?? '');
          if (w) o.waitedMs = Number(w[1]);
          o.acqerr = { at, code: f[4] ?? '?', message: f.slice(w ? 6 : 5).join(' ') };
        }
        break;
      case 'relerr':
        releaseErrors++;
        break;
      default:
        note(`unknown log line ${line(at)}`);
    }
  });
  if (kindAt !== undefined && kindAt !== 0) note(`the kind line ${line(kindAt)} is not the first line`);

  // The primitive's exclusion rule for sections held at one moment (see the header).
  const fits = (xs: readonly Op[]): boolean => {
    if (kind === 'rw') return xs.length <= 1 || xs.every((o) => o.mode === 'r');
    if (xs.reduce((sum, o) => sum + o.weight, 0) > limit) return false;
    if (cap === undefined) return true;
    const perGroup = new Map<string, number>();
    for (const o of xs) perGroup.set(o.group, (perGroup.get(o.group) ?? 0) + o.weight);
    return [...perGroup.values()].every((w) => w <= cap!);
  };
  const describeOp = (o: Op) =>
    `${o.op} (token ${o.token}${kind === 'semaphore' ? `, weight ${o.weight}` : ''}${kind === 'rw' ? `, ${o.mode === 'r' ? 'read' : 'write'}` : ''}` +
    `${o.group ? `, group ${o.group}` : ''})`;
  const all = [...ops.values()];
  for (const o of all) {
    if (kind === 'semaphore' && (o.weight < 1 || o.weight > limit)) note(`${o.op} takes weight ${o.weight} of ${limit} permits`);
    if (kind === 'rw' && o.mode === 'x' && o.call !== undefined) note(`${o.op} on a read-write lock has no mode (counted as a write)`);
  }

  const byLock = new Map<string, Op[]>();
  for (const o of all) {
    if (o.enter === undefined) continue;
    const list = byLock.get(o.lock);
    if (list) list.push(o);
    else byLock.set(o.lock, [o]);
  }
  for (const list of byLock.values()) list.sort((a, b) => a.enter! - b.enter!);

  for (const [lock, entered] of byLock) {
    // Tokens: each entered once per lock.
    const seen = new Map<number, Op>();
    for (const o of entered) {
      const first = seen.get(o.token!);
      if (first) flag('token', `${lock}: token ${o.token} entered twice: ${line(first.enter)} and ${line(o.enter)}`);
      else seen.set(o.token!, o);
    }

    // since(B), for B with entered=1: the first `enter` of a section with a higher token than B's
    // that entered before B; B is held from there to its own `enter` (see the header).
    const prefixMax: number[] = [];
    entered.forEach((o, i) => prefixMax.push(Math.max(i > 0 ? prefixMax[i - 1]! : -Infinity, o.token!)));
    const since = new Map<Op, Op>();
    entered.forEach((b, j) => {
      if (!b.entered || j === 0 || prefixMax[j - 1]! <= b.token!) return;
      since.set(b, entered[firstIndex(j - 1, (i) => prefixMax[i]! > b.token!)]!);
    });
    const early = [...since.keys()].sort((x, y) => since.get(x)!.enter! - since.get(y)!.enter!);

    // Sweep the enters in log order, keeping the sections with held=1 still open, and the sections
    // known held before their own enter.
    let open: Op[] = [];
    let pre: Op[] = [];
    let k = 0;
    const reported = new Set<Op>();
    for (const x of entered) {
      const p = x.enter!;
      open = open.filter((a) => a.leave! > p);
      for (; k < early.length && since.get(early[k]!)!.enter! <= p; k++) pre.push(early[k]!);
      pre = pre.filter((b) => b.enter! > p);
      if (x.held && !x.entered) flag('overlap', `${lock}: ${x.op} was believed lost at ${line(x.enter)} yet held at ${line(x.verdict)}`);
      // A reused token is flagged above, not again as an overlap.
      const others = open.filter((a) => a.token !== x.token);
      const base = x.entered ? [...others, x] : others;
      if (x.entered && !fits(base)) {
        flag(
          'overlap',
          `${lock}: ${line(x.enter)} (entered=1) lies inside the held=1 section${others.length > 1 ? 's' : ''} ` +
            others.map((a) => `${line(a.enter)} .. ${line(a.leave)}`).join(', ') +
            (kind === 'lock' && cap === undefined ? '' : `: ${base.map(describeOp).join(' + ')} do not fit ${kind === 'rw' ? 'a read-write lock' : `${limit} permits${cap === undefined ? '' : ` (${cap} per group)`}`}`),
        );
      } else if (fits(base)) {
        const ahead = pre.filter((b) => b.token !== x.token && !reported.has(b));
        if (ahead.length > 0 && !fits([...base, ...ahead])) {
          for (const b of ahead) {
            reported.add(b);
            flag(
              'token',
              `${lock}: ${line(b.enter)} (entered=1) comes after ${line(since.get(b)!.enter)} with a lower token: its grant came first, ` +
                `so it was held at ${line(p)}, beside ${base.map(describeOp).join(' + ') || 'nothing else'}` +
                (kind === 'lock' ? ' (the token fell)' : `, and ${[...base, ...ahead].map(describeOp).join(' + ')} do not fit`),
            );
          }
        }
      }
      if (x.held && x.leave !== undefined) open.push(x);
    }
  }

  // Fenced store: a holder believed valid to its end had both writes accepted; the writes of two
  // holders that cannot be held together do not interleave.
  if (kind !== 'semaphore') {
    for (const [lock, entries] of fenced) {
      const accepted = new Set(entries.map((e) => `${e.token} ${e.value}`));
      for (const o of byLock.get(lock) ?? []) {
        if (!o.held) continue;
        for (const w of ['b', 'e']) {
          if (!accepted.has(`${o.token} ${o.op} ${w}`)) flag('fenced', `${lock}: ${o.op} (token ${o.token}) held to ${line(o.verdict)} yet its "${w}" write is not in the store's accepted log`);
        }
      }
      const spans = new Map<string, { first: number; last: number }>();
      entries.forEach((e, i) => {
        const op = e.value.split(' ')[0]!;
        const s = spans.get(op);
        if (s) s.last = i;
        else spans.set(op, { first: i, last: i });
      });
      const opOf = (name: string): Op => ops.get(name) ?? { op: name, pid: 0, lock, weight: 1, mode: 'x', group: '' };
      for (const [op, s] of spans) {
        const mine = opOf(op);
        for (let i = s.first + 1; i < s.last; i++) {
          const e = entries[i]!;
          const other = e.value.split(' ')[0]!;
          if (other === op || fits([mine, opOf(other)])) continue;
          flag('fenced', `${lock}: store write #${i} "${e.token} ${e.value}" lies between the writes #${s.first} and #${s.last} of ${op}`);
          break;
        }
      }
    }
  }

  // Liveness: every acquire of a process that was never killed ended, and not in a timeout.
  for (const o of all) {
    if (pids.get(o.pid)?.killed) continue;
    if (o.call !== undefined && o.enter === undefined && o.acqerr === undefined) flag('liveness', `${o.lock}: ${line(o.call)} of a live process has no outcome`);
    if (o.acqerr?.code === 'LOCK_TIMEOUT') flag('liveness', `${o.lock}: ${line(o.acqerr.at)} (a process that was never killed)`);
  }
  for (const p of pids.values()) {
    if (!p.killed && !p.done) flag('liveness', `process ${p.pid} was never killed yet did not log "done"${p.exit ? ` (exit ${p.exit})` : ''}`);
  }

  // FIFO: queued(A) before call(B) on one lock, both entered, A's wait free of faults of its
  // process => token(A) < token(B). And, for every other entered A: enter(A) before call(B) =>
  // token(A) < token(B) (a grant's token is fixed; no fault excuses that one).
  const faultedDuring = (pid: number, from: number, to: number): boolean => {
    for (const w of pids.get(pid)?.faults.values() ?? []) if (w.from < to && w.to > from) return true;
    return false;
  };
  let fifoPairs = 0;
  let tokenPairs = 0;
  const grouped = all.some((o) => o.group !== '');
  const clusterFaultAt = (from: number, to: number) => [...clusterWindows.values()].find((w) => w.from < to && w.to > from);
  const unfaulted = (a: Op) =>
    a.queued !== undefined && a.enter !== undefined && !faultedDuring(a.pid, a.queued, a.enter) && clusterFaultAt(a.queued, a.enter) === undefined;
  let unfair = 0;
  let unfairPairs = 0;
  // A quorum run: an acquire the chain promises master 0's order for (see the header).
  const masterSpans = [...masterWindows.values()];
  if (majority) masterSpans.push({ master: -1, kind: 'majority', from: majority.downAt, to: majority.settledAt ?? Infinity });
  const untouched = (o: Op): boolean => {
    const [from, to] = [o.call!, o.enter!];
    if (faultedDuring(o.pid, from, to)) return false;
    if (pids.get(o.pid)?.downs.some((d) => d.from < to && d.to > from)) return false;
    return !masterSpans.some((w) => w.from < to && w.to > from);
  };
  if (quorumMasters > 0) {
    for (const [lock, entered] of byLock) {
      const fair = entered.filter((o) => o.call !== undefined && untouched(o));
      const as = fair.filter((a) => a.queued !== undefined && a.queuedMaster === 0);
      const tokens = [...new Set(entered.map((o) => o.token!))].sort((x, y) => x - y);
      unfairPairs += inversions(
        as.map((o) => ({ at: o.queued!, o })),
        fair,
        tokens,
        (a, bad, b) => {
          unfair += bad;
          if (details.length < 50) {
            details.push(
              `unfair: ${lock}: ${line(a.o.queued)} precedes ${line(b.call)}, both untouched, yet ${line(b.enter)} has a lower token than ${line(a.o.enter)}` +
                (bad > 1 ? ` (and ${bad - 1} more)` : ''),
            );
          }
        },
      );
      // Every pair: enter(A) before call(B) => token(A) < token(B).
      tokenPairs += inversions(
        entered.map((o) => ({ at: o.enter!, o })),
        entered.filter((b) => b.call !== undefined),
        tokens,
        (a, bad, b) => {
          v.token += bad;
          if (details.length < 50) {
            details.push(`token: ${lock}: ${line(a.o.enter)} precedes ${line(b.call)}, yet ${line(b.enter)} has a lower token` + (bad > 1 ? ` (and ${bad - 1} more)` : ''));
          }
        },
      );
    }
  }
  for (const [lock, entered] of quorumMasters > 0 ? [] : byLock) {
    const fifo = entered.filter(unfaulted);
    const fifoSet = new Set(fifo);
    // With groups, FIFO binds only within a group; the token rule binds every entered A.
    const rest = grouped ? entered : entered.filter((a) => !fifoSet.has(a));
    const bs = entered.filter((b) => b.call !== undefined);
    const tokens = [...new Set(entered.map((o) => o.token!))].sort((x, y) => x - y);
    for (const g of grouped ? [...new Set(entered.map((o) => o.group))] : [undefined]) {
      fifoPairs += inversions(
        fifo.filter((o) => g === undefined || o.group === g).map((o) => ({ at: o.queued!, o })),
        bs.filter((o) => g === undefined || o.group === g),
        tokens,
        (a, bad, b) => {
          v.fifo += bad;
          if (details.length < 50) {
            details.push(
              `fifo: ${lock}${g ? ` (group ${g})` : ''}: ${line(a.o.queued)} precedes ${line(b.call)}, yet ${line(b.enter)} has a lower token than ${line(a.o.enter)}` +
                (bad > 1 ? ` (and ${bad - 1} more called after A queued got in first)` : ''),
            );
          }
        },
      );
    }
    tokenPairs += inversions(
      rest.map((o) => ({ at: o.enter!, o })),
      bs,
      tokens,
      (a, bad, b) => {
        v.token += bad;
        if (details.length < 50) {
          details.push(
            `token: ${lock}: ${line(a.o.enter)} precedes ${line(b.call)}, yet ${line(b.enter)} has a lower token` +
              (bad > 1 ? ` (and ${bad - 1} more called after A entered)` : ''),
          );
        }
      },
    );
  }

  // Round robin (see rr in the header).
  let rrWindows = 0;
  let rrSkipped: string | undefined;
  if (grouped) {
    if (kind === 'rw') rrSkipped = 'not checked: a read-write lock takes no groups';
    else if (cap !== undefined) rrSkipped = 'not checked: a perGroup cap passes capped groups over';
    else if (all.some((o) => o.weight !== 1)) rrSkipped = 'not checked: weights above 1';
    else {
      const byLockAll = new Map<string, Op[]>();
      for (const o of all) if (o.call !== undefined) (byLockAll.get(o.lock) ?? byLockAll.set(o.lock, []).get(o.lock)!).push(o);
      // When a killed process's session has surely lapsed: its kill fault's `settled` line.
      const settledKill = (pid: number): number => {
        let at = Infinity;
        const p = pids.get(pid);
        if (p?.killed) for (const w of p.faults.values()) if (log[w.from]!.startsWith('kill ') && w.to !== Infinity) at = Math.min(at, w.to);
        return at;
      };
      const lastLine = (o: Op): number => {
        const p = pids.get(o.pid);
        let kill = Infinity;
        if (p?.killed) for (const w of p.faults.values()) if (log[w.from]!.startsWith('kill ')) kill = Math.min(kill, w.from);
        return Math.min(o.acqerr?.at ?? Infinity, kill);
      };
      for (const [lock, calls] of byLockAll) {
        const entered = calls.filter((o) => o.enter !== undefined);
        if (entered.length === 0) continue;
        // Grants of each group by token, and the lowest token of the grants called after a position.
        const tokensOf = new Map<string, number[]>();
        for (const o of entered) (tokensOf.get(o.group) ?? tokensOf.set(o.group, []).get(o.group)!).push(o.token!);
        for (const ts of tokensOf.values()) ts.sort((x, y) => x - y);
        const countIn = (g: string, from: number, to: number) => {
          const ts = tokensOf.get(g) ?? [];
          return countBelow(ts, to) - countBelow(ts, from);
        };
        const byCall = [...entered].sort((x, y) => x.call! - y.call!);
        const sufMin: number[] = new Array(byCall.length + 1).fill(Infinity);
        for (let i = byCall.length - 1; i >= 0; i--) sufMin[i] = Math.min(sufMin[i + 1]!, byCall[i]!.token!);
        const lowestCalledAfter = (at: number) => sufMin[firstIndex(byCall.length, (i) => byCall[i]!.call! > at)]!;
        for (const y of tokensOf.keys()) {
          // The requests of Y that might hide a grant, by call, with when each is surely settled: one
          // that entered, at its enter (every grant it had came before); one that did not, once its
          // session lapsed after a kill, or once a request of Y called after its last line entered
          // (its elements are behind the hidden one's in Y's list, so that one was popped first).
          const ys = entered.filter((o) => o.group === y).sort((a, b) => a.call! - b.call!);
          const ysEnterMin: number[] = new Array(ys.length + 1).fill(Infinity);
          for (let i = ys.length - 1; i >= 0; i--) ysEnterMin[i] = Math.min(ysEnterMin[i + 1]!, ys[i]!.enter!);
          const resolvedAt = (h: Op): number => {
            if (h.enter !== undefined) return h.enter;
            const last = lastLine(h);
            const after = firstIndex(ys.length, (i) => ys[i]!.call! > last);
            return Math.min(settledKill(h.pid), last === Infinity ? Infinity : ysEnterMin[after]!);
          };
          // Hidden: no enter, or a fault of its process between its call and its enter (a hand-off to
          // a paused or cut-off waiter lapses unseen, and it is granted again later, with another token).
          const hidden = calls
            .filter((o) => o.group === y && (o.enter === undefined || faultedDuring(o.pid, o.call!, o.enter)))
            .sort((a, b) => a.call! - b.call!);
          const clean = calls.filter((o) => o.group === y && unfaulted(o));
          const hiddenCalls = hidden.map((h) => h.call!);
          const hiddenMax: number[] = [];
          hidden.forEach((h, i) => hiddenMax.push(Math.max(i > 0 ? hiddenMax[i - 1]! : -Infinity, resolvedAt(h))));
          for (const b of clean) {
            const k = countBelow(hiddenCalls, b.queued!);
            if (k > 0 && hiddenMax[k - 1]! >= b.queued!) continue; // a grant of Y may hide in the window
            const from = lowestCalledAfter(b.queued!);
            if (!(from < b.token!)) continue; // nothing granted in the window
            rrWindows++;
            const mine = countIn(y, from, b.token!);
            for (const x of tokensOf.keys()) {
              if (x === y) continue;
              const theirs = countIn(x, from, b.token!);
              if (theirs >= mine + 2) {
                v.rr++;
                if (details.length < 50) {
                  details.push(
                    `rr: ${lock}: ${b.op} of group ${y} waited from ${line(b.queued)} to its token ${b.token}; meanwhile (tokens ${from}..${b.token}) ` +
                      `group ${x} had ${theirs} grants and ${y} ${mine}`,
                  );
                }
              }
            }
          }
        }
      }
    }
  }
  // The majority phase: acquires called while a majority was down fail with QUORUM_LOST, in bound.
  const phase = { phases: majority ? 1 : 0, calls: 0, quorumLost: 0, otherErrors: 0, maxWaitMs: 0, boundMs: majority?.boundMs ?? 0 };
  if (majority) {
    const from = majority.downedAt ?? Infinity;
    const to = majority.upAt ?? Infinity;
    for (const o of all) {
      if (o.call === undefined || !(o.call > from && o.call < to)) continue;
      phase.calls++;
      phase.maxWaitMs = Math.max(phase.maxWaitMs, o.waitedMs ?? 0);
      if (o.enter !== undefined && o.enter < to) flag('quorum', `${o.lock}: ${line(o.enter)} entered while a majority was down (${line(from)} .. ${line(to)})`);
      if (o.acqerr && o.acqerr.at < to) {
        if (o.acqerr.code === 'QUORUM_LOST') phase.quorumLost++;
        else {
          phase.otherErrors++;
          flag('quorum', `${o.lock}: ${line(o.acqerr.at)} failed with ${o.acqerr.code}, not QUORUM_LOST, while a majority was down`);
        }
      }
      if ((o.waitedMs ?? 0) > majority.boundMs) flag('quorum', `${o.lock}: ${line(o.call)} waited ${o.waitedMs} ms (bound ${majority.boundMs} ms), called while a majority was down`);
    }
  }

  const errors = all.filter((o) => o.acqerr !== undefined);
  for (const o of errors.slice(0, 10)) details.push(`note (not a violation): ${line(o.acqerr!.at)}`);
  if (releaseErrors) details.push(`note (not a violation): ${releaseErrors} release errors`);
  details.push(...notes);
  const verdicts = all.filter((o) => o.verdict !== undefined);
  if (clusterRun) {
    for (const k of Object.keys(clusterRun.faults)) clusterRun.lostReported[k] = 0;
    for (const o of verdicts) {
      if (o.held && o.entered) continue;
      const w = clusterFaultAt(o.enter!, o.verdict!);
      if (w) clusterRun.lostReported[w.kind] = (clusterRun.lostReported[w.kind] ?? 0) + 1;
    }
  }
  return {
    kind,
    limit: kind === 'rw' ? 0 : limit,
    grants: all.filter((o) => o.enter !== undefined).length,
    sections: verdicts.length,
    kills: counts.kills,
    pauses: counts.pauses,
    disconnects: counts.disconnects,
    partitions: counts.partitions,
    grantsWhileSubscriberCut: all.filter((o) =>
      [...(pids.get(o.pid)?.subscriberCuts.values() ?? [])].some((w) => o.queued !== undefined && o.enter !== undefined && o.queued > w.from && o.enter < (w.healed ?? Infinity)),
    ).length,
    lost: verdicts.filter((o) => !o.held).length,
    acquireErrors: errors.length,
    errorCodes: errors.reduce<Record<string, number>>((m, o) => ((m[o.acqerr!.code] = (m[o.acqerr!.code] ?? 0) + 1), m), {}),
    fifoPairs,
    tokenPairs,
    groups: new Set(all.map((o) => o.group).filter((g) => g !== '')).size,
    ...(cap === undefined ? {} : { perGroup: cap }),
    rrWindows,
    ...(rrSkipped === undefined ? {} : { rrSkipped }),
    violations: v,
    longestWaitMs: all.reduce((m, o) => (o.enter !== undefined ? Math.max(m, o.waitedMs ?? 0) : m), 0),
    quorum:
      quorumMasters > 0
        ? {
            masters: quorumMasters,
            masterFaults,
            unfair,
            unfairPairs,
            masterDownMarks: downMarks,
            longestUntouchedWaitMs: all.reduce((m, o) => (o.enter !== undefined && o.call !== undefined && untouched(o) ? Math.max(m, o.waitedMs ?? 0) : m), 0),
            majority: phase,
          }
        : undefined,
    ...(clusterRun ? { cluster: clusterRun } : {}),
    details,
  };
}
