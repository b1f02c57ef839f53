import { propertySuite } from './suite.js';
import { SUBJECTS } from './subjects.js';

propertySuite(SUBJECTS[2]!);
