/** INFO snapshots: commands run (every command, also those inside scripts), CPU and memory. */
import { createClient } from 'redis';
import { now } from './clock.js';

export interface Snapshot {
  /**
   * When Redis ran the INFO, on Redis's own clock (`server_time_usec`, ms): the instant its counters
   * were read, so two snapshots' `at` bound exactly the window their deltas cover. Only ever
   * compared with another snapshot's `at` of the same server. (A server too old to say: the
   * midpoint of our request's round trip, on our clock.)
   */
  at: number;
  /** Sum of `calls` over INFO commandstats, without INFO itself. */
  commands: number;
  byCommand: Record<string, number>;
  /** Microseconds Redis spent inside each command (a script's own includes the commands it ran). */
  usecByCommand: Record<string, number>;
  /** used_cpu_sys + used_cpu_user, seconds. */
  cpu: number;
  usedMemory: number;
}

export interface Delta {
  /** Between the two INFOs, on Redis's clock: the window the counts cover. */
  seconds: number;
  commands: number;
  byCommand: Record<string, number>;
  usecByCommand: Record<string, number>;
  cpuSeconds: number;
  memory: number;
}

export class RedisStats {
  private constructor(private readonly client: ReturnType<typeof createClient>) {}

  static async connect(url: string): Promise<RedisStats> {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    return new RedisStats(client);
  }

  async snapshot(): Promise<Snapshot> {
    const sent = now();
    const text = await this.client.info('all');
    const got = now();
    const byCommand: Record<string, number> = {};
    const usecByCommand: Record<string, number> = {};
    let commands = 0;
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      if (m[1] === 'info') continue;
      byCommand[m[1]!] = Number(m[2]);
      usecByCommand[m[1]!] = Number(m[3]);
      commands += Number(m[2]);
    }
    const field = (name: string) => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    const serverMs = field('server_time_usec') / 1000;
    const at = Number.isFinite(serverMs) ? serverMs : (sent + got) / 2;
    return { at, commands, byCommand, usecByCommand, cpu: field('used_cpu_sys') + field('used_cpu_user'), usedMemory: field('used_memory') };
  }

  static delta(a: Snapshot, b: Snapshot): Delta {
    const diff = (x: Record<string, number>, y: Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(y)) {
        const d = v - (x[k] ?? 0);
        if (d > 0) out[k] = d;
      }
      return out;
    };
    const byCommand = diff(a.byCommand, b.byCommand);
    const usecByCommand = diff(a.usecByCommand, b.usecByCommand);
    return { seconds: (b.at - a.at) / 1000, commands: b.commands - a.commands, byCommand, usecByCommand, cpuSeconds: b.cpu - a.cpu, memory: b.usedMemory - a.usedMemory };
  }

  async flushAll(): Promise<void> {
    await this.client.flushAll();
  }

  async resetStats(): Promise<void> {
    await this.client.configResetStat();
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => undefined);
  }
}
