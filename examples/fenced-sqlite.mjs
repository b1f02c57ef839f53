// Recipe: a fenced write to a real database (SQLite, through Node's built-in `node:sqlite`).
//
// A lease can run out while its holder is paused (GC pause, SIGSTOP, a slow disk): Redis grants the
// lock to the next waiter, and the paused holder, when it wakes up, may still send its write. The
// database closes that gap: every row keeps the highest fencing token that wrote it, and a write whose
// token is lower is refused by the UPDATE's WHERE clause.
//
// `node:sqlite` is built into Node >= 22.13 (no native addon to build). On Node 20 this example says so
// and exits 0; test/examples.test.ts runs it with Node 24 (scripts/node.sh).
//
//   REDIS_URL=redis://127.0.0.1:6379 node examples/fenced-sqlite.mjs
import { createClient } from 'redis';
import { FairLocks } from 'fairlock';

let DatabaseSync;
try {
  ({ DatabaseSync } = await import('node:sqlite'));
} catch {
  console.log(`skipped: node:sqlite needs Node >= 22.13 (this is ${process.version})`);
  process.exit(0);
}

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const db = new DatabaseSync(':memory:'); // a file path works the same way
db.exec(`CREATE TABLE reports (id TEXT PRIMARY KEY, value TEXT NOT NULL, fence INTEGER NOT NULL)`);
db.prepare(`INSERT INTO reports (id, value, fence) VALUES (?, ?, 0)`).run('daily', 'empty');
// `fence <= ?`: a holder may write more than once with its token; any lower (older) token is refused.
const update = db.prepare(`UPDATE reports SET value = ?, fence = ? WHERE id = ? AND fence <= ?`);
const read = db.prepare(`SELECT value, fence FROM reports WHERE id = ?`);

/** The fenced write: true if it landed, false if a newer holder has written already. */
function fencedWrite(id, value, token) {
  return update.run(value, token, id, token).changes === 1;
}

// Two processes in real life; two FairLocks instances (two sessions) with their own connections here.
const redisA = await createClient({ url }).connect();
const redisB = await createClient({ url }).connect();
const options = { prefix: 'example', heartbeatMs: 100, livenessMs: 500 };
const a = new FairLocks(redisA, options);
const b = new FairLocks(redisB, options);
a.on('lost', (lease) => console.log(`A is told its lease ${lease.token} was lost (lease.signal aborted)`));

// A holds a short lease that nobody renews: the stand-in for a process about to be paused.
const leaseA = await a.lock('report:daily').acquire({ leaseMs: 300, autoRenew: false });
console.log(`A holds token ${leaseA.token}; writes:`, fencedWrite('daily', 'written by A', leaseA.token));

// A "pauses" (it does not run, does not release); B waits in the queue and is granted once A's lease
// has run out in Redis, then writes twice with its own, higher token.
const leaseB = await b.lock('report:daily').acquire({ timeoutMs: 10_000 });
console.log(`B holds token ${leaseB.token} (after A's lease ran out); writes:`,
  fencedWrite('daily', 'written by B', leaseB.token), fencedWrite('daily', 'written by B again', leaseB.token));

// A wakes up and sends the write it had prepared before the pause: refused.
await sleep(50);
const staleLanded = fencedWrite('daily', 'STALE write by A', leaseA.token);
console.log(`A (stale, token ${leaseA.token}) writes:`, staleLanded, staleLanded ? '' : '-> rejected by the fence');
const row = read.get('daily');
console.log(`row: value=${JSON.stringify(row.value)} fence=${row.fence}`);

await leaseB.release();
// A's release rejects with LockLostError (code LOCK_LOST): the lock was no longer A's to release.
await leaseA.release().catch((err) => console.log(`A's release: ${err.code}`));
await Promise.all([a.close(), b.close()]);
await Promise.all([redisA.quit(), redisB.quit()]);
db.close();

if (staleLanded || row.value !== 'written by B again' || Number(row.fence) !== leaseB.token || !(leaseB.token > leaseA.token)) {
  console.error('FAILED: the stale holder\'s write must be refused and B\'s write kept');
  process.exit(1);
}
console.log('ok: the stale holder was fenced off');
