/** INFO snapshots: commands run (every command, also those inside scripts), CPU and memory. */
import { createClient } from 'redis';

export interface Snapshot {
  at: number;
  /** Sum of `calls` over INFO commandstats, without INFO itself. */
  commands: number;
  byCommand: Record<string, number>;
  /** used_cpu_sys + used_cpu_user, seconds. */
  cpu: number;
  usedMemory: number;
}

export interface Delta {
  seconds: number;
  commands: number;
  byCommand: Record<string, number>;
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
    const text = await this.client.info('all');
    const byCommand: Record<string, number> = {};
    let commands = 0;
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (m[1] === 'info') continue;
      byCommand[m[1]!] = Number(m[2]);
      commands += Number(m[2]);
    }
    const field = (name: string) => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    return { at: Date.now(), commands, byCommand, cpu: field('used_cpu_sys') + field('used_cpu_user'), usedMemory: field('used_memory') };
  }

  static delta(a: Snapshot, b: Snapshot): Delta {
    const byCommand: Record<string, number> = {};
    for (const [k, v] of Object.entries(b.byCommand)) {
      const d = v - (a.byCommand[k] ?? 0);
      if (d > 0) byCommand[k] = d;
    }
    return { seconds: (b.at - a.at) / 1000, commands: b.commands - a.commands, byCommand, cpuSeconds: b.cpu - a.cpu, memory: b.usedMemory - a.usedMemory };
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
