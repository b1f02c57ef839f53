/**
 * `fairlock demo`: a few worker processes contend for one lock; a live timeline shows who waits,
 * who holds and how fast the lock is handed on, and a summary checks that grants followed the queue.
 * `fairlock demo --permits N`: the same with a fair semaphore of N permits, N holders at a time.
 * `fairlock demo --groups`: three tenants (groups) share a semaphore; one sends a burst, the other two
 * a trickle, and the summary checks from tokens that the burst did not hold the trickle back.
 * Without --redis/REDIS_URL it starts its own redis-server on a free loopback port and stops it after.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { within, withTimeout } from '../bounded.js';
import { CliError, EXIT, finishCommand, formatMs, parseInteger, parseDuration, redactUrl } from './common.js';
import { failed, runCommand } from './run-command.js';
import { escapeControls } from './escape-controls.js';
import { clock, type DemoOrder, type DemoReport } from './demo-protocol.js';
import { startLocalRedis } from './redis-server.js';

export interface DemoOptions {
  redis?: string;
  prefix: string;
  workers: number;
  rounds: number;
  hold: number;
  /** Contend for a fair semaphore of this many permits instead of a lock. */
  permits?: number;
  /** Three tenants share a semaphore (fair share between groups); --workers, --rounds, --permits do not apply. */
  groups?: boolean;
}

/** The whole demo, Redis start-up included, must end within this. */
const DEMO_LIMIT_MS = 15_000;
const LOCK = 'demo';
/** The most time all grants together may hold the lock (workers x rounds x hold). */
const MAX_HOLDING_MS = 10_000;

/** `demo --groups`: the tenants, each a worker process of its own taking its turns in its own group. */
const TENANTS = [
  { label: 'a', group: 'tenant-a', requests: 8, burst: true },
  { label: 'b', group: 'tenant-b', requests: 3, burst: false },
  { label: 'c', group: 'tenant-c', requests: 3, burst: false },
] as const;
type Tenant = (typeof TENANTS)[number];
const GROUP_LOCK = 'demo-groups';
const GROUP_PERMITS = 2;
/** Releases the groups demo makes (one per grant), one every --hold / permits. */
const GROUP_STEPS = TENANTS.reduce((n, t) => n + t.requests, 0);

export function demoCommand(): Command {
  const cmd = new Command('demo')
    .summary('watch worker processes share one lock (or semaphore) in FIFO order')
    .description(
      'Forks worker processes that contend for one lock and prints a live timeline: who waits, who ' +
        'holds, the hand-off latency, and a summary that checks that grants followed the queue order. ' +
        'With --permits N they take one permit each of a fair semaphore of N permits instead: N hold at ' +
        'a time (a holder lets go only once all N permits are held, or at the end), and the summary ' +
        'checks the FIFO order from the fencing tokens and the holder count from Redis\'s own holder list. ' +
        `With --groups, three tenants (one worker process each, each its own group) share a semaphore of ${GROUP_PERMITS} ` +
        `permits: tenant a sends a burst of ${TENANTS[0].requests} requests at once, b and c a trickle of ` +
        `${TENANTS[1].requests} each (the next once the last is done); the summary shows each tenant's grants and waits ` +
        'and checks from the fencing tokens that no request of b or c waited through more than one grant of ' +
        'each other tenant, however long a\'s backlog. ' +
        'Without --redis or REDIS_URL it starts its own redis-server on a free loopback port.',
    )
    .addOption(new Option('--redis <url>', 'use this Redis instead of starting one').env('REDIS_URL'))
    .option('--prefix <prefix>', 'key prefix for the demo lock', 'fairlock-demo')
    .addOption(new Option('--workers <n>', 'worker processes').argParser(parseInteger(2, 8)).default(4))
    .addOption(new Option('--rounds <n>', 'times each worker takes the lock').argParser(parseInteger(1, 5)).default(2))
    .addOption(new Option('--hold <duration>', 'how long a worker holds the lock').argParser(parseDuration).default(250, '250ms'))
    .addOption(new Option('--permits <n>', 'use a fair semaphore of N permits (fewer than --workers) instead of a lock').argParser(parseInteger(1, 7)))
    .addOption(new Option('--groups', 'three tenants share a semaphore: a burst from one does not hold back the others').conflicts(['workers', 'rounds', 'permits']));
  return finishCommand(
    cmd,
    '  fairlock demo\n  fairlock demo --permits 2 --workers 5\n  fairlock demo --groups',
    '0 grants followed the queue (and, with --permits, never more holders than permits; with --groups,\n' +
      '  no tenant waited through more than one grant of each other tenant);\n' +
      '  1 they did not; 64 bad usage; 69 no Redis; 70 internal error or over 15s.',
    (options: DemoOptions) => runDemo(options),
  );
}

interface OwnRedis {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port; rejects with EXIT.UNAVAILABLE when it cannot. */
async function startRedis(): Promise<OwnRedis> {
  try {
    const redis = await startLocalRedis({ readyTimeoutMs: 5_000 });
    return { url: redis.url, pid: redis.pid!, stop: redis.stop };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(
      EXIT.UNAVAILABLE,
      e.code === 'ENOENT'
        ? 'no Redis for the demo: redis-server is not installed and neither --redis nor REDIS_URL is set (install redis-server, or pass --redis redis://HOST:PORT)'
        : `could not start redis-server (${e.message}); pass --redis redis://HOST:PORT to use a running one`,
    );
  }
}

class Worker {
  readonly reports: DemoReport[] = [];
  private listeners: ((r: DemoReport) => void)[] = [];
  grants = 0;
  constructor(
    readonly label: string,
    readonly proc: ChildProcess,
  ) {
    proc.on('message', (r: DemoReport) => {
      this.reports.push(r);
      for (const l of this.listeners) l(r);
    });
  }
  on(listener: (r: DemoReport) => void): void {
    this.listeners.push(listener);
  }
  next(match: (r: DemoReport) => boolean): Promise<DemoReport> {
    return new Promise((resolve) => {
      const l = (r: DemoReport) => {
        if (!match(r)) return;
        this.listeners = this.listeners.filter((x) => x !== l);
        resolve(r);
      };
      this.listeners.push(l);
    });
  }
  send(order: DemoOrder): void {
    if (this.proc.connected) this.proc.send(order);
  }
  /** Waits up to `graceMs` for the worker to quit by itself, then kills it by PID. */
  async stop(graceMs: number): Promise<void> {
    const gone = () => this.proc.exitCode !== null || this.proc.signalCode !== null || this.proc.pid === undefined;
    if (gone()) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    await within(exited, graceMs);
    if (gone()) return;
    process.kill(this.proc.pid!, 'SIGKILL');
    await exited;
  }
}

export async function runDemo(options: DemoOptions): Promise<number> {
  let own: OwnRedis | undefined;
  const workers: Worker[] = [];
  let finished = false;
  try {
    if (options.groups && GROUP_STEPS * options.hold > MAX_HOLDING_MS) {
      throw new CliError(EXIT.USAGE, `with --groups, --hold must stay under ${formatMs(MAX_HOLDING_MS / GROUP_STEPS)} so that the demo ends within ${formatMs(DEMO_LIMIT_MS)}`);
    }
    if (!options.groups && options.workers * options.rounds * options.hold > MAX_HOLDING_MS) {
      throw new CliError(EXIT.USAGE, `--workers x --rounds x --hold must stay under ${formatMs(MAX_HOLDING_MS)} so that the demo ends within ${formatMs(DEMO_LIMIT_MS)}`);
    }
    const permits = options.groups ? GROUP_PERMITS : options.permits;
    if (!options.groups && permits !== undefined && permits >= options.workers) {
      throw new CliError(EXIT.USAGE, `--permits (${permits}) must be fewer than --workers (${options.workers}), else nobody ever waits`);
    }
    const url = options.redis ?? (own = await startRedis()).url;
    // Connected once here (the workers use plain clients: one Redis, never a cluster), so that an
    // unreachable Redis fails the demo at once with exit 69 rather than after DEMO_LIMIT_MS.
    return await runCommand(
      { redis: url, prefix: options.prefix },
      async () => {
        if (options.groups) {
          const [a, b, c] = TENANTS;
          out(
            `fairlock demo --groups: three tenants, each a worker process taking its turns in a group of its own, share the semaphore "${GROUP_LOCK}" of ${GROUP_PERMITS} permits: ` +
              `tenant ${a.label} sends a burst of ${a.requests} requests at once, ${b.label} and ${c.label} a steady trickle of ${b.requests} each (the next once the last is done); ` +
              `every ~${formatMs(options.hold / GROUP_PERMITS)} the oldest holder lets go`,
          );
        } else if (permits === undefined) {
          out(`fairlock demo: ${options.workers} worker processes take the lock "${LOCK}" ${options.rounds} times each, holding it ~${formatMs(options.hold)}`);
        } else {
          out(
            `fairlock demo: ${options.workers} worker processes take one permit of the semaphore "${LOCK}" of ${permits} permits ` +
              `${times(options.rounds)} each; a holder lets go after ~${formatMs(options.hold)}, but not before ${permits === 2 ? 'both' : `all ${permits}`} permits are held, so that ${permits} hold at a time`,
          );
        }
        out(`redis: ${redactUrl(url)}${own ? ` (a redis-server the demo started, pid ${own.pid}; stopped at the end)` : ''}`);
        out('');

        const ext = extname(fileURLToPath(import.meta.url)); // .js when built, .ts when run through tsx
        const script = fileURLToPath(new URL(`./demo-worker${ext}`, import.meta.url));
        const count = options.groups ? TENANTS.length : options.workers;
        for (let i = 0; i < count; i++) {
          const proc = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          workers.push(new Worker(options.groups ? TENANTS[i]!.label : `w${i + 1}`, proc));
        }
        const failure = new Promise<never>((_, reject) => {
          for (const w of workers) {
            w.on((r) => r.ev === 'error' && reject(new CliError(EXIT.INTERNAL, `worker ${w.label}: ${r.message}`)));
            w.proc.once('exit', (code, sig) => reject(new CliError(EXIT.INTERNAL, `worker ${w.label} exited early (${sig ?? code})`)));
          }
        });
        const run = async () => {
          const ready = workers.map((w) => w.next((r) => r.ev === 'ready'));
          workers.forEach((w, i) =>
            w.send({
              op: 'init',
              url,
              prefix: options.prefix,
              name: options.groups ? GROUP_LOCK : LOCK,
              ...(permits !== undefined && { permits }),
              ...(options.groups && { group: TENANTS[i]!.group }),
            }),
          );
          await Promise.all(ready);
          return options.groups ? contendInGroups(workers, options) : contend(workers, options);
        };
        const code = await withTimeout(Promise.race([run(), failure]), DEMO_LIMIT_MS, () => new CliError(EXIT.INTERNAL, `the demo did not finish within ${formatMs(DEMO_LIMIT_MS)}`));
        finished = true;
        return code;
      },
      { single: true },
    );
  } catch (err) {
    return failed(err);
  } finally {
    for (const w of workers) w.proc.removeAllListeners('exit');
    // After a normal end the workers were told to quit: give them a moment to close their sessions.
    await Promise.all(workers.map((w) => w.stop(finished ? 2_000 : 0)));
    await own?.stop();
  }
}

/** One line of the demo's output; the URL in it is the user's: escaped (src/cli/escape-controls.ts). */
function out(line: string): void {
  process.stdout.write(escapeControls(line) + '\n');
}

/** One grant, as its holder reported it. */
interface Grant {
  worker: Worker;
  token: number;
  /** The holder's monotonic clock (shared by every process on the machine): the timeline, and the lock's hand-off. */
  at: number;
  immediate: boolean;
  waitedMs: number;
  /** Tokens of every holder in Redis, read by this holder while it held. */
  holders: number[];
  /** When its holder reported it lets go. */
  releasingAt?: number;
}

/**
 * The run, for a lock and for a semaphore of `permits` alike (a lock holds like a semaphore of 1):
 * every worker takes the name `options.rounds` times. The demo decides when a holder lets go (after
 * ~hold, and with permits only once all of them are held or no more grants are to come), so it
 * knows who surely holds (granted and not yet told to let go) without comparing clocks. Grants are
 * shown only once every holder told to let go has said so (their reports come over other pipes), so
 * the timeline is in cause order. Checked: FIFO (grants against the order the demo sent the workers
 * to the queue, which is Redis's: one at a time), one token per grant that Redis lists among the
 * holders, never more holders than permits (the demo's own count and Redis's list); for a lock also
 * the hand-off time and, on the shared clock, that each holder released before the next one held.
 * Prints the timeline and the summary; resolves with the exit code.
 */
async function contend(workers: Worker[], options: DemoOptions): Promise<number> {
  const lock = options.permits === undefined;
  const permits = options.permits ?? 1;
  const t0 = clock();
  const stamp = (at: number) => `${((at - t0) / 1000).toFixed(3).padStart(7)}s`;
  const queue: Worker[] = [];
  const entered: string[] = [];
  const grants: Grant[] = [];
  const workerOf = new Map<number, Worker>();
  /** Granted and not yet told to let go (so surely holding), with whether their hold time is up. */
  const holding = new Map<Worker, { grant: Grant; due: boolean; timer: NodeJS.Timeout }>();
  /** Told to let go, "releasing" not yet reported; and the grant reports held back meanwhile. */
  const letting = new Set<Worker>();
  const heldBack: { w: Worker; r: Extract<DemoReport, { ev: 'granted' }> }[] = [];
  const violations: string[] = [];
  let full = 0;
  let most = 0;
  let released = 0;
  const total = workers.length * options.rounds;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const labels = (ws: Iterable<Worker>) => [...ws].map((w) => w.label).join(' ') || 'none';
  const waiting = () => `queue: ${queue.length ? labels(queue) : 'empty'}`;
  const width = lock ? 44 : 32;
  const line = (at: number, w: Worker, what: string, extra = '') => out(`${stamp(at)}  ${w.label.padEnd(3)} ${what.padEnd(width)} ${extra}`);

  // Send workers to the queue strictly one after another, so that the order they entered is known.
  let door = Promise.resolve();
  const enter = (w: Worker) => {
    door = door.then(async () => {
      const arrived = w.next((r) => r.ev === 'queued' || r.ev === 'granted');
      w.send({ op: 'take' });
      await arrived;
    });
  };

  /** No more grants are to come: every worker holds, or has had all its rounds. */
  const lastGrants = () => workers.every((w) => holding.has(w) || w.grants >= options.rounds);
  /** Tells holders whose time is up to let go, oldest first, while all permits are held (or at the end). */
  const letGo = () => {
    const due = [...holding.entries()].filter(([, h]) => h.due).sort((a, b) => a[1].grant.token - b[1].grant.token);
    for (const [w] of due) {
      if (holding.size < permits && !lastGrants()) return;
      holding.delete(w);
      letting.add(w);
      w.send({ op: 'release' });
    }
  };

  const onGranted = (w: Worker, r: Extract<DemoReport, { ev: 'granted' }>) => {
    if (letting.size > 0) {
      heldBack.push({ w, r }); // a "releasing" report it followed is still on its way
      return;
    }
    const g: Grant = { worker: w, token: r.token, at: r.at, immediate: r.immediate, waitedMs: r.waitedMs, holders: r.holders ?? [] };
    const prev = grants.at(-1);
    if (workerOf.has(r.token)) violations.push(`token ${r.token} was given twice (${workerOf.get(r.token)!.label} and ${w.label})`);
    workerOf.set(r.token, w);
    if (!r.immediate) {
      if (lock && queue[0] !== w) violations.push(`${w.label} was granted while ${queue[0]?.label ?? 'nobody'} was at the head of the queue`);
      const i = queue.indexOf(w);
      if (i >= 0) queue.splice(i, 1);
    }
    if (holding.size + 1 > permits) {
      violations.push(`${w.label} got a ${lock ? 'grant' : 'permit'} while ${labels(holding.keys())} still held all ${permits}`);
    }
    if (lock && prev && r.token <= prev.token) violations.push(`token ${r.token} of ${w.label} is not above ${prev.token}`);
    if (lock && prev?.releasingAt !== undefined && r.at < prev.releasingAt) violations.push(`${w.label} held the lock before ${prev.worker.label} released it`);
    if (!g.holders.includes(r.token)) violations.push(`Redis did not list ${w.label} (token ${r.token}) among the holders while it held`);
    if (g.holders.length > permits) violations.push(`Redis listed ${g.holders.length} holders of ${permits} permits: tokens ${g.holders.join(' ')}`);
    most = Math.max(most, g.holders.length);
    if (g.holders.length === permits) full++;
    grants.push(g);
    w.grants++;
    const hold = Math.round(options.hold * (0.7 + 0.6 * Math.random()));
    const timer = setTimeout(() => {
      const h = holding.get(w);
      if (h) h.due = true;
      letGo();
    }, hold);
    holding.set(w, { grant: g, due: false, timer });
    if (lock) {
      const how = r.immediate
        ? 'the lock was free'
        : prev?.releasingAt !== undefined
          ? `hand-off from ${prev.worker.label} in ${(r.at - prev.releasingAt).toFixed(2)}ms, waited ${formatMs(r.waitedMs)}`
          : `waited ${formatMs(r.waitedMs)}`;
      line(r.at, w, `HOLDS    token ${r.token}`, `${how}; ${waiting()}`);
    } else {
      const inRedis = [...g.holders].sort((a, b) => a - b).map((t) => workerOf.get(t)?.label ?? `token ${t}`);
      const how = r.immediate ? 'a permit was free' : `waited ${formatMs(r.waitedMs)}`;
      line(r.at, w, `HOLDS    token ${r.token}`, `${how}; holders in Redis: ${inRedis.join(' ')} (${g.holders.length} of ${permits}); ${waiting()}`);
    }
    letGo();
  };

  for (const w of workers) {
    w.on((r) => {
      if (r.ev === 'queued') {
        queue.push(w);
        entered.push(w.label);
        line(r.at, w, `waits    position ${r.position}`, waiting());
      } else if (r.ev === 'granted') {
        if (r.immediate) entered.push(w.label);
        onGranted(w, r);
      } else if (r.ev === 'releasing') {
        const g = grants.findLast((x) => x.worker === w);
        if (g) g.releasingAt = r.at;
        const held = `held ${formatMs(r.at - (g?.at ?? r.at))}`;
        line(r.at, w, 'releases', lock ? held : `${held}; still holding: ${labels(holding.keys())}`);
        letting.delete(w);
        if (letting.size === 0) for (const e of heldBack.splice(0)) onGranted(e.w, e.r);
      } else if (r.ev === 'released') {
        released++;
        if (released === total) finish();
        else if (w.grants < options.rounds) setTimeout(() => enter(w), 30 + Math.random() * 120);
        letGo();
      }
    });
  }

  // Shuffle who comes first, then let them in one by one.
  const order = [...workers].sort(() => Math.random() - 0.5);
  out(`${'time'.padStart(8)}  who event${' '.repeat(width - 4)}  detail`);
  for (const w of order) enter(w);
  await finished;
  for (const h of holding.values()) clearTimeout(h.timer);
  for (const w of workers) w.send({ op: 'quit' });
  return (lock ? lockSummary : permitSummary)(grants, entered, violations, { permits, most, full });
}

const mark = (ok: boolean) => (ok ? 'ok' : 'FAILED');

/** The lock's summary: FIFO in grant order, rising tokens, no overlap, hand-off times. Returns the exit code. */
function lockSummary(grants: Grant[], entered: string[], violations: string[]): number {
  const handoffs = grants
    .map((g, i) => (i > 0 && !g.immediate && grants[i - 1]!.releasingAt !== undefined ? g.at - grants[i - 1]!.releasingAt! : undefined))
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
  const grantOrder = grants.map((g) => g.worker.label);
  const fifo = violations.length === 0 && grantOrder.join(' ') === entered.join(' ');
  out('');
  out('summary');
  out(`  queue order   ${entered.join(' ')}`);
  out(`  grant order   ${grantOrder.join(' ')}`);
  out(`  FIFO          ${mark(fifo)}: ${grants.length} grants, each to the worker at the head of the queue`);
  out(`  tokens        ${mark(!violations.some((v) => v.startsWith('token')))}: strictly increasing (${grants[0]?.token} .. ${grants.at(-1)?.token})`);
  out(`  exclusion     ${mark(!violations.some((v) => / before | held all /.test(v)))}: each holder released before the next one held`);
  if (handoffs.length > 0) {
    const median = handoffs[Math.floor(handoffs.length / 2)]!;
    out(`  hand-off      median ${median.toFixed(2)}ms, max ${handoffs.at(-1)!.toFixed(2)}ms (release call -> next holder knows it holds)`);
  }
  for (const v of violations) out(`  violation     ${v}`);
  return fifo ? EXIT.OK : EXIT.DEMO_FAILED;
}

/** The semaphore's summary: FIFO by token, tokens listed by Redis, the holder count. Returns the exit code. */
function permitSummary(grants: Grant[], entered: string[], violations: string[], seen: { permits: number; most: number; full: number }): number {
  const { permits, most, full } = seen;
  const byToken = [...grants].sort((a, b) => a.token - b.token);
  const grantOrder = byToken.map((g) => g.worker.label);
  const fifo = grantOrder.join(' ') === entered.join(' ');
  const counted = !violations.some((v) => /held all|holders of/.test(v));
  const tokensOk = !violations.some((v) => /token .* given twice|did not list/.test(v));
  out('');
  out('summary');
  out(`  queue order   ${entered.join(' ')}`);
  out(`  grant order   ${grantOrder.join(' ')}   (by fencing token)`);
  out(`  FIFO          ${mark(fifo)}: ${grants.length} grants, in the order the workers entered the queue`);
  out(`  tokens        ${mark(tokensOk)}: one per grant, each listed by Redis among the holders (${byToken[0]?.token} .. ${byToken.at(-1)?.token})`);
  const holders = (n: number) => `${n} holder${n === 1 ? '' : 's'}`;
  out(`  permits       ${mark(counted)}: never more than ${holders(permits)} at once (most seen in Redis: ${most})`);
  const atATime = `${permits === 1 ? 'one' : permits === 2 ? 'two' : permits} at a time`;
  out(`  ${atATime.padEnd(14)}${mark(full > 0)}: Redis listed ${holders(permits)} together after ${full} of ${grants.length} grants`);
  for (const v of violations) out(`  violation     ${v}`);
  return fifo && counted && tokensOk && full > 0 ? EXIT.OK : EXIT.DEMO_FAILED;
}

function times(n: number): string {
  return n === 1 ? 'once' : n === 2 ? 'twice' : `${n} times`;
}

/** One request of `demo --groups`, as the demo sent it and its worker reported it. */
interface TenantRequest {
  tenant: Tenant;
  worker: Worker;
  /** Its id at its worker (1, 2, ...: the tenant's order). */
  id: number;
  label: string;
  /** The highest token granted before it was sent: every grant with a higher token came after. */
  tokenBefore: number;
  queued: boolean;
  grant?: { token: number; at: number; holders: number[]; group: string | undefined };
  released: boolean;
  /** How many of the burst tenant's requests were queued when it was sent. */
  burstQueued: number;
}

/**
 * `demo --groups`: tenant a queues a burst, b and c each send one request at a time, the next once
 * the last was released. The demo moves one step at a time, each step's consequences reported before
 * the next: a request sent (queued or granted), or the oldest holder told to let go (released, and
 * the one grant a freed permit gives while anyone waits: weights are 1 and no group is capped). So the
 * highest token when a request is sent bounds what came before it, and the grants each waited through
 * are counted from tokens alone. Checked: no request of a trickle tenant waited through more than one
 * grant of each other tenant (however many of a's were queued), FIFO inside each tenant (its tokens
 * rise in the order it sent), never more holders than permits (the demo's count and Redis's list), and
 * Redis listed each grant in its tenant's group. Resolves with the exit code.
 */
async function contendInGroups(workers: Worker[], options: DemoOptions): Promise<number> {
  const permits = GROUP_PERMITS;
  const t0 = clock();
  const stamp = (at: number) => `${((at - t0) / 1000).toFixed(3).padStart(7)}s`;
  const line = (at: number, who: string, what: string, extra = '') => out(`${stamp(at)}  ${who.padEnd(4)} ${what.padEnd(31)} ${extra}`.trimEnd());
  const requests = TENANTS.map((tenant, i) =>
    Array.from({ length: tenant.requests }, (_, k): TenantRequest => ({
      tenant,
      worker: workers[i]!,
      id: k + 1,
      label: `${tenant.label}${k + 1}`,
      tokenBefore: 0,
      queued: false,
      released: false,
      burstQueued: 0,
    })),
  );
  const all = requests.flat();
  const find = (w: Worker, id: number | undefined) => all.find((r) => r.worker === w && r.id === id);
  const grants: TenantRequest[] = [];
  const holding: TenantRequest[] = [];
  const waiting: TenantRequest[] = [];
  const violations: string[] = [];
  let lastToken = 0;
  let most = 0;
  const waitingNow = () => `waiting: ${TENANTS.map((t) => `${t.label} ${waiting.filter((r) => r.tenant === t).length}`).join(', ')}`;

  // Every report moves the run on: the driver below waits for the consequences of each step.
  let wake: (() => void)[] = [];
  const when = async (done: () => boolean) => {
    while (!done()) await new Promise<void>((resolve) => wake.push(resolve));
  };
  for (const w of workers) {
    w.on((r) => {
      const req = 'id' in r ? find(w, r.id) : undefined;
      if (req && r.ev === 'queued') {
        req.queued = true;
        waiting.push(req);
        line(r.at, req.label, `waits    position ${r.position}`, `(in ${req.tenant.group}); ${waitingNow()}`);
      } else if (req && r.ev === 'granted') {
        const group = r.group;
        req.grant = { token: r.token, at: r.at, holders: r.holders ?? [], group };
        if (waiting.includes(req)) waiting.splice(waiting.indexOf(req), 1);
        if (grants.some((g) => g.grant!.token === r.token)) violations.push(`token ${r.token} was given twice`);
        grants.push(req);
        holding.push(req);
        lastToken = Math.max(lastToken, r.token);
        most = Math.max(most, req.grant.holders.length);
        if (holding.length > permits) violations.push(`${req.label} got a permit while ${holding.filter((h) => h !== req).map((h) => h.label).join(' ')} held all ${permits}`);
        if (req.grant.holders.length > permits) violations.push(`Redis listed ${req.grant.holders.length} holders of ${permits} permits`);
        if (!req.grant.holders.includes(r.token)) violations.push(`Redis did not list ${req.label} (token ${r.token}) among the holders while it held`);
        if (group !== req.tenant.group) violations.push(`Redis listed ${req.label} in group ${JSON.stringify(group)}, not ${req.tenant.group}`);
        const through = others(req);
        const how = r.immediate ? 'a permit was free' : `waited through ${through.length} grant${through.length === 1 ? '' : 's'} of others${through.length ? ` (${through.map((g) => g.label).join(' ')})` : ''}`;
        line(r.at, req.label, `HOLDS    token ${r.token}`, `${how}; ${waitingNow()}`);
      } else if (req && r.ev === 'releasing') {
        line(r.at, req.label, 'releases');
      } else if (req && r.ev === 'released') {
        req.released = true; // (it left `holding` when it was told to let go)
      }
      const woken = wake;
      wake = [];
      for (const f of woken) f();
    });
  }
  /** The grants to other tenants made while `req` waited: tokens above the highest when it was sent, below its own. */
  const others = (req: TenantRequest) => grants.filter((g) => g.tenant !== req.tenant && g.grant!.token > req.tokenBefore && g.grant!.token < req.grant!.token);

  /** Sends one request and waits until Redis has queued or granted it. */
  const send = async (req: TenantRequest) => {
    req.tokenBefore = lastToken;
    req.burstQueued = waiting.filter((r) => r.tenant.burst).length;
    req.worker.send({ op: 'take', id: req.id });
    await when(() => req.queued || req.grant !== undefined);
  };

  out(`${'time'.padStart(8)}  who  event${' '.repeat(27)} detail`);
  const [burst, ...trickles] = requests;
  for (const req of burst!) await send(req);
  for (const t of trickles) await send(t[0]!);
  const pause = Math.max(20, options.hold / permits);
  while (holding.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, pause)); // pacing only: order and counts come from tokens
    const oldest = [...holding].sort((x, y) => x.grant!.token - y.grant!.token)[0]!;
    const granted = grants.length;
    const handsOn = waiting.length > 0; // a freed permit goes to the next turn's head: one grant
    // Out of the count when told, as the plain demo's letGo does: the grant its release makes can be
    // reported (by another process) before its own "released" is, and the two pipes' order is noise.
    holding.splice(holding.indexOf(oldest), 1);
    oldest.worker.send({ op: 'release', id: oldest.id });
    await when(() => oldest.released && (!handsOn || grants.length > granted));
    // A trickle tenant sends its next request once its last one is done.
    const next = oldest.tenant.burst ? undefined : requests[TENANTS.indexOf(oldest.tenant)]![oldest.id];
    if (next) await send(next);
  }
  for (const w of workers) w.send({ op: 'quit' });
  return groupSummary(requests, grants, violations, most, others);
}

/** The summary of `demo --groups`: each tenant's grants and waits, and the checks. Returns the exit code. */
function groupSummary(requests: TenantRequest[][], grants: TenantRequest[], violations: string[], most: number, others: (req: TenantRequest) => TenantRequest[]): number {
  const byToken = [...grants].sort((x, y) => x.grant!.token - y.grant!.token);
  const bound = TENANTS.length - 1;
  out('');
  out('summary');
  out(`  grant order   ${byToken.map((g) => g.label).join(' ')}   (by fencing token)`);
  for (const reqs of requests) {
    const t = reqs[0]!.tenant;
    const waited = reqs.filter((r) => r.queued);
    const through = waited.map((r) => others(r).length);
    const sent = t.burst ? `${reqs.length} requests at once` : `${reqs.length} requests, one at a time`;
    const waits = waited.length === 0 ? 'none waited' : `${waited.length} waited, each through at most ${Math.max(...through)} grant${Math.max(...through) === 1 ? '' : 's'} of others`;
    out(`  tenant ${`${t.label} (${t.burst ? 'burst' : 'trickle'})`.padEnd(12)} ${sent.padEnd(27)} ${reqs.filter((r) => r.grant).length} grants; ${waits}`);
  }
  const trickled = requests.flat().filter((r) => !r.tenant.burst && r.queued);
  const worst = Math.max(0, ...trickled.map((r) => others(r).length));
  const backlog = Math.max(0, ...trickled.map((r) => r.burstQueued));
  const fair = trickled.length > 0 && worst <= bound && requests.every((reqs) => reqs.every((r) => r.grant));
  const trickleLabels = TENANTS.filter((t) => !t.burst).map((t) => t.label).join(' or ');
  const burstLabel = TENANTS.find((t) => t.burst)!.label;
  out(
    `  fair share    ${mark(fair)}: no request of ${trickleLabels} waited through more than ${worst} grant${worst === 1 ? '' : 's'} of others (at most ${bound}: one per other tenant), ` +
      `with up to ${backlog} of ${burstLabel}'s queued when they asked`,
  );
  const fifo = requests.every((reqs) => {
    const tokens = reqs.map((r) => r.grant?.token ?? Infinity);
    return tokens.every((x, i) => i === 0 || x > tokens[i - 1]!);
  });
  out(`  FIFO          ${mark(fifo)}: inside each tenant, grants in the order it asked`);
  const counted = !violations.some((v) => /held all|holders of/.test(v));
  out(`  permits       ${mark(counted)}: never more than ${GROUP_PERMITS} holders at once (most seen in Redis: ${most})`);
  const grouped = !violations.some((v) => /in group|did not list|given twice/.test(v));
  out(`  groups        ${mark(grouped)}: Redis listed each of the ${grants.length} grants in its tenant's group`);
  for (const v of violations) out(`  violation     ${v}`);
  return fair && fifo && counted && grouped ? EXIT.OK : EXIT.DEMO_FAILED;
}
