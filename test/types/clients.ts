/**
 * Type test, checked by `npm run lint` (tsc) and never run: every supported client is accepted by the
 * published types without a cast, and what is not a client is refused. Imports the package by name,
 * so it checks dist/index.d.ts as a user's project sees it.
 */
import { GlideClient, GlideClusterClient } from '@valkey/valkey-glide';
import { Redis as IORedis5 } from 'ioredis';
import { Redis as IORedis6 } from 'ioredis-v6';
import { createClient as createClient4 } from 'redis';
import { createClient as createClient5 } from 'redis-v5';
import { createClient as createClient6 } from 'redis-v6';
import { FairLocks, type Lease } from 'fairlock';

export async function everyClient(url: string): Promise<Lease[]> {
  const clients = [
    new FairLocks(await createClient4({ url }).connect()),
    new FairLocks(await createClient5({ url }).connect()),
    new FairLocks(await createClient6({ url }).connect()),
    new FairLocks(await createClient6({ url, RESP: 3 }).connect()),
    new FairLocks(new IORedis5(url)),
    new FairLocks(new IORedis6(url), { prefix: 'app' }),
    new FairLocks(await GlideClient.createClient({ addresses: [{ host: '127.0.0.1', port: 6379 }] })),
    new FairLocks(await GlideClusterClient.createClient({ addresses: [{ host: '127.0.0.1', port: 7000 }] })),
  ];
  return Promise.all(clients.map((locks) => locks.lock('x').acquire()));
}

export function notClients(): void {
  // @ts-expect-error a URL is not a client
  new FairLocks('redis://127.0.0.1:6379');
  // @ts-expect-error nor is an options object
  new FairLocks({ url: 'redis://127.0.0.1:6379' });
}
