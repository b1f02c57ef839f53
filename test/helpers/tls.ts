/**
 * A redis-server that speaks TLS, for the tests of fairlock over TLS: a CA and a server certificate
 * (for 127.0.0.1 and localhost) made with `openssl` in a temp dir, and a redis-server of our own
 * (test/helpers/redis.ts: a free loopback port, stopped by PID) with `--tls-port` beside its plain
 * port (the plain one only serves the helper's ready check; the tests connect to the TLS port).
 * `tlsUnavailable()` says why a machine cannot run them (no openssl, a redis-server built without
 * TLS, as the builds in ../shared/servers are), so the tests skip with that reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { freePort, startRedisProcess, type RedisServer } from './redis.js';

export interface TlsRedis {
  server: RedisServer;
  /** The TLS port. */
  tlsPort: number;
  /** `rediss://127.0.0.1:PORT`: node-redis's TLS URL. */
  url: string;
  /** The CA certificate (PEM) the clients trust. */
  ca: string;
  stop(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** Makes ca.crt, server.key and server.crt (signed by the CA, SAN 127.0.0.1 and localhost) in `dir`. */
export function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=fairlock test CA', '-keyout', 'ca.key', '-out', 'ca.crt'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr'], dir);
  const ext = join(dir, 'san.ext');
  spawnSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > "${ext}"`]);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', 'server.crt'], dir);
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

/** One PING over TLS, trusting `ca`: resolves when the server answers +PONG, rejects otherwise (bounded, 5 s). */
function pingTls(port: number, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer over TLS on port ${port} within 5 s`));
    }, 5_000);
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.once('secureConnect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => (String(d).startsWith('+PONG') ? done() : done(new Error(`unexpected reply over TLS: ${String(d).slice(0, 80)}`))));
    socket.once('error', done);
  });
}

/**
 * A TLS redis-server of the test's own, or the reason there cannot be one here (then the caller
 * skips). Nothing is left behind on failure: the process and the temp dir are removed.
 */
export async function startTlsRedis(): Promise<TlsRedis | string> {
  if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status !== 0) return 'openssl is not installed (it makes the test CA)';
  const dir = mkdtempSync(join(tmpdir(), 'fairlock-tls-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  let files: { ca: string; cert: string; key: string };
  try {
    files = makeCertificates(dir);
  } catch (err) {
    removeDir();
    return `openssl could not make the test certificates: ${(err as Error).message}`;
  }
  const tlsPort = await freePort();
  let server: RedisServer;
  try {
    server = await startRedisProcess({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', files.cert, '--tls-key-file', files.key, '--tls-ca-cert-file', files.ca, '--tls-auth-clients', 'no'],
    });
  } catch (err) {
    removeDir();
    return `this redis-server does not start with --tls-port (built without TLS?): ${(err as Error).message}`;
  }
  const ca = readFileSync(files.ca, 'utf8');
  const stop = async () => {
    await server.stop();
    removeDir();
  };
  try {
    await pingTls(tlsPort, ca);
  } catch (err) {
    await stop();
    return `this redis-server does not answer TLS on --tls-port (built without TLS?): ${(err as Error).message}`;
  }
  return { server, tlsPort, url: `rediss://127.0.0.1:${tlsPort}`, ca, stop };
}
