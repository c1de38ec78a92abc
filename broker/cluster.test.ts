// Goal: two embedded brokers clustered through a real Redis behave as one broker: a request published on one
// reaches the server subscribed on the other and its answer comes back, the payload checks still refuse a forged
// message where it enters, and a broker whose Redis is unreachable refuses to start, naming it.
// Method: redis-server (Debian package) on a free port in a temp dir, two `startBroker({ clusterUrl })` in this
// process, raw mqtt.js clients with issued credentials.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type RunningBroker } from './aedes.ts';
import { newSecret } from './credentials.ts';
import { freePort } from './mosquitto.ts';
import { startRedis, type RunningRedis } from './redisServer.ts';
import { serverIdentity, type ClientIdentity } from './topics.ts';
import { ClientPool, eventually, expectRoundTrip, nextMessage, payload, requestsFrom } from './testSupport.ts';

const secret = newSecret();
const dir = mkdtempSync(join(tmpdir(), 'payfleet-cluster-'));
let redis: RunningRedis;
let a: RunningBroker;
let b: RunningBroker;
const clients = new ClientPool(secret);
const connectAs = (identity: ClientIdentity, url: string) => clients.connectAs(identity, url);

beforeAll(async () => {
  redis = await startRedis(dir);
  a = await startBroker({ port: 0, secret, clusterUrl: redis.url });
  b = await startBroker({ port: 0, secret, clusterUrl: redis.url });
});

afterAll(async () => {
  clients.endAll();
  await Promise.all([a?.close(), b?.close()]);
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('brokers clustered through Redis', () => {
  it('carries a request from a terminal on A to a server on B, and the answer back', async () => {
    const server = await connectAs(serverIdentity([0]), b.url);
    await server.subscribeAsync('pf/v1/sd/0/req/+', { qos: 1 });
    const terminal = await connectAs({ role: 'terminal', id: 'T1' }, a.url);
    await terminal.subscribeAsync('pf/v1/tm/T1/resp', { qos: 1 });
    await expectRoundTrip(terminal, server, 'T1', 'pf/v1/sd/0/req/tm.T1');
    expect(a.stats().clusterPublished).toBeGreaterThan(0);
  });

  it('checks the payload where it enters: a forged request on A never reaches the server on B', async () => {
    const server = await connectAs(serverIdentity([1]), b.url);
    await server.subscribeAsync('pf/v1/sd/1/req/+', { qos: 1 });
    const seen: string[] = [];
    server.on('message', (topic) => seen.push(topic));
    const forger = await connectAs({ role: 'terminal', id: 'T2' }, a.url);
    forger.publish('pf/v1/sd/1/req/tm.T2', Buffer.from('{"kind":"sync","forged":true}'), { qos: 1 });
    await eventually(() => Object.keys(a.stats().refusals).some((reason) => reason.startsWith('publish.')), 'the forged publish refused at A');
    // A good request sent after it on another connection arrives alone: the forged one was stopped at A.
    const honest = await connectAs({ role: 'terminal', id: 'T3' }, a.url);
    const good = requestsFrom('T3').sync!;
    const arrived = nextMessage(server, 'pf/v1/sd/1/req/tm.T3');
    await honest.publishAsync('pf/v1/sd/1/req/tm.T3', payload(good), { qos: 1 });
    await arrived;
    expect(seen).toEqual(['pf/v1/sd/1/req/tm.T3']);
  });

  it('refuses to start when the cluster\'s Redis cannot be reached, naming it', async () => {
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    await expect(startBroker({ port: 0, secret, clusterUrl: nobody, clusterConnectTimeoutMs: 1_000 })).rejects.toThrow(new RegExp(`clusterUnreachable: no Redis at ${nobody}`));
  });
});
