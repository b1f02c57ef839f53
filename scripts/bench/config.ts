/** Command-line options of `npm run bench`, with the defaults of a full run and of `--quick`. */
import { CLIENT_FAMILIES, DEFAULT_CLIENTS, QUICK_CLIENTS } from './adapters/clients.js';
import { LIBRARIES, rowsFor } from './adapters/index.js';
import type { QuorumBenchOptions } from './quorum.js';
import type { TenantsOptions } from './tenants.js';

/** The scenarios, in the order a row runs them (`--scenarios`). */
export const SCENARIOS = ['latency', 'relay', 'contention', 'think', 'semaphore', 'rw', 'waiters', 'tenants', 'quorum'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchConfig {
  quick: boolean;
  /** The scenarios to run (default: all); the others' figures are absent from the results. */
  scenarios: Scenario[];
  /** The rows to run, in order: each peer, and fairlock once per client family (adapter ids). */
  libs: string[];
  procs: number;
  contenders: number;
  /** Where latest.json goes. */
  outDir: string;
  /** Also write docs/bench.{json,svg,md} and README's bench section (full runs only, unless asked). */
  docs: boolean;
  relayDelayMs: number;
  loopback: { uncontended: number; handoffs: number; settleMs: number; capMs: number; warmup: number };
  relay: { uncontended: number; handoffs: number; settleMs: number; capMs: number; warmup: number };
  durationMs: number;
  /** Time the workers get to connect before a contention run starts. */
  leadMs: number;
  drainMs: number;
  holds: number[];
  think: { holdMs: number; thinkMs: number };
  waiters: number[];
  /** A fair semaphore: `contenders` in all, spread over the worker processes, each holding `holdMs`. */
  semaphore: { permits: number; contenders: number; holdMs: number };
  /** A read-write lock: `contenders` in all, each asking for a write with probability `writeShare`. */
  rw: { contenders: number; writeShare: number; holdMs: number };
  /** Fair share between tenants (tenants.ts): the first fairlock row with and without groups, and redis-semaphore. */
  tenants: TenantsOptions;
  /** The quorum scenario (quorum.ts): fairlock's quorum beside node-redlock's on N masters of its own behind relays. */
  quorum: QuorumBenchOptions;
  waitWindowMs: number;
  /** How long the waiters may take to get queued before the window starts anyway (reported if hit). */
  waitQueueCapMs: number;
  slackMs: number;
  progress: boolean;
}

const USAGE = `usage: npm run bench -- [options]
  --quick               tiny numbers (smoke test; does not touch docs/)
  --procs N             worker processes for the contention runs (default 4)
  --contenders N        contenders per process (default 4)
  --libs a,b            only these (${LIBRARIES.join(', ')})
  --clients a,b         fairlock's rows, one per client (${CLIENT_FAMILIES.map((f) => f.slug).join(', ')}, or all;
                        default ${DEFAULT_CLIENTS.join(',')}; with --quick ${QUICK_CLIENTS.join(',')})
  --out DIR             where latest.json goes (default bench-results)
  --docs / --no-docs    write docs/bench.json, docs/bench.svg, docs/bench.md and README.md's bench section
                        (between its bench-start/bench-end markers; default: on for full runs)
  --relay-delay MS      delay per chunk each way in the relay (default 2)
  --duration MS         length of each contention run (default 1000)
  --think-hold MS       hold time in the think scenario (default 1; the pause is 10 ms)
  --scenarios a,b       only these (${SCENARIOS.join(', ')}; default all, with --quick all but quorum;
                        then no docs/ unless --docs)
  --permits N           the semaphore scenario's permits (default 4; --quick 2)
  --sem-contenders N    the semaphore scenario's contenders in all (default 16; --quick 4)
  --rw-contenders N     the read-write scenario's contenders in all (default 16; --quick 4)
  --flood N             the tenants scenario's flood: requests one tenant sends at once (default 1000; --quick 20)
  --tenants-duration MS how long its quiet tenants send, one request each every 50 ms (default 4000; --quick 200)
  --quorum-sizes a,b    the quorum scenario's master counts (default 3,5; contention on the first)
  --quorum-delay MS     its relays' delay per chunk each way (default 5)
  --quorum-workers N    its contention run's clients (default 8; --quick 4)
  --quorum-k N          acquisitions per client (default 10; --quick 2)
  --quorum-hold a,b     how long each holds, ms: one contention run per hold (default 1,10,50; --quick 1)
  --no-progress         no progress bar
Set REDIS_URL=redis://127.0.0.1:PORT to use a server you run (loopback only); otherwise the bench
starts its own redis-server on a free port and stops it at the end.`;

export function parseArgs(argv: string[]): BenchConfig {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    const takesValue = ['procs', 'contenders', 'libs', 'clients', 'out', 'relay-delay', 'duration', 'think-hold', 'scenarios', 'permits', 'sem-contenders', 'rw-contenders', 'flood', 'tenants-duration', 'quorum-sizes', 'quorum-delay', 'quorum-workers', 'quorum-k', 'quorum-hold'].includes(k);
    if (takesValue) flags.set(k, v ?? argv[++i] ?? '');
    else flags.set(k, true);
  }
  const known = ['quick', 'procs', 'contenders', 'libs', 'clients', 'out', 'docs', 'no-docs', 'relay-delay', 'duration', 'think-hold', 'no-progress',
    'scenarios', 'permits', 'sem-contenders', 'rw-contenders', 'flood', 'tenants-duration', 'quorum-sizes', 'quorum-delay', 'quorum-workers', 'quorum-k', 'quorum-hold'];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown option --${k}\n${USAGE}`);
  const quick = flags.has('quick') || process.env.BENCH_QUICK === '1';
  const int = (k: string, d: number, min = 1) => {
    const v = flags.get(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be an integer >= ${min}, got "${String(v)}"`);
    return n;
  };
  const list = (k: string) => (typeof flags.get(k) === 'string' ? String(flags.get(k)).split(',').filter(Boolean) : undefined);
  const libs = list('libs') ?? [...LIBRARIES];
  for (const l of libs) if (!LIBRARIES.includes(l)) throw new Error(`unknown library "${l}"\n${USAGE}`);
  let clients = list('clients') ?? (quick ? QUICK_CLIENTS : DEFAULT_CLIENTS);
  if (clients.includes('all')) clients = CLIENT_FAMILIES.map((f) => f.slug);
  for (const s of clients) if (!CLIENT_FAMILIES.some((f) => f.slug === s)) throw new Error(`unknown client "${s}"\n${USAGE}`);
  const durationMs = int('duration', quick ? 150 : 1_000, 50);
  // --quick leaves the quorum scenario out unless named: its servers, relays and redlock's 200 ms retries take seconds
  const scenarios = (list('scenarios') ?? SCENARIOS.filter((x) => !quick || x !== 'quorum')) as Scenario[];
  for (const x of scenarios) if (!SCENARIOS.includes(x)) throw new Error(`unknown scenario "${x}"\n${USAGE}`);
  const all = SCENARIOS.every((x) => scenarios.includes(x));
  const tenantsMs = int('tenants-duration', quick ? 200 : 4_000, 50);
  const sizes = (list('quorum-sizes') ?? (quick ? ['3'] : ['3', '5'])).map(Number);
  for (const q of sizes) if (!Number.isInteger(q) || q < 3 || q % 2 === 0 || q > 9) throw new Error(`--quorum-sizes takes odd master counts from 3 to 9, got ${q}\n${USAGE}`);
  const quorumHolds = (list('quorum-hold') ?? (quick ? ['1'] : ['1', '10', '50'])).map(Number);
  for (const h of quorumHolds) if (!Number.isInteger(h) || h < 0 || h > 10_000) throw new Error(`--quorum-hold takes whole milliseconds from 0 to 10000, got ${h}\n${USAGE}`);
  return {
    quick,
    scenarios: SCENARIOS.filter((x) => scenarios.includes(x)),
    libs: rowsFor(libs, [...new Set(clients)]),
    procs: int('procs', quick ? 2 : 4),
    contenders: int('contenders', quick ? 2 : 4),
    outDir: typeof flags.get('out') === 'string' ? String(flags.get('out')) : 'bench-results',
    docs: flags.has('docs') ? true : flags.has('no-docs') ? false : !quick && all,
    relayDelayMs: int('relay-delay', 2, 0),
    loopback: quick
      ? { uncontended: 20, handoffs: 5, settleMs: 3, capMs: 120, warmup: 3 }
      : { uncontended: 1_000, handoffs: 200, settleMs: 3, capMs: 1_000, warmup: 50 },
    relay: quick
      ? { uncontended: 5, handoffs: 2, settleMs: 15, capMs: 150, warmup: 1 }
      : { uncontended: 60, handoffs: 30, settleMs: 15, capMs: 1_000, warmup: 5 },
    durationMs,
    leadMs: quick ? 200 : 250,
    drainMs: quick ? 100 : 200,
    holds: [0, 1],
    think: { holdMs: int('think-hold', 1, 0), thinkMs: 10 },
    waiters: quick ? [10] : [10, 100, 1_000, 10_000],
    semaphore: { permits: int('permits', quick ? 2 : 4), contenders: int('sem-contenders', quick ? 4 : 16), holdMs: 1 },
    rw: { contenders: int('rw-contenders', quick ? 4 : 16), writeShare: 0.1, holdMs: 1 },
    // a semaphore of 4 held 20 ms serves 200 grants/s: 1,000 requests at once keep it backlogged past the
    // 4 s window whatever the order (FIFO: 5 s of flood ahead of every quiet request)
    tenants: {
      permits: quick ? 2 : 4,
      holdMs: quick ? 5 : 20,
      flood: int('flood', quick ? 20 : 1_000),
      quiet: 2,
      intervalMs: 50,
      durationMs: tenantsMs,
      capMs: tenantsMs + (quick ? 2_800 : 7_000),
      leadMs: quick ? 300 : 500,
    },
    quorum: {
      sizes,
      delayMs: int('quorum-delay', 5, 0),
      uncontended: quick ? 5 : 30,
      handoffs: quick ? 2 : 20,
      settleMs: quick ? 15 : 30,
      warmup: quick ? 1 : 5,
      capMs: quick ? 1_500 : 8_000,
      workers: int('quorum-workers', quick ? 4 : 8),
      perWorker: int('quorum-k', quick ? 2 : 10),
      holdsMs: quorumHolds,
      contentionCapMs: quick ? 3_000 : 20_000,
      idleMs: quick ? 200 : 1_000,
    },
    waitWindowMs: quick ? 200 : 2_000,
    waitQueueCapMs: quick ? 10_000 : 30_000,
    slackMs: 2,
    progress: !flags.has('no-progress') && !quick,
  };
}
