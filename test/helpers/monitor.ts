/**
 * MONITOR on a real server, over a raw socket: the commands it runs from now on, one line each
 * (`+1700000000.123456 [0 127.0.0.1:5000] "FCALL" "..."`; commands a script runs say `lua`).
 * Stopped with the test. For tests that count what reached a server, not what a client meant to send.
 */
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { engineCall, type ScriptName } from '../../src/protocol/scripts.js';
import { scopeOf } from './cleanup.js';

export interface Monitor {
  readonly lines: string[];
  /** The calls of the engine's entry `name` (FCALL or EVALSHA) seen so far. */
  calls(name: ScriptName): number;
}

export async function monitor(t: ExecutionContext, port: number): Promise<Monitor> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  scopeOf(t).add(() => void socket.destroy());
  const lines: string[] = [];
  let rest = '';
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.write('MONITOR\r\n'));
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      const text = rest + chunk.toString('latin1');
      const parts = text.split('\r\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        if (line === '+OK') resolve();
        else if (lines.length < 100_000) lines.push(line);
      }
    });
  });
  return {
    lines,
    calls(name) {
      const { fn, sha } = engineCall(name);
      return lines.filter((l) => l.includes(`"${fn}"`) || l.includes(`"${sha}"`)).length;
    },
  };
}
