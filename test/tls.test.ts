/**
 * fairlock works end to end over TLS with the client options README shows (node-redis 4 `rediss://`,
 * node-redis 5 `socket.tls`, ioredis 5 `tls`): hand-offs come by wake-up over each FairLocks' own TLS
 * subscriber, and every connection but the test's admin one is on the TLS port. Skipped, with the
 * reason, without openssl or a TLS-built redis-server.
 */
import test from 'ava';
import { Redis as IORedis5 } from 'ioredis';
import { createClient as createClient4 } from 'redis';
import { createClient as createClient5 } from 'redis-v5';
import { FairLocks, type RedisClientLike } from '../src/index.js';
import { closeClient, settleWithin, CLOSE_LIMIT_MS } from './helpers/cleanup.js';
import { whenQueued } from './helpers/queued.js';
import { connect, newPrefix } from './helpers/redis.js';
import { startTlsRedis } from './helpers/tls.js';

const tls = await startTlsRedis();
const reason = typeof tls === 'string' ? tls : undefined;
const server = typeof tls === 'string' ? undefined : tls;
test.after.always(async () => {
  if (server) await settleWithin(server.stop(), CLOSE_LIMIT_MS);
});

/* eslint-disable @typescript-eslint/no-explicit-any -- three client types, one shape used */
interface Made {
  client: RedisClientLike;
  close(): Promise<unknown>;
}

/** Each client family, connected over TLS the way README shows, trusting the test's CA. */
const families: { name: string; make(s: NonNullable<typeof server>): Promise<Made> }[] = [
  {
    name: 'node-redis 4, rediss:// URL',
    async make(s) {
      const client = createClient4({ url: s.url, socket: { tls: true, ca: s.ca } });
      client.on('error', () => undefined);
      await client.connect();
      return { client, close: () => client.disconnect() };
    },
  },
  {
    name: 'node-redis 5, socket.tls',
    async make(s) {
      const client = createClient5({ socket: { host: '127.0.0.1', port: s.tlsPort, tls: true, ca: s.ca } });
      client.on('error', () => undefined);
      await client.connect();
      return { client: client as any, close: async () => client.destroy() };
    },
  },
  {
    name: 'ioredis 5, tls option',
    async make(s) {
      const client = new IORedis5({ host: '127.0.0.1', port: s.tlsPort, tls: { ca: s.ca } });
      client.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        client.once('ready', resolve);
        client.once('end', () => reject(new Error('ioredis ended before ready')));
      });
      return { client, close: async () => client.disconnect() };
    },
  },
];

for (const family of families) {
  const title = `${family.name}: five hand-offs between two FairLocks come by wake-up over the TLS subscriber`;
  if (reason) {
    test.skip(`${title} [skipped: ${reason}]`, () => undefined);
    continue;
  }
  test.serial(title, async (t) => {
    const s = server!;
    const made: Made[] = [];
    const instances: FairLocks[] = [];
    t.teardown(async () => {
      await Promise.all(instances.map((l) => settleWithin(l.close(), CLOSE_LIMIT_MS)));
      await Promise.all(made.map((m) => settleWithin(m.close(), CLOSE_LIMIT_MS)));
    });
    made.push(await family.make(s), await family.make(s));
    const opts = { prefix: newPrefix(), heartbeatMs: 5_000, livenessMs: 10_000 };
    const [a, b] = made.map((m) => new FairLocks(m.client, opts)) as [FairLocks, FairLocks];
    instances.push(a, b);

    const holder = await a.lock('tls').acquire();
    const waits: Promise<number>[] = [];
    for (let i = 0; i < 5; i++) {
      const q = whenQueued();
      const side = i % 2 ? a : b;
      waits.push(
        side.lock('tls').acquire({ timeoutMs: 20_000, onQueued: q.onQueued }).then(async (lease) => {
          await lease.release();
          return lease.token;
        }),
      );
      await q.queued;
    }
    const started = performance.now();
    await holder.release();
    const tokens = await Promise.all(waits);
    const took = performance.now() - started;
    t.true(tokens.every((tok, i) => tok > (i === 0 ? holder.token : tokens[i - 1]!)), 'granted in queue order (tokens rise)');
    t.true(took < 10_000, `five hand-offs by wake-up, not by heartbeat (${took.toFixed(0)} ms)`);

    // Every connection of the two instances, subscribers included, came in on the TLS port.
    const admin = await connect(s.server.url);
    try {
      const clients = String(await admin.sendCommand(['CLIENT', 'LIST']))
        .trim()
        .split('\n')
        .filter((line) => !line.includes(`laddr=127.0.0.1:${s.server.port} `));
      const subscribers = clients.filter((line) => /\bsub=[1-9]/.test(line));
      t.true(subscribers.length >= 2, `both FairLocks have a subscriber: ${subscribers.length}`);
      t.true(clients.length >= 4, `two clients and two subscribers at least: ${clients.length}`);
      for (const line of clients) t.regex(line, new RegExp(`laddr=127\\.0\\.0\\.1:${s.tlsPort} `), 'on the TLS port');
    } finally {
      await closeClient(admin);
    }
  });
}
