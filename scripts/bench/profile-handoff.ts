/**
 * Where fairlock's hand-off time goes on loopback (not part of `npm run bench`):
 *   ping        PING round trip
 *   pubFloor    EVALSHA of a one-line script that PUBLISHes -> the message reaches another connection
 *   toMessage   fairlock: release() call -> the wake-up message reaches the waiter's subscriber
 *   toResolve   fairlock: release() call -> the waiter's acquire() resolves
 * `npx tsx scripts/bench/profile-handoff.ts`
 */
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { FairLocks as FairLocksSrc } from '../../src/index.js';
import { sleep } from './clock.js';
import { newProtocol, shaOf } from './lua-bodies.js';
import { startBenchRedis } from './redis-server.js';
import { spawnRelay } from './relay.js';
import { dist } from './stats.js';

const N = Number(process.env.N ?? 500);
// FAIRLOCK_MODULE=/path/to/index.(js|ts) measures another build or a patched copy of src/
const FairLocks: typeof FairLocksSrc = process.env.FAIRLOCK_MODULE
  ? ((await import(process.env.FAIRLOCK_MODULE)) as { FairLocks: typeof FairLocksSrc }).FairLocks
  : FairLocksSrc;
const redis = await startBenchRedis();
// RELAY_DELAY=2: every connection goes through the bench's delaying relay
const relay = process.env.RELAY_DELAY ? await spawnRelay(redis.url, Number(process.env.RELAY_DELAY)) : undefined;
const url = relay?.url ?? redis.url;
try {
  const mk = async () => {
    const c = createClient({ url });
    await c.connect();
    return c;
  };
  const [ca, cb, cx, cy] = await Promise.all([mk(), mk(), mk(), mk()]);
  const a = new FairLocks(ca as never, { prefix: 'h' });
  const b = new FairLocks(cb as never, { prefix: 'h' });
  let msgAt = 0;
  const session = (b as unknown as { session: { onWake: (m: string) => void } }).session;
  const orig = session.onWake.bind(session);
  session.onWake = (m: string) => {
    msgAt = performance.now();
    orig(m);
  };
  // stamp when fairlock's release EVALSHA is handed to node-redis, and when its reply is back
  let sentAt = 0;
  let replyAt = 0;
  const send = ca.sendCommand.bind(ca);
  (ca as unknown as { sendCommand: typeof send }).sendCommand = ((args: string[], ...rest: never[]) => {
    sentAt = performance.now();
    const p = send(args as never, ...rest);
    return (p as Promise<unknown>).then((r) => ((replyAt = performance.now()), r));
  }) as typeof send;
  let floorAt = 0;
  await cy.subscribe('floor', () => (floorAt = performance.now()));
  const pubSha = String(await cx.sendCommand(['SCRIPT', 'LOAD', `redis.call('PUBLISH', KEYS[1], ARGV[1]) return 1`]));
  await cx.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '0']);
  await cx.sendCommand(['CONFIG', 'SET', 'slowlog-max-len', '100000']);
  await cx.sendCommand(['SLOWLOG', 'RESET']);
  const t: Record<string, number[]> = { ping: [], pubFloor: [], toSend: [], toMessage: [], toReply: [], toResolve: [] };
  for (let i = 0; i < N + 50; i++) {
    const rec = i >= 50;
    let t0 = performance.now();
    await cx.ping();
    if (rec) t.ping!.push(performance.now() - t0);
    floorAt = 0;
    t0 = performance.now();
    await cx.sendCommand(['EVALSHA', pubSha, '1', 'floor', 'x']);
    for (let k = 0; k < 1000 && !floorAt; k++) await sleep(0);
    if (rec && floorAt) t.pubFloor!.push(floorAt - t0);
    const held = await a.lock('x').acquire();
    let resolvedAt = 0;
    const waiting = b.lock('x').acquire().then((l) => ((resolvedAt = performance.now()), l));
    await sleep(relay ? 15 : 3);
    msgAt = 0;
    t0 = performance.now();
    await held.release();
    const got = await waiting;
    if (rec) {
      t.toSend!.push(sentAt - t0);
      t.toReply!.push(replyAt - t0);
      t.toMessage!.push(msgAt - t0);
      t.toResolve!.push(resolvedAt - t0);
    }
    await got.release();
  }
  // Redis-side time per script, by what it did (slowlog: every command with its duration)
  const log = (await cx.sendCommand(['SLOWLOG', 'GET', '100000'])) as [number, number, number, string[]][];
  const shas = new Map<string, string>();
  // the SHAs fairlock sends (src/protocol/scripts.ts builds the bodies the same way)
  const p = newProtocol();
  for (const n of ['acquire', 'release', 'heartbeat', 'cancel'] as const) shas.set(shaOf(p.body(n)), n);
  shas.set(pubSha, 'publish-floor');
  const by = new Map<string, number[]>();
  for (const [, , us, args] of log) {
    const name = String(args[0]).toLowerCase() === 'evalsha' ? (shas.get(String(args[1])) ?? 'other-script') : String(args[0]).toLowerCase();
    by.set(name, [...(by.get(name) ?? []), us]);
  }
  for (const [k, v] of by) {
    const d = dist(v);
    console.log(`redis-side ${k.padEnd(14)} n=${String(d.n).padStart(5)} p50 ${d.p50} us  p99 ${d.p99} us`);
  }
  const ping = dist(t.ping!).p50!;
  for (const [k, v] of Object.entries(t)) {
    const d = dist(v);
    console.log(`${k.padEnd(10)} p50 ${(d.p50! * 1000).toFixed(0).padStart(5)} us  p99 ${(d.p99! * 1000).toFixed(0).padStart(6)} us  ${(d.p50! / ping).toFixed(2)}x PING`);
  }
  await Promise.all([a.close(), b.close()]);
  await Promise.all([ca, cb, cx, cy].map((c) => c.quit()));
} finally {
  await relay?.stop();
  await redis.stop();
}
