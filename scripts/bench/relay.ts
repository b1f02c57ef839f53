/**
 * A TCP relay in front of Redis that delays every chunk by `delayMs` each way, so that round trips,
 * not CPU, decide the latency ratios. It runs in a child process of its own (its timers must not
 * share the measuring event loop) and counts the chunks clients send, which for sequential calls is
 * the number of client round trips.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

interface Counts {
  chunksUp: number;
  connections: number;
}

function serve(targetPort: number, delayMs: number): void {
  const counts: Counts = { chunksUp: 0, connections: 0 };
  const pipe = (from: Socket, to: Socket, up: boolean) => {
    from.on('data', (chunk) => {
      if (up) counts.chunksUp++;
      // Equal delays keep order: Node fires timers of one duration in the order they were set.
      setTimeout(() => to.destroyed || to.write(chunk), delayMs);
    });
    from.on('close', () => setTimeout(() => to.destroy(), delayMs));
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    counts.connections++;
    client.setNoDelay(true);
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    upstream.setNoDelay(true);
    pipe(client, upstream, true);
    pipe(upstream, client, false);
  });
  server.listen(0, '127.0.0.1', () => {
    process.send!({ ready: (server.address() as { port: number }).port });
  });
  process.on('message', (m: { op: string; id: number }) => {
    if (m.op === 'counts') process.send!({ id: m.id, counts });
  });
  process.on('disconnect', () => process.exit(0));
}

export interface Relay {
  url: string;
  pid: number;
  delayMs: number;
  counts(): Promise<Counts>;
  stop(): Promise<void>;
}

export async function spawnRelay(targetUrl: string, delayMs: number): Promise<Relay> {
  const target = new URL(targetUrl);
  const proc: ChildProcess = fork(fileURLToPath(import.meta.url), ['serve', target.port || '6379', String(delayMs)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('relay did not start within 15 s')), 15_000);
    proc.once('message', (m: { ready: number }) => (clearTimeout(timer), resolve(m.ready)));
    proc.once('exit', (code) => (clearTimeout(timer), reject(new Error(`relay exited with ${code}`))));
  });
  let seq = 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: proc.pid!,
    delayMs,
    counts: () =>
      new Promise<Counts>((resolve, reject) => {
        const id = ++seq;
        const timer = setTimeout(() => reject(new Error('relay did not answer')), 5_000);
        const on = (m: { id?: number; counts?: Counts }) => {
          if (m.id !== id) return;
          clearTimeout(timer);
          proc.off('message', on);
          resolve(m.counts!);
        };
        proc.on('message', on);
        proc.send({ op: 'counts', id });
      }),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      process.kill(proc.pid!, 'SIGKILL');
      await exited;
    },
  };
}

if (process.argv[2] === 'serve' && process.send && fileURLToPath(import.meta.url) === process.argv[1]) {
  serve(Number(process.argv[3]), Number(process.argv[4]));
}
