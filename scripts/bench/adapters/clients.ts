/**
 * The Redis clients fairlock is benchmarked on: one fairlock row per family. Each is made the way a
 * user would make it (no reconnects, so a dead server fails fast), and its module is imported only
 * when a row of it runs, so a worker loads one client family, not all of them.
 */

/** A connected client of one family, with the few calls the bench makes on it directly. */
export interface BenchClient {
  /** What `new FairLocks(client)` is given. */
  raw: unknown;
  /** PING on this very connection: the floor the row's latencies are compared with. */
  ping(): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): Promise<unknown>;
}

export interface ClientFamily {
  /** For `--clients`. */
  slug: string;
  /** For the row name: `fairlock (<name>)`. */
  name: string;
  /** Imports the client's module (a worker does this before a timed run: ~0.5 s for node-redis 6 on a busy machine). */
  load(): Promise<unknown>;
  connect(url: string): Promise<BenchClient>;
}

interface NodeRedis {
  on(event: 'error', f: () => void): unknown;
  connect(): Promise<unknown>;
  ping(): Promise<unknown>;
  /** v4 */
  quit?(): Promise<unknown>;
  disconnect?(): Promise<unknown>;
  /** v5, v6 */
  close?(): Promise<unknown>;
  destroy?(): unknown;
}

interface IORedis {
  connect(): Promise<unknown>;
  on(event: 'error', f: () => void): unknown;
  ping(): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

type CreateClient = (options: object) => unknown;
type IORedisClass = new (url: string, options: object) => unknown;

function nodeRedis(slug: string, name: string, load: () => Promise<{ createClient: unknown }>, resp3 = false): ClientFamily {
  return {
    slug,
    name,
    load,
    async connect(url) {
      const createClient = (await load()).createClient as CreateClient;
      const c = createClient({ url, socket: { reconnectStrategy: false }, ...(resp3 ? { RESP: 3 } : {}) }) as NodeRedis;
      c.on('error', () => undefined);
      await c.connect();
      return {
        raw: c,
        ping: () => c.ping(),
        quit: () => (c.close ? c.close() : c.quit!()),
        disconnect: async () => (c.destroy ? c.destroy() : c.disconnect!()),
      };
    },
  };
}

function ioredis(slug: string, name: string, load: () => Promise<{ Redis: unknown }>): ClientFamily {
  return {
    slug,
    name,
    load,
    async connect(url) {
      const Redis = (await load()).Redis as IORedisClass;
      const c = new Redis(url, { lazyConnect: true, retryStrategy: () => null }) as IORedis;
      c.on('error', () => undefined);
      await c.connect();
      return { raw: c, ping: () => c.ping(), quit: () => c.quit(), disconnect: async () => c.disconnect() };
    },
  };
}

/** Every family fairlock accepts, oldest first. */
export const CLIENT_FAMILIES: readonly ClientFamily[] = [
  nodeRedis('redis4', 'node-redis 4', () => import('redis')),
  nodeRedis('redis5', 'node-redis 5', () => import('redis-v5')),
  nodeRedis('redis6', 'node-redis 6', () => import('redis-v6')),
  nodeRedis('redis6-resp3', 'node-redis 6 RESP3', () => import('redis-v6'), true),
  ioredis('ioredis5', 'ioredis 5', () => import('ioredis')),
  ioredis('ioredis6', 'ioredis 6', () => import('ioredis-v6')),
];

/** fairlock's rows in a full run (node-redis 5 sits between 4 and 6: `--clients all` adds it). */
export const DEFAULT_CLIENTS = ['redis4', 'redis6', 'redis6-resp3', 'ioredis5', 'ioredis6'];
/** ... and in `--quick`: one of each kind, to keep the smoke test short. */
export const QUICK_CLIENTS = ['redis4', 'ioredis5'];
