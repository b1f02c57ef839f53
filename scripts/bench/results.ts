/** The shape of bench-results/latest.json (and docs/bench.json). */
import type { CostRow } from './contention-cost.js';
import type { ContendResult } from './contention.js';
import type { LatencyResult } from './latency.js';
import type { QuorumResult } from './quorum.js';
import type { TenantsOptions, TenantsResult } from './tenants.js';
import type { WaitersResult } from './waiters.js';

export interface LibResult {
  id: string;
  label: string;
  client: string;
  wakeup: string;
  loopback?: LatencyResult & { commandsPerGrant?: number | null; cpuUsPerGrant?: number | null };
  relay?: LatencyResult;
  contention: ContendResult[];
  think?: ContendResult;
  /** The fair-semaphore scenario (libraries with a semaphore: Adapter.kinds). */
  semaphore?: ContendResult;
  /** The read-write scenario (libraries with a read-write lock). */
  rw?: ContendResult;
  /** What the library used for those, when it has them (Adapter.kinds). */
  kinds?: { semaphore?: string; rw?: string };
  waiters: WaitersResult[];
  /** The tenants scenario: fairlock's first row with groups and without ('groups', 'fifo'), redis-semaphore ('peer'). */
  tenants?: TenantsResult[];
  errors: string[];
}

export interface Target {
  what: string;
  goal: string;
  value: string;
  met: boolean | null;
}

export interface BenchResults {
  meta: {
    date: string;
    command: string;
    node: string;
    redis: string;
    cpu: string;
    cores: number;
    os: string;
    relayDelayMs: number;
    waitWindowMs: number;
    /** Older runs: absent. */
    waitQueueCapMs?: number;
    thinkHoldMs: number;
    procs: number;
    contenders: number;
    /** The scenarios run (older runs: absent, all of the time). */
    scenarios?: string[];
    semaphore?: { permits: number; contenders: number; holdMs: number };
    rw?: { contenders: number; writeShare: number; holdMs: number };
    tenants?: TenantsOptions;
    quick: boolean;
    elapsedSec: number;
  };
  libs: LibResult[];
  /** Redis CPU and commands per acquisition, fairlock beside redis-semaphore (older runs: absent). */
  cost?: CostRow[];
  /** The quorum scenario: fairlock's quorum beside node-redlock's on N masters of its own (absent unless it ran). */
  quorum?: QuorumResult;
  targets: Target[];
}

/** fairlock's rows, one per client family (`fairlock (node-redis 4)`, ...); older runs had one, `fairlock`. */
export const isFairlock = (l: { id: string }): boolean => l.id === 'fairlock' || l.id.startsWith('fairlock (');
