/**
 * The read-write lock keeps every property of the shared suite (test/properties/suite.ts) on one Redis.
 */
import { propertySuite } from './suite.js';
import { SUBJECTS } from './subjects.js';

propertySuite(SUBJECTS[3]!);
