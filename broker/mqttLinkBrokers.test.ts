// Goal: a link given several brokers spreads terminals over them by index, moves a terminal whose broker is gone
// to the next one, and keeps a server subscribed on every broker, answering each request where it came in.
// Method: two standalone embedded brokers (not clustered: what reaches one never reaches the other), real links
// hosted by a parent actor, raw mqtt.js clients for the other side.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkInput } from '../machines/link.ts';
import type { ServerRequest } from '../machines/messages.ts';
import { startBroker, type RunningBroker } from './aedes.ts';
import { newSecret } from './credentials.ts';
import { createMqttLink } from './mqttLink.ts';
import { createLinkStats } from './linkOptions.ts';
import { brokerUrlList, homeBrokerIndex } from './linkPolicy.ts';
import type { ClientIdentity } from './topics.ts';
import { ClientPool, eventually, hostLink, nextMessage, payload, requestsFrom, resultFor, type LinkHost } from './testSupport.ts';

const secret = newSecret();
const BACKOFF = { initialMs: 20, maxMs: 100, multiplier: 2 };
let a: RunningBroker;
let b: RunningBroker;
const hosts: LinkHost[] = [];
const clients = new ClientPool(secret);
const connectAs = (identity: ClientIdentity, url: string) => clients.connectAs(identity, url);

beforeAll(async () => {
  a = await startBroker({ port: 0, secret });
  b = await startBroker({ port: 0, secret });
});

afterAll(async () => {
  for (const host of hosts) host.stop();
  clients.endAll();
  await Promise.all([a.close(), b.close()]);
});

describe('broker URL lists', () => {
  it('parses one URL or several, and spreads endpoints by the number their id ends with', () => {
    expect(brokerUrlList('mqtt://a:1883')).toEqual(['mqtt://a:1883']);
    expect(brokerUrlList('mqtt://a:1883, mqtt://b:1883')).toEqual(['mqtt://a:1883', 'mqtt://b:1883']);
    expect(() => brokerUrlList(' , ')).toThrow(/noBrokerUrl/);
    expect([0, 1, 2, 3, 4].map((i) => homeBrokerIndex(`t${i}`, 3))).toEqual([0, 1, 2, 0, 1]);
    expect(homeBrokerIndex('pos5', 2)).toBe(1);
    expect(homeBrokerIndex('harness', 2)).toBe(0);
    expect(homeBrokerIndex('t5', 1)).toBe(0);
  });
});

describe('a link on several brokers', () => {
  it('starts each terminal on its home broker and moves it to the next one when its broker is gone', async () => {
    const spare = await startBroker({ port: 0, secret });
    const stats = createLinkStats();
    const link = createMqttLink({ url: `${spare.url},${b.url}`, secret, seed: 1, backoff: BACKOFF, stats });
    const input = (id: string): LinkInput => ({ endpointId: id, role: 'terminal', inCoverage: true });
    const t0 = hostLink(link, input('t0'));
    const t1 = hostLink(link, input('t1'));
    hosts.push(t0, t1);
    await Promise.all([t0.next('link.up'), t1.next('link.up')]);
    expect(spare.isConnected('tm.t0')).toBe(true);
    expect(b.isConnected('tm.t1')).toBe(true);
    expect(stats.failovers).toBe(0);
    // The home broker of t0 dies: its retry there is refused, and it comes up on the next broker.
    const downAt = t0.events.length;
    await spare.close();
    await t0.next('link.down', downAt);
    await t0.next('link.up', downAt);
    expect(b.isConnected('tm.t0')).toBe(true);
    expect(stats.failovers).toBeGreaterThanOrEqual(1);
  });

  it('never starts an endpoint on a failover broker, and moves to it once its own brokers are gone', async () => {
    const own = await startBroker({ port: 0, secret });
    const stats = createLinkStats();
    const link = createMqttLink({ url: own.url, failoverUrl: b.url, secret, seed: 1, backoff: BACKOFF, stats });
    const t3 = hostLink(link, { endpointId: 't3', role: 'terminal', inCoverage: true });
    hosts.push(t3);
    await t3.next('link.up');
    expect(own.isConnected('tm.t3')).toBe(true);
    const downAt = t3.events.length;
    await own.close();
    await t3.next('link.up', downAt);
    expect(b.isConnected('tm.t3')).toBe(true);
  });

  it('subscribes a server on every broker and answers each request on the broker it came in on', async () => {
    const stats = createLinkStats();
    const server = hostLink(createMqttLink({ url: `${a.url},${b.url}`, secret, seed: 1, backoff: BACKOFF, stats }), { endpointId: 'sd/0-1', role: 'server', shards: [0, 1], inCoverage: true });
    hosts.push(server);
    await server.next('link.up');
    await eventually(() => stats.connects === 2, 'both connections of the server up');
    expect(server.events.filter((e) => e.type === 'link.up')).toHaveLength(1);
    expect(a.isConnected('sd.0-1') && b.isConnected('sd.0-1')).toBe(true);
    // A terminal on each broker; neither broker passes anything to the other.
    for (const [id, broker] of [['T1', a], ['T2', b]] as const) {
      const terminal = await connectAs({ role: 'terminal', id }, broker.url);
      await terminal.subscribeAsync(`pf/v1/tm/${id}/resp`, { qos: 1 });
      const request = requestsFrom(id).sync! as ServerRequest;
      const from = server.events.length;
      await terminal.publishAsync(`pf/v1/sd/1/req/tm.${id}`, payload(request), { qos: 1 });
      const arrived = await server.next('link.message', from);
      expect(arrived.message).toEqual(request);
      const answered = nextMessage(terminal, `pf/v1/tm/${id}/resp`);
      server.send({ type: 'link.send', to: id, message: resultFor(request) });
      expect(JSON.parse((await answered).toString())).toEqual(resultFor(request));
    }
  });
});
