/**
 * The lock (semaphore of one permit, weight 1) keeps every property of the shared suite
 * (test/properties/suite.ts) on one Redis.
 */
import { propertySuite } from './suite.js';
import { SUBJECTS } from './subjects.js';

propertySuite(SUBJECTS[0]!);
