/**
 * Mutual exclusion across processes: 4 processes x 8 contenders never have two critical sections overlap,
 * and fencing tokens rise in grant order (both decided by Redis's INCR order, not clocks).
 */
import test from 'ava';
import { spawnChild, type Child } from './helpers/children.js';
import { newPrefix } from './helpers/redis.js';
import type { Event } from './helpers/worker.js';
import { useRedis } from './helpers/fixture.js';

const fx = useRedis();

type Section = Extract<Event, { ev: 'section' }>;

test('4 processes x 8 contenders: no two critical sections overlap, tokens rise in grant order', async (t) => {
  const prefix = newPrefix();
  const procs = 4;
  const contenders = 8;
  const rounds = 5;
  const children: Child[] = [];
  for (let i = 0; i < procs; i++) children.push(await spawnChild(t, fx.server.url, prefix));
  const counterKey = `${prefix}:inside`;
  // Each section is bracketed by INCRs of seqKey: Redis's one order for all processes, not a clock.
  const seqKey = `${prefix}:seq`;
  for (const c of children) c.send({ op: 'contend', req: 'run', name: 'shared', contenders, rounds, holdMs: 1, counterKey, seqKey });
  await Promise.all(children.map((c) => c.expect('run', 'done', 90_000)));

  const sections = children.flatMap((c) => c.events.filter((e): e is Section & { receivedAt: number } => e.ev === 'section'));
  t.is(sections.length, procs * contenders * rounds);
  t.is(sections.filter((s) => s.overlap).length, 0, 'a critical section saw another one inside');

  sections.sort((a, b) => a.startSeq - b.startSeq);
  for (let i = 1; i < sections.length; i++) {
    const [prev, cur] = [sections[i - 1]!, sections[i]!];
    t.true(cur.startSeq > prev.endSeq, `section ${i} started before section ${i - 1} ended`);
    t.true(cur.token > prev.token, `token ${cur.token} granted after ${prev.token}`);
  }
  t.is(await fx.client.get(counterKey), '0');
  t.is(Number(await fx.client.get(seqKey)), 2 * sections.length);
});
