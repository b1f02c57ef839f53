import test from 'ava';
import { spawnChild } from './helpers/children.js';
import { connect, newPrefix } from './helpers/redis.js';
import type { Event } from './helpers/worker.js';
import { useRedis } from './helpers/fixture.js';

const fx = useRedis();

type Section = Extract<Event, { ev: 'section' }>;

test('4 processes x 8 contenders: no two critical sections overlap, tokens rise in grant order', async (t) => {
  const prefix = newPrefix();
  const procs = 4;
  const contenders = 8;
  const rounds = 5;
  for (let i = 0; i < procs; i++) fx.children.push(await spawnChild(fx.server.url, prefix));
  const counterKey = `${prefix}:inside`;
  for (const c of fx.children) c.send({ op: 'contend', req: 'run', name: 'shared', contenders, rounds, holdMs: 1, counterKey });
  await Promise.all(fx.children.map((c) => c.expect('run', 'done', 90_000)));

  const sections = fx.children.flatMap((c) => c.events.filter((e): e is Section => e.ev === 'section'));
  t.is(sections.length, procs * contenders * rounds);
  t.is(sections.filter((s) => s.overlap).length, 0, 'a critical section saw another one inside');

  sections.sort((a, b) => a.start - b.start);
  for (let i = 1; i < sections.length; i++) {
    const [prev, cur] = [sections[i - 1]!, sections[i]!];
    t.true(cur.start >= prev.end, `section ${i} started before section ${i - 1} ended`);
    t.true(cur.token > prev.token, `token ${cur.token} granted after ${prev.token}`);
  }
  const client = await connect(fx.server.url);
  t.is(await client.get(counterKey), '0');
  await client.quit();
});
