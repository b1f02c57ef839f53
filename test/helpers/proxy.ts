/**
 * A TCP proxy in front of Redis that can
 *  - hold: stop forwarding both ways (a partition; sockets stay open, data is buffered),
 *  - heal: forward what was buffered,
 *  - dropReplyAfter(pattern): the next request chunk that contains `pattern` is forwarded to Redis,
 *    and the reply Redis sends on that connection is thrown away and the connection destroyed
 *    (Redis ran the command, the client never sees the reply),
 *  - refuse(ms): destroy every new connection for `ms` (slows the reconnect down).
 */
import net from 'node:net';
import { engineCall } from '../../src/protocol/scripts.js';

interface Conn {
  down: net.Socket;
  up: net.Socket;
  heldUp: Buffer[];
  heldDown: Buffer[];
  armed: boolean;
}

export class Proxy {
  readonly conns = new Set<Conn>();
  holding = false;
  dropPattern: string | undefined;
  dropped = 0;
  onDrop: (() => void) | undefined;
  refuseUntil = 0;
  private server!: net.Server;
  port = 0;

  /** The port it forwards to (may be set after start, before the first connection). */
  constructor(public target: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = net.createServer((down) => this.accept(down));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  private accept(down: net.Socket): void {
    if (Date.now() < this.refuseUntil) {
      down.destroy();
      return;
    }
    const up = net.connect(this.target, '127.0.0.1');
    const c: Conn = { down, up, heldUp: [], heldDown: [], armed: false };
    this.conns.add(c);
    const kill = () => {
      down.destroy();
      up.destroy();
      this.conns.delete(c);
    };
    down.on('error', kill).on('close', kill);
    up.on('error', kill).on('close', kill);
    down.on('data', (d: Buffer) => {
      if (this.holding) c.heldUp.push(d);
      else this.sendUp(c, d);
    });
    up.on('data', (d: Buffer) => {
      if (c.armed) return; // thrown away: the connection is killed once Redis has run the command
      if (this.holding) c.heldDown.push(d);
      else down.write(d);
    });
  }

  private sendUp(c: Conn, d: Buffer): void {
    if (this.dropPattern && d.includes(this.dropPattern)) {
      this.dropPattern = undefined;
      c.armed = true;
      setTimeout(() => {
        this.dropped++;
        c.down.destroy();
        c.up.destroy();
        this.conns.delete(c);
        this.onDrop?.();
      }, 50);
    }
    c.up.write(d);
  }

  hold(): void {
    this.holding = true;
  }

  heal(): void {
    this.holding = false;
    for (const c of this.conns) {
      for (const d of c.heldDown.splice(0)) c.down.write(d);
      for (const d of c.heldUp.splice(0)) this.sendUp(c, d);
    }
  }

  dropReplyAfter(pattern: string): void {
    this.dropPattern = pattern;
  }

  refuse(ms: number): void {
    this.refuseUntil = Date.now() + ms;
  }

  /** Stops listening for `ms` (new connections get ECONNREFUSED), then listens on the same port again. */
  closeFor(ms: number): void {
    this.server.close();
    for (const c of this.conns) {
      c.down.destroy();
      c.up.destroy();
    }
    setTimeout(() => {
      this.server = net.createServer((down) => this.accept(down));
      this.server.listen(this.port, '127.0.0.1');
    }, ms);
  }

  async stop(): Promise<void> {
    for (const c of this.conns) {
      c.down.destroy();
      c.up.destroy();
    }
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export async function startProxy(target: number): Promise<Proxy> {
  return new Proxy(target).start();
}

/**
 * The text that marks a call of the engine's entry `name` in the byte stream: its FCALL function
 * name (the engine runs as a Function library on the test servers, 7.0+; scripts.ts engineCall).
 */
export function engineMarker(name: Parameters<typeof engineCall>[0]): string {
  return engineCall(name).fn;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `f` until it is truthy, at most `ms`. */
export async function until(f: () => Promise<boolean> | boolean, ms: number, step = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await sleep(step);
  }
  return false;
}
