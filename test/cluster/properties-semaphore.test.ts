/** The semaphore's property suite (3 permits, weights 1-3) on a 3-master Redis Cluster, through ioredis 5's Cluster. */
import { propertySuite } from '../properties/suite.js';
import { SUBJECTS } from '../properties/subjects.js';
import { clusterTarget } from './target.js';

propertySuite(SUBJECTS[2]!, clusterTarget('ioredis5'));
