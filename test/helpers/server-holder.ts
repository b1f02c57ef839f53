/**
 * A process that starts one redis-server of its own through the test helper, prints its PID and
 * waits (30 s at most) to be ended: test/servers-stopped-on-sigterm.test.ts sends it SIGTERM as ava
 * does to a file that timed out.
 */
import { startRedisProcess } from './redis.js';

const server = await startRedisProcess();
process.stdout.write(`${server.pid}\n`);
setTimeout(() => void server.stop().then(() => process.exit(0)), 30_000);
