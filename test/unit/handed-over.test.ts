/**
 * handedOver (src/quorum/chain.ts): the handover a hand-off grant's wake-up carried came through
 * Redis, so only well-formed pairs for masters above the one granted are used as an acquire's prev;
 * anything else is left out (that grant is released by its holder's heartbeat instead), never sent
 * to fail an acquire with BADARG.
 */
import test from 'ava';
import { GUARD_ID } from '../../src/protocol/codes.js';
import { waiterId } from '../../src/protocol/keys.js';
import { handedOver } from '../../src/quorum/chain.js';

const a = waiterId('s1', 4, 5_000, true, 1, 'x');
const b = waiterId('s2', 9, 5_000, false, 1, 'x');

test('well-formed pairs above the granted master, by index', (t) => {
  t.deepEqual([...handedOver(`1=${a},2=${b}`, 0, 3)], [[1, a], [2, b]]);
  t.deepEqual([...handedOver(`2=${b}`, 1, 5)], [[2, b]]);
});

test('nothing for none, and malformed or out-of-range pairs are left out', (t) => {
  t.is(handedOver(undefined, 0, 3).size, 0);
  t.is(handedOver('', 0, 3).size, 0);
  t.deepEqual([...handedOver(`0=${a},1=${b}`, 0, 3)], [[1, b]], 'not the granted master or below');
  t.deepEqual([...handedOver(`3=${a},1=${b}`, 0, 3)], [[1, b]], 'not past the last master');
  for (const bad of [`1=${a}x`, `x=${a}`, `=${a}`, `1.5=${a}`, `1=${GUARD_ID}`, '1=a_b:1:5000:1:1:x', `1=${a} `, '1']) {
    t.is(handedOver(bad, 0, 3).size, 0, bad);
  }
});
