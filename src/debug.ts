import { debuglog } from 'node:util';

/** Off by default; NODE_DEBUG=fairlock turns it on. */
export const debug = debuglog('fairlock');
