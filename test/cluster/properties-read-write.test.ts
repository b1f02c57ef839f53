/** The read-write lock's property suite on a 3-master Redis Cluster, through node-redis 6's createCluster(). */
import { propertySuite } from '../properties/suite.js';
import { SUBJECTS } from '../properties/subjects.js';
import { clusterTarget } from './target.js';

propertySuite(SUBJECTS[3]!, clusterTarget('redis6'));
