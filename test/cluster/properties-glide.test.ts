/**
 * The lock keeps the shared property suite on a 3-master Redis Cluster through Valkey GLIDE's
 * GlideClusterClient: scripts routed to each name's master, wake-ups over sharded pub/sub subscribed at
 * run time, a lost wake-up recovered, no polling, liveness.
 */
import { propertySuite } from '../properties/suite.js';
import { SUBJECTS } from '../properties/subjects.js';
import { clusterTarget } from './target.js';

propertySuite(SUBJECTS[0]!, clusterTarget('glide'));
