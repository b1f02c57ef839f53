/**
 * ava ends a test file that timed out with SIGTERM, and Node then exits without its 'exit' event, so
 * the hooks that kill this process's redis-servers and children by PID (redis.ts, cluster.ts,
 * children.ts) never ran: a timed-out file left its servers running. A SIGTERM handler that calls
 * process.exit runs them. Imported for its effect by each of those helpers (once per process).
 */
process.on('SIGTERM', () => process.exit(143));
