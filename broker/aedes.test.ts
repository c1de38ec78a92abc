import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { startBroker, type RunningBroker } from './aedes.ts';
import { newSecret } from './credentials.ts';
import { serverIdentity, type ClientIdentity } from './topics.ts';
import { ClientPool, eventually, everyKindOfMessage, expectRoundTrip, nextMessage, payload, rawClient, requestsFrom, resultFor, withInheritedNames } from './testSupport.ts';

const secret = newSecret();
const T1: ClientIdentity = { role: 'terminal', id: 'T1' };
const T2: ClientIdentity = { role: 'terminal', id: 'T2' };
const SD = serverIdentity([0, 1]);

let broker: RunningBroker;
const clients = new ClientPool(secret);
const connectAs = (identity: ClientIdentity, url = broker.url) => clients.connectAs(identity, url);

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

beforeAll(async () => {
  broker = await startBroker({ port: 0, wsPort: 0, secret });
});

afterAll(async () => {
  clients.endAll();
  await broker.close();
});

describe('embedded aedes broker', () => {
  it('refuses anonymous clients and wrong passwords', async () => {
    await expect(mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/);
    await expect(mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'tm.T1', username: 'tm.T1', password: 'guess' })).rejects.toThrow(
      /Bad username or password/,
    );
    expect(broker.stats().refusals).toMatchObject({ 'connect.anonymous': 1, 'connect.badPassword': 1 });
  });

  it('carries a request to the server shard and its answer back, on TCP and WebSocket', async () => {
    const server = await connectAs(SD);
    await server.subscribeAsync(['pf/v1/sd/0/req/+', 'pf/v1/sd/1/req/+'], { qos: 1 });
    const terminal = await connectAs(T1, broker.wsUrl);
    await terminal.subscribeAsync('pf/v1/tm/T1/resp', { qos: 1 });
    await expectRoundTrip(terminal, server, 'T1', 'pf/v1/sd/1/req/tm.T1');
  });

  it('refuses a terminal publishing on another terminal\'s topic, and closes its connection', async () => {
    const victim = await connectAs(T2);
    await victim.subscribeAsync('pf/v1/tm/T2/resp', { qos: 1 });
    const received: string[] = [];
    victim.on('message', (_topic, p) => received.push(p.toString()));
    const attacker = await connectAs(T1);
    const gone = closed(attacker);
    attacker.publish('pf/v1/tm/T2/resp', payload(resultFor(requestsFrom('T2').auth!)), { qos: 1 });
    await gone;
    // A server's genuine answer, published after the refusal, is the first thing the victim receives.
    const server = await connectAs(SD);
    const genuine = resultFor(requestsFrom('T2').sync!);
    const next = nextMessage(victim, 'pf/v1/tm/T2/resp');
    await server.publishAsync('pf/v1/tm/T2/resp', payload(genuine), { qos: 1 });
    await next;
    expect(received).toEqual([JSON.stringify(genuine)]);
    expect(broker.stats().refusals['publish.forbiddenTopic']).toBeGreaterThanOrEqual(1);
  });

  it('judges each publish on its own topic: an honest request first does not let a later one on a forbidden topic through', async () => {
    const server = await connectAs(SD);
    await server.subscribeAsync('pf/v1/sd/0/req/+', { qos: 1 });
    const victim = await connectAs(T2);
    await victim.subscribeAsync('pf/v1/tm/T2/resp', { qos: 1 });
    const received: string[] = [];
    victim.on('message', (_topic, p) => received.push(p.toString()));
    const before = broker.stats().refusals['publish.forbiddenTopic'] ?? 0;
    const attacker = await connectAs(T1);
    const sync = requestsFrom('T1').sync!;
    const arrived = nextMessage(server, 'pf/v1/sd/0/req/tm.T1');
    await attacker.publishAsync('pf/v1/sd/0/req/tm.T1', payload(sync), { qos: 1 });
    await arrived;
    const gone = closed(attacker);
    attacker.publish('pf/v1/tm/T2/resp', payload(resultFor(requestsFrom('T2').auth!)), { qos: 1 });
    await gone;
    expect(broker.stats().refusals['publish.forbiddenTopic']).toBe(before + 1);
    // The server answers two terminals in turn, each on its own topic: both pass.
    const genuine = resultFor(requestsFrom('T2').sync!);
    const next = nextMessage(victim, 'pf/v1/tm/T2/resp');
    await server.publishAsync('pf/v1/tm/T1/resp', payload(resultFor(sync)), { qos: 1 });
    await server.publishAsync('pf/v1/tm/T2/resp', payload(genuine), { qos: 1 });
    await next;
    expect(received).toEqual([JSON.stringify(genuine)]);
    server.end(true);
    victim.end(true);
  });

  it('refuses subscriptions to another\'s topics and wider wildcards (SUBACK 0x80)', async () => {
    const terminal = await connectAs(T1);
    await expect(terminal.subscribeAsync('pf/v1/tm/T2/resp', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(terminal.subscribeAsync('pf/v1/tm/+/resp', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(terminal.subscribeAsync('pf/v1/sd/0/req/+', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    const server = await connectAs(SD);
    await expect(server.subscribeAsync('pf/v1/sd/5/req/+', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(broker.stats().refusals['subscribe.forbiddenTopic']).toBeGreaterThanOrEqual(4);
  });

  it.each([
    ['malformed', Buffer.from('{"kind":"auth",'), 'publish.badJson'],
    ['oversized', Buffer.alloc(64 * 1024 + 1, 0x20), 'publish.oversized'],
    ['unknown-kind', payload({ kind: 'refund', reqId: 'T1:q9', from: 'T1', sig: 's.1' }), 'publish.unknownKind'],
    ['negative amount', payload({ ...requestsFrom('T1').capture!, amountMinor: -5 }), 'publish.badField'],
    ['forged sender', payload(requestsFrom('T2').auth!), 'publish.senderMismatch'],
  ])('refuses a %s message before any subscriber sees it', async (_name, body, reason) => {
    const server = await connectAs(SD);
    await server.subscribeAsync('pf/v1/sd/0/req/+', { qos: 1 });
    const received: string[] = [];
    server.on('message', (_topic, p) => received.push(p.toString()));
    const before = broker.stats().refusals[reason] ?? 0;
    const attacker = await connectAs(T1);
    const gone = closed(attacker);
    attacker.publish('pf/v1/sd/0/req/tm.T1', body, { qos: 1 });
    await gone;
    expect(broker.stats().refusals[reason]).toBe(before + 1);
    const honest = await connectAs(T2);
    const sync = requestsFrom('T2').sync!;
    const next = nextMessage(server, 'pf/v1/sd/0/req/tm.T2');
    await honest.publishAsync('pf/v1/sd/0/req/tm.T2', payload(sync), { qos: 1 });
    await next;
    expect(received).toEqual([JSON.stringify(sync)]);
    server.end(true);
    honest.end(true);
  });

  it('refuses every kind of message carrying an inherited name (constructor, toString, __proto__) as a field, before any subscriber sees it', async () => {
    const P1: ClientIdentity = { role: 'pos', id: 'P1' };
    // Answers come from another server's identity, so the listening server keeps its session.
    const otherServer = serverIdentity([2]);
    const server = await connectAs(SD);
    await server.subscribeAsync('pf/v1/sd/0/req/+', { qos: 1 });
    const received: string[] = [];
    server.on('message', (_topic, p) => received.push(p.toString()));
    let attempts = 0;
    for (const { message, from } of everyKindOfMessage()) {
      const [who, topic] = from === 'server' ? [otherServer, 'pf/v1/tm/T1/resp'] : from === 'P1' ? [P1, 'pf/v1/sd/0/req/pos.P1'] : [T1, 'pf/v1/sd/0/req/tm.T1'];
      for (const c of withInheritedNames(message)) {
        const before = broker.stats().refusals['publish.unexpectedField'] ?? 0;
        const attacker = await connectAs(who);
        const gone = closed(attacker);
        attacker.publish(topic, c.body, { qos: 1 });
        await gone;
        expect(broker.stats().refusals['publish.unexpectedField'], c.label).toBe(before + 1);
        attempts++;
      }
    }
    expect(attempts).toBeGreaterThanOrEqual(30);
    // The server's subscription still works, and it saw none of them.
    const honest = await connectAs(T1);
    const sync = requestsFrom('T1').sync!;
    const next = nextMessage(server, 'pf/v1/sd/0/req/tm.T1');
    await honest.publishAsync('pf/v1/sd/0/req/tm.T1', payload(sync), { qos: 1 });
    await next;
    expect(received).toEqual([JSON.stringify(sync)]);
  });

  it('carries a control command from the harness to the server of its shard only, and refuses forged or malformed ones', async () => {
    const HARNESS: ClientIdentity = { role: 'harness', id: 'harness' };
    const spend = { kind: 'spendElsewhere', transferId: 'elsewhere:m1:1', meansId: 'm1', payee: 'merchant:web', amountMinor: 700 };
    const server = await connectAs(SD);
    await server.subscribeAsync('pf/v1/ctl/sd/1/cmd', { qos: 1 });
    await expect(server.subscribeAsync('pf/v1/ctl/sd/5/cmd', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    const received: string[] = [];
    server.on('message', (topic, p) => topic.startsWith('pf/v1/ctl/') && received.push(p.toString()));
    const attempts: Array<[ClientIdentity, unknown, string]> = [
      [T1, spend, 'publish.forbiddenTopic'],
      [SD, spend, 'publish.forbiddenTopic'],
      [HARNESS, { ...spend, amountMinor: -1 }, 'publish.badField'],
      [HARNESS, { ...spend, extra: true }, 'publish.unexpectedField'],
      [HARNESS, requestsFrom('T1').sync!, 'publish.unknownKind'],
    ];
    for (const [who, body, reason] of attempts) {
      const before = broker.stats().refusals[reason] ?? 0;
      // The server's own identity is taken over by the attempt; it subscribes again below.
      const attacker = who === SD ? await rawClient(broker.url, secret, SD) : await connectAs(who);
      const gone = closed(attacker);
      attacker.publish('pf/v1/ctl/sd/1/cmd', payload(body), { qos: 1 });
      await gone;
      expect(broker.stats().refusals[reason], reason).toBe(before + 1);
    }
    const listener = await connectAs(SD);
    await listener.subscribeAsync('pf/v1/ctl/sd/1/cmd', { qos: 1 });
    listener.on('message', (topic, p) => topic.startsWith('pf/v1/ctl/') && received.push(p.toString()));
    const harness = await connectAs(HARNESS);
    await harness.subscribeAsync('pf/v1/ctl/ack/+', { qos: 1 });
    const arrived = nextMessage(listener, 'pf/v1/ctl/sd/1/cmd');
    await harness.publishAsync('pf/v1/ctl/sd/1/cmd', payload(spend), { qos: 1 });
    await arrived;
    expect(received).toEqual([JSON.stringify(spend)]);
    const answer = { kind: 'spendElsewhereResult', transferId: 'elsewhere:m1:1', meansId: 'm1', outcome: 'applied' };
    const acked = nextMessage(harness, 'pf/v1/ctl/ack/sd.0-1');
    await listener.publishAsync('pf/v1/ctl/ack/sd.0-1', payload(answer), { qos: 1 });
    expect(JSON.parse((await acked).toString())).toEqual(answer);
    // An answer under another server's name is refused like any forged publish.
    const gone = closed(listener);
    listener.publish('pf/v1/ctl/ack/sd.5', payload(answer), { qos: 1 });
    await gone;
  });

  it('counts connections and closes cleanly with clients attached', async () => {
    const extra = await startBroker({ port: 0, secret });
    const client = await rawClient(extra.url, secret, T1);
    await eventually(() => extra.stats().connectedClients === 1, 'one connected client');
    const gone = closed(client);
    await extra.close();
    await gone;
    expect(extra.stats().connections).toBe(1);
  });
});
