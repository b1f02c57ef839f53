/**
 * Fair share across groups (DESIGN §7) as properties: the group model check of the shared suite
 * (suite.ts groupModelSuite: every step of randomized sequences against GroupRule, subjects.ts) on
 * the lock and the semaphore with and without perGroup, through the client FAIRLOCK_TEST_CLIENT names.
 */
import { groupModelSuite } from './suite.js';
import { GROUP_SUBJECTS } from './subjects.js';

for (const subject of GROUP_SUBJECTS) groupModelSuite(subject, { sequences: 3, steps: 50 });
