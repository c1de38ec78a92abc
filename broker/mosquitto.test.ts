import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pbkdf2Sync } from 'node:crypto';
import mqtt from 'mqtt';
import { newSecret, passwordFor } from './credentials.ts';
import { aclFile, passwordFileLine, startMosquitto, type RunningMosquitto } from './mosquitto.ts';
import { serverIdentity, type ClientIdentity } from './topics.ts';
import { decodeMessage } from './validate.ts';
import { ClientPool, everyKindOfMessage, expectRoundTrip, nextMessage, payload, requestsFrom, resultFor, withInheritedNames } from './testSupport.ts';

const secret = newSecret();
const T1: ClientIdentity = { role: 'terminal', id: 'T1' };
const T2: ClientIdentity = { role: 'terminal', id: 'T2' };
const SD = serverIdentity([0, 1]);
const HARNESS: ClientIdentity = { role: 'harness', id: 'harness' };
const P1: ClientIdentity = { role: 'pos', id: 'P1' };
const SD2 = serverIdentity([2]);

describe('Mosquitto files', () => {
  it('writes password lines in mosquitto_passwd\'s $7$ PBKDF2-SHA512 format', () => {
    const salt = Buffer.from('lH/MQZEhxxYk89kE', 'base64');
    // The line mosquitto_passwd 2.0.11 wrote for user tm.T1, password "secret", with this salt.
    expect(passwordFileLine('tm.T1', 'secret', salt)).toBe(
      'tm.T1:$7$101$lH/MQZEhxxYk89kE$jCYMhvawIhI7GPcDCQk1ARl8s9P4wdJw3TQ2nLvjgiZ4u7g3mrU/QSnexLypiWAGOdE7oGzA58keZz0btTiOOw==',
    );
    expect(pbkdf2Sync('secret', salt, 101, 64, 'sha512').toString('base64')).toHaveLength(88);
    expect(() => passwordFileLine('tm:T1', 'x')).toThrow(/badUsername/);
  });

  it('writes one user block per identity from the topic contract', () => {
    expect(aclFile([T1])).toBe(
      'user tm.T1\ntopic write pf/v1/sd/+/req/tm.T1\ntopic read pf/v1/tm/T1/resp\ntopic read pf/v1/ctl/cmd\ntopic write pf/v1/ctl/metrics/tm.T1\n\n',
    );
    expect(aclFile([serverIdentity([3])])).toContain('topic read pf/v1/ctl/sd/3/cmd\ntopic write pf/v1/ctl/ack/sd.3\n');
    expect(aclFile([HARNESS])).toContain('topic write pf/v1/ctl/sd/+/cmd\ntopic read pf/v1/ctl/ack/+\n');
  });
});

describe('external Mosquitto broker', () => {
  let dir: string;
  let broker: RunningMosquitto;
  const clients = new ClientPool(secret);
  const connectAs = (identity: ClientIdentity) => clients.connectAs(identity, broker.url);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'payfleet-mosquitto-'));
    broker = await startMosquitto({ dir, identities: [T1, T2, SD, HARNESS, P1, SD2], secret });
  });

  afterAll(async () => {
    clients.endAll();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses anonymous clients and wrong passwords', async () => {
    await expect(mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/);
    await expect(mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, username: 'tm.T1', password: 'guess' })).rejects.toThrow(/Not authorized/);
    expect(readFileSync(broker.logFile, 'utf8')).toMatch(/not authorised/);
  });

  it('carries a request to the server shard and its answer back', async () => {
    const server = await connectAs(SD);
    await server.subscribeAsync(['pf/v1/sd/0/req/+', 'pf/v1/sd/1/req/+'], { qos: 1 });
    const terminal = await connectAs(T1);
    await terminal.subscribeAsync('pf/v1/tm/T1/resp', { qos: 1 });
    await expectRoundTrip(terminal, server, 'T1', 'pf/v1/sd/0/req/tm.T1');
  });

  it('drops what a terminal publishes on another\'s topics, or on a request topic under another name', async () => {
    const victim = await connectAs(T2);
    await victim.subscribeAsync('pf/v1/tm/T2/resp', { qos: 1 });
    const server = await connectAs(SD);
    await server.subscribeAsync('pf/v1/sd/0/req/+', { qos: 1 });
    const seen: string[] = [];
    victim.on('message', (topic) => seen.push(`victim ${topic}`));
    server.on('message', (topic) => seen.push(`server ${topic}`));
    const attacker = await connectAs(T1);
    // Mosquitto acknowledges a forbidden QoS 1 publish (MQTT 3.1.1 has no way to say no) and delivers nothing.
    await attacker.publishAsync('pf/v1/tm/T2/resp', payload(resultFor(requestsFrom('T2').auth!)), { qos: 1 });
    await attacker.publishAsync('pf/v1/sd/0/req/tm.T2', payload(requestsFrom('T2').auth!), { qos: 1 });
    const honest = nextMessage(server, 'pf/v1/sd/0/req/tm.T1');
    await attacker.publishAsync('pf/v1/sd/0/req/tm.T1', payload(requestsFrom('T1').sync!), { qos: 1 });
    await honest;
    expect(seen).toEqual(['server pf/v1/sd/0/req/tm.T1']);
  });

  it('delivers nothing to a subscription on another terminal\'s topic', async () => {
    const snoop = await connectAs(T1);
    // Mosquitto 2.0 grants the SUBACK and enforces `read` on every delivery instead.
    await snoop.subscribeAsync(['pf/v1/tm/T2/resp', 'pf/v1/tm/+/resp', 'pf/v1/tm/T1/resp'], { qos: 1 });
    const seen: string[] = [];
    snoop.on('message', (topic) => seen.push(topic));
    const server = await connectAs(SD);
    await server.publishAsync('pf/v1/tm/T2/resp', payload(resultFor(requestsFrom('T2').sync!)), { qos: 1 });
    const own = nextMessage(snoop, 'pf/v1/tm/T1/resp');
    await server.publishAsync('pf/v1/tm/T1/resp', payload(resultFor(requestsFrom('T1').sync!)), { qos: 1 });
    await own;
    expect(seen).toEqual(['pf/v1/tm/T1/resp']);
  });

  it('delivers control commands only from the harness, only to the server of the shard, answers only under its name', async () => {
    const spend = { kind: 'spendElsewhere', transferId: 'elsewhere:m1:1', meansId: 'm1', payee: 'merchant:web', amountMinor: 700 };
    const server = await connectAs(SD);
    // Granted, but the ACL delivers only what the server's own shards' rules allow (shards 0 and 1).
    await server.subscribeAsync(['pf/v1/ctl/sd/1/cmd', 'pf/v1/ctl/sd/5/cmd', 'pf/v1/ctl/sd/+/cmd'], { qos: 1 });
    const seen: string[] = [];
    server.on('message', (topic, p) => seen.push(`${topic} ${p.toString()}`));
    const attacker = await connectAs(T1);
    await attacker.publishAsync('pf/v1/ctl/sd/1/cmd', payload({ ...spend, transferId: 'forged' }), { qos: 1 });
    const harness = await connectAs(HARNESS);
    await harness.subscribeAsync('pf/v1/ctl/ack/+', { qos: 1 });
    const answers: string[] = [];
    harness.on('message', (topic) => answers.push(topic));
    await harness.publishAsync('pf/v1/ctl/sd/5/cmd', payload({ ...spend, transferId: 'other-shard' }), { qos: 1 });
    const arrived = nextMessage(server, 'pf/v1/ctl/sd/1/cmd');
    await harness.publishAsync('pf/v1/ctl/sd/1/cmd', payload(spend), { qos: 1 });
    await arrived;
    // Mosquitto delivers a message once per matching subscription: the exact one and the wildcard.
    expect(new Set(seen)).toEqual(new Set([`pf/v1/ctl/sd/1/cmd ${JSON.stringify(spend)}`]));
    const answer = { kind: 'spendElsewhereResult', transferId: 'elsewhere:m1:1', meansId: 'm1', outcome: 'applied' };
    await server.publishAsync('pf/v1/ctl/ack/sd.5', payload(answer), { qos: 1 });
    const acked = nextMessage(harness, 'pf/v1/ctl/ack/sd.0-1');
    await server.publishAsync('pf/v1/ctl/ack/sd.0-1', payload(answer), { qos: 1 });
    await acked;
    expect(answers).toEqual(['pf/v1/ctl/ack/sd.0-1']);
  });

  it('carries payloads with inherited names (constructor, toString, __proto__) of every kind, which the receiver\'s decoder refuses', async () => {
    // Mosquitto checks topics, not payloads: the check is the receiving link's (broker/mqttLink.ts decodes with validate.ts).
    const server = await connectAs(SD);
    await server.subscribeAsync(['pf/v1/sd/0/req/+'], { qos: 1 });
    const terminal = await connectAs(T1);
    await terminal.subscribeAsync('pf/v1/tm/T1/resp', { qos: 1 });
    // Requests come from T2 (a second T1 connection would take over the listening one's client id).
    const senders = { T1: await connectAs(T2), P1: await connectAs(P1), server: await connectAs(SD2) };
    let refused = 0;
    for (const { message, from } of everyKindOfMessage()) {
      const sent = from === 'T1' ? { ...message, from: 'T2' } : message;
      const topic = from === 'server' ? 'pf/v1/tm/T1/resp' : from === 'P1' ? 'pf/v1/sd/0/req/pos.P1' : 'pf/v1/sd/0/req/tm.T2';
      const receiver = from === 'server' ? terminal : server;
      const publisher = from === 'server' ? { role: 'server' as const } : from === 'P1' ? { role: 'pos' as const, id: 'P1' } : { role: 'terminal' as const, id: 'T2' };
      for (const c of withInheritedNames(sent as typeof message)) {
        const arrived = nextMessage(receiver, topic);
        await senders[from].publishAsync(topic, c.body, { qos: 1 });
        const body = await arrived;
        expect(body.toString(), c.label).toBe(c.body.toString());
        expect(decodeMessage(body, topic, publisher), c.label).toMatchObject({ ok: false, code: 'unexpectedField', reason: `unexpectedField: ${c.refusedField}: not a field of this message` });
        refused++;
      }
    }
    expect(refused).toBeGreaterThanOrEqual(30);
  });

  it('forces the client id to the username, so no one can take over another\'s session', async () => {
    const victim = await connectAs(T2);
    const password = passwordFor(secret, 'tm.T1');
    const impostor = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'tm.T2', username: 'tm.T1', password });
    clients.add(impostor);
    // Had the impostor taken client id tm.T2, the broker would have disconnected the victim; a round trip proves it did not.
    await victim.subscribeAsync('pf/v1/tm/T2/resp', { qos: 1 });
    expect(victim.connected).toBe(true);
  });

  it('survives a kill and a restart on the same port', async () => {
    const client = await connectAs(T1);
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await broker.kill();
    await gone;
    await broker.restart();
    const again = await connectAs(T1);
    expect(again.connected).toBe(true);
  });
});
