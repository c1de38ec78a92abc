import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LinkInput } from '../machines/link.ts';
import type { ServerRequest } from '../machines/messages.ts';
import { startBroker } from './aedes.ts';
import { newSecret } from './credentials.ts';
import { startMosquitto } from './mosquitto.ts';
import { createMqttLink } from './mqttLink.ts';
import { createLinkStats, identityOfLink, type LinkStats } from './linkOptions.ts';
import { DEFAULT_BACKOFF, SERVER_BACKOFF, defaultBackoffOf, jitteredBackoff } from './linkPolicy.ts';
import { serverIdentity, type ClientIdentity } from './topics.ts';
import { eventually, everyKindOfMessage, hostLink, payload, rawClient, requestsFrom, resultFor, withInheritedNames, type LinkHost } from './testSupport.ts';

const secret = newSecret();
const BACKOFF = { initialMs: 20, maxMs: 200, multiplier: 2 };
const terminalInput = (id: string, inCoverage = true): LinkInput => ({ endpointId: id, role: 'terminal', inCoverage });
const serverInput: LinkInput = { endpointId: 'sd/0-1', role: 'server', shards: [0, 1], inCoverage: true };
const identities: ClientIdentity[] = [
  { role: 'terminal', id: 'T1' },
  { role: 'terminal', id: 'T2' },
  { role: 'terminal', id: 'T3' },
  { role: 'pos', id: 'P1' },
  serverIdentity([0, 1]),
  serverIdentity([2]),
];

describe('jittered backoff', () => {
  it('draws the same delays for the same seed and endpoint, within the growing cap', () => {
    const draw = (seed: number, id: string) => {
      const b = jitteredBackoff(seed, id, BACKOFF);
      return Array.from({ length: 8 }, () => b.nextDelayMs());
    };
    const delays = draw(42, 'T1');
    expect(draw(42, 'T1')).toEqual(delays);
    expect(draw(42, 'T2')).not.toEqual(delays);
    expect(draw(43, 'T1')).not.toEqual(delays);
    delays.forEach((d, i) => {
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(200, 20 * 2 ** i));
    });
    const b = jitteredBackoff(1, 'T1', BACKOFF);
    for (let i = 0; i < 6; i++) b.nextDelayMs();
    b.reset();
    expect(b.nextDelayMs()).toBeLessThan(20);
  });
});

interface BrokerUnderTest {
  url: string;
  /** True while the broker holds a connection for this client id. */
  isConnected(clientId: string): boolean;
  restart?: () => Promise<void>;
  close(): Promise<void>;
}

const brokers: Record<string, () => Promise<BrokerUnderTest>> = {
  aedes: async () => {
    const b = await startBroker({ port: 0, secret });
    return { url: b.url, isConnected: (clientId) => b.isConnected(clientId), close: () => b.close() };
  },
  mosquitto: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-link-'));
    const m = await startMosquitto({ dir, identities, secret });
    // Mosquitto says who connected and who left in its log, line by line.
    const lastWord = (clientId: string) => {
      const lines = readFileSync(m.logFile, 'utf8').split('\n').filter((l) => l.includes(` ${clientId} `) || l.endsWith(` ${clientId}`) || l.includes(`as ${clientId} (`));
      return lines.at(-1) ?? '';
    };
    return {
      url: m.url,
      isConnected: (clientId) => /New client connected/.test(lastWord(clientId)),
      restart: () => m.restart(),
      async close() {
        await m.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

describe.each(Object.keys(brokers))('MQTT link on %s', (name) => {
  let broker: BrokerUnderTest;
  let stats: LinkStats;
  let link: ReturnType<typeof createMqttLink>;
  const hosts: LinkHost[] = [];
  const host = (input: LinkInput) => {
    const h = hostLink(link, input);
    hosts.push(h);
    return h;
  };

  beforeAll(async () => {
    broker = await brokers[name]!();
    stats = createLinkStats();
    link = createMqttLink({ url: broker.url, secret, seed: 7, backoff: BACKOFF, stats });
  });

  afterAll(async () => {
    for (const h of hosts) h.stop();
    await broker.close();
  });

  it('carries a terminal\'s request to its server shard and the answer back', async () => {
    const server = host(serverInput);
    const terminal = host(terminalInput('T1'));
    await Promise.all([server.next('link.up'), terminal.next('link.up')]);
    const sync = requestsFrom('T1').sync;
    terminal.send({ type: 'link.send', to: 'sd/1', message: sync });
    const request = await server.next('link.message');
    expect(request.message).toEqual(sync);
    const answer = resultFor(request.message as ServerRequest);
    server.send({ type: 'link.send', to: 'T1', message: answer });
    expect((await terminal.next('link.message')).message).toEqual(answer);
    expect(terminal.events.filter((e) => e.type === 'link.rejected')).toEqual([]);
    server.stop();
    terminal.stop();
  });

  it('counts a link stopped while up as disconnected, so connects − disconnects is the links up', async () => {
    // A crashed terminal's actor is stopped without telling anyone; the gauge of links up must still drop.
    const ownStats = createLinkStats();
    const ownLink = createMqttLink({ url: broker.url, secret, seed: 7, backoff: BACKOFF, stats: ownStats });
    const terminal = hostLink(ownLink, terminalInput('T3'));
    await terminal.next('link.up');
    expect(ownStats.connects - ownStats.disconnects).toBe(1);
    terminal.stop();
    expect(ownStats.connects - ownStats.disconnects).toBe(0);
    await eventually(() => !broker.isConnected('tm.T3'), 'the broker to see tm.T3 leave');
  });

  it('routes a POS settlement and its answer to the POS\'s own topic', async () => {
    const server = host(serverInput);
    const pos = host({ endpointId: 'P1', role: 'pos', inCoverage: true });
    await Promise.all([server.next('link.up'), pos.next('link.up')]);
    const settle = requestsFrom('P1').settle;
    pos.send({ type: 'link.send', to: 'sd/0', message: settle });
    expect((await server.next('link.message')).message).toEqual(settle);
    server.send({ type: 'link.send', to: 'P1', message: resultFor(settle) });
    expect((await pos.next('link.message')).message).toEqual(resultFor(settle));
    server.stop();
    pos.stop();
  });

  it('drops the socket when coverage goes, stays away, and reconnects when it returns', async () => {
    const server = host(serverInput);
    const terminal = host(terminalInput('T2', false));
    await server.next('link.up');
    // Out of coverage from the start: sends are dropped and no connection is attempted.
    const attemptsBefore = stats.connectAttempts;
    terminal.send({ type: 'link.send', to: 'sd/0', message: requestsFrom('T2').sync });
    terminal.send({ type: 'link.coverage', inCoverage: true });
    await terminal.next('link.up');
    expect(broker.isConnected('tm.T2')).toBe(true);
    expect(stats.droppedWhileDown).toBeGreaterThanOrEqual(1);
    expect(stats.connectAttempts).toBe(attemptsBefore + 1);

    const mark = terminal.events.length;
    terminal.send({ type: 'link.coverage', inCoverage: false });
    await terminal.next('link.down', mark);
    await eventually(() => !broker.isConnected('tm.T2'), 'the broker to see tm.T2 leave');
    const attemptsWhileOff = stats.connectAttempts;
    // Several backoff caps (200 ms) pass without a single attempt while out of coverage.
    await new Promise((r) => setTimeout(r, 600));
    expect(stats.connectAttempts).toBe(attemptsWhileOff);
    expect(broker.isConnected('tm.T2')).toBe(false);
    expect(terminal.events.slice(mark).map((e) => e.type)).toEqual(['link.down']);

    terminal.send({ type: 'link.coverage', inCoverage: true });
    await terminal.next('link.up', mark);
    const sync = requestsFrom('T2').sync;
    terminal.send({ type: 'link.send', to: 'sd/0', message: sync });
    expect((await server.next('link.message')).message).toEqual(sync);
    server.stop();
    terminal.stop();
  });

  it('reports a payload that fails validation as link.rejected and nothing else', async () => {
    const terminal = host(terminalInput('T3'));
    const server = host(serverInput);
    await Promise.all([terminal.next('link.up'), server.next('link.up')]);
    if (name === 'mosquitto') {
      // Mosquitto checks topics only: garbage from an authorised server reaches the link, which refuses it.
      // Another server's identity: the link's own (sd.0-1) would take over its client id, and the two would
      // take it from each other at every reconnect.
      const rogueServer = await rawClient(broker.url, secret, serverIdentity([2]));
      const rejected = terminal.next('link.rejected');
      await rogueServer.publishAsync('pf/v1/tm/T3/resp', Buffer.from('{"kind":"result",'), { qos: 1 });
      expect((await rejected).reason).toMatch(/^badJson: not JSON/);
      // A terminal naming another as the sender, on its own request topic: refused at the server's link.
      const forger = await rawClient(broker.url, secret, { role: 'terminal', id: 'T2' });
      const forged = server.next('link.rejected');
      await forger.publishAsync('pf/v1/sd/0/req/tm.T2', payload(requestsFrom('T3').debit), { qos: 1 });
      expect((await forged).reason).toBe('senderMismatch: from: "T3" is not the publisher "T2"');
      forger.end(true);
      rogueServer.end(true);
      expect(terminal.events.filter((e) => e.type === 'link.message')).toEqual([]);
      expect(server.events.filter((e) => e.type === 'link.message')).toEqual([]);
      expect(stats.rejected).toMatchObject({ badJson: 1, senderMismatch: 1 });
    } else {
      // aedes refuses such payloads before delivery; a well-formed answer still arrives.
      const sync = requestsFrom('T3').sync;
      server.send({ type: 'link.send', to: 'T3', message: resultFor(sync) });
      expect((await terminal.next('link.message')).message).toEqual(resultFor(sync));
    }
    terminal.stop();
    server.stop();
  });

  it('never delivers a message of any kind carrying an inherited name (constructor, toString, __proto__) as a field', async () => {
    const terminal = host(terminalInput('T3'));
    const server = host(serverInput);
    await Promise.all([terminal.next('link.up'), server.next('link.up')]);
    const senders = { T1: { role: 'terminal', id: 'T2' }, P1: { role: 'pos', id: 'P1' }, server: serverIdentity([2]) } as const;
    let planted = 0;
    for (const { message, from } of everyKindOfMessage()) {
      // The fixtures speak for T1 and answer T1; here T2 sends the requests and the answers go to T3's link.
      const sent = from === 'T1' ? { ...message, from: 'T2' } : from === 'server' ? { ...message, to: 'T3' } : message;
      const topic = from === 'server' ? 'pf/v1/tm/T3/resp' : from === 'P1' ? 'pf/v1/sd/0/req/pos.P1' : 'pf/v1/sd/0/req/tm.T2';
      const receiver = from === 'server' ? terminal : server;
      for (const c of withInheritedNames(sent as typeof message)) {
        const rogue = await rawClient(broker.url, secret, senders[from] as ClientIdentity);
        if (name === 'mosquitto') {
          // Mosquitto checks topics only: the payload reaches the link, which refuses it.
          const rejected = receiver.next('link.rejected', receiver.events.length);
          await rogue.publishAsync(topic, c.body, { qos: 1 });
          expect((await rejected).reason, c.label).toBe(`unexpectedField: ${c.refusedField}: not a field of this message`);
        } else {
          // aedes refuses the publish and closes the connection before any subscriber sees it.
          const gone = new Promise<void>((resolve) => rogue.once('close', () => resolve()));
          rogue.publish(topic, c.body, { qos: 1 });
          await gone;
        }
        rogue.end(true);
        planted++;
      }
    }
    expect(planted).toBeGreaterThanOrEqual(30);
    expect(terminal.events.filter((e) => e.type === 'link.message')).toEqual([]);
    expect(server.events.filter((e) => e.type === 'link.message')).toEqual([]);
    // The links still carry an honest answer.
    const sync = requestsFrom('T3').sync;
    server.send({ type: 'link.send', to: 'T3', message: resultFor(sync) });
    expect((await terminal.next('link.message')).message).toEqual(resultFor(sync));
    terminal.stop();
    server.stop();
  });

  it('keeps retrying, with backoff, when its credentials are refused, and never reports up', async () => {
    const wrongStats = createLinkStats();
    const wrong = createMqttLink({ url: broker.url, secret: 'not-the-run-secret', seed: 1, backoff: BACKOFF, stats: wrongStats });
    const terminal = hostLink(wrong, terminalInput('T1'));
    await eventually(() => wrongStats.connectAttempts >= 3, 'three refused attempts');
    terminal.stop();
    expect(wrongStats.connects).toBe(0);
    expect(terminal.events).toEqual([]);
  });

  it('refuses to send what the contract has no route for', async () => {
    const terminal = host(terminalInput('T1'));
    await terminal.next('link.up');
    const before = stats.unroutable;
    terminal.send({ type: 'link.send', to: 'T2', message: requestsFrom('T1').sync });
    terminal.send({ type: 'link.send', to: 'sd/x', message: requestsFrom('T1').sync });
    expect(stats.unroutable).toBe(before + 2);
    terminal.stop();
  });

  if (name === 'mosquitto') {
    it('reconnects by itself after the broker is killed and restarted', async () => {
      const terminal = host(terminalInput('T1'));
      await terminal.next('link.up');
      const mark = terminal.events.length;
      await broker.restart!();
      await terminal.next('link.down', mark);
      await terminal.next('link.up', mark);
      await eventually(() => terminal.events.slice(mark).length >= 2, 'down then up');
      expect(terminal.events.slice(mark).map((e) => e.type)).toEqual(['link.down', 'link.up']);
      terminal.stop();
    });
  }
});

describe('a payment server after the embedded broker restarts', () => {
  // Seed 10 draws, for a server's id under the devices' policy (DEFAULT_BACKOFF), attempts at 77, 393, 809, 1814,
  // 2195 and 3446 ms, then none until 19 s: after a five-second outage it would stay away some 14 s more, its
  // shards' requests accepted by the broker and dropped for want of a subscriber (the mqtt run's INV-7 failures).
  const SEED_WITH_A_LONG_GAP = 10;
  const OUTAGE_MS = 5_000;

  it('is subscribed again within a second or two of the broker\'s return, and a request a terminal sends then reaches it', async () => {
    let broker = await startBroker({ port: 0, secret });
    const port = broker.port;
    // The server gets its role's backoff (none given); the terminal the tests' fast one.
    const server = hostLink(createMqttLink({ url: broker.url, secret, seed: SEED_WITH_A_LONG_GAP }), serverInput);
    const terminal = hostLink(createMqttLink({ url: broker.url, secret, seed: 7, backoff: BACKOFF }), terminalInput('T1'));
    try {
      await Promise.all([server.next('link.up'), terminal.next('link.up')]);
      const serverMark = server.events.length;
      const terminalMark = terminal.events.length;
      await broker.close();
      await Promise.all([server.next('link.down', serverMark), terminal.next('link.down', terminalMark)]);
      // aedes keeps nothing across a restart: the server's subscriptions are gone with the old process.
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      broker = await startBroker({ port, secret });
      await terminal.next('link.up', terminalMark);
      // A bound, not a measurement: the server waits at most a second between attempts (SERVER_BACKOFF).
      await eventually(() => broker.isConnected('sd.0-1') && server.events.slice(serverMark).some((e) => e.type === 'link.up'), 'the server subscribed again', 4_000);
      const sync = requestsFrom('T1').sync;
      terminal.send({ type: 'link.send', to: 'sd/1', message: sync });
      expect((await server.next('link.message', serverMark)).message).toEqual(sync);
    } finally {
      server.stop();
      terminal.stop();
      await broker.close();
    }
  }, 20_000);

  it('gets a backoff capped at a second by default, while devices keep the long one', () => {
    const server = jitteredBackoff(SEED_WITH_A_LONG_GAP, 'sd/0-1', defaultBackoffOf('server'));
    const delays = Array.from({ length: 20 }, () => server.nextDelayMs());
    expect(Math.max(...delays)).toBeLessThan(SERVER_BACKOFF.maxMs);
    expect(defaultBackoffOf('terminal')).toBe(DEFAULT_BACKOFF);
    expect(defaultBackoffOf('pos')).toBe(DEFAULT_BACKOFF);
  });
});

describe('MQTT link with a shaper (aedes)', () => {
  /** A shaper the test drives: outgoing messages pass twice at once, incoming ones wait until released. */
  const held: Array<() => void> = [];
  const shaper = {
    outgoing: (_endpointId: string, pass: () => void) => {
      pass();
      pass();
    },
    incoming: (_endpointId: string, pass: () => void) => {
      held.push(pass);
    },
  };
  const heldOut: Array<() => void> = [];
  const holdingOut = { outgoing: (_endpointId: string, pass: () => void) => heldOut.push(pass), incoming: (_endpointId: string, pass: () => void) => pass() };
  let close: () => Promise<void>;
  let url: string;

  beforeAll(async () => {
    const b = await startBroker({ port: 0, secret });
    url = b.url;
    close = () => b.close();
  });
  afterAll(async () => close());

  it('sends what the shaper passes as often as it passes it, and delivers incoming messages only when it lets them through', async () => {
    const stats = createLinkStats();
    const server = hostLink(createMqttLink({ url, secret, seed: 1, backoff: BACKOFF }), serverInput);
    const terminal = hostLink(createMqttLink({ url, secret, seed: 1, backoff: BACKOFF, stats, shaper }), terminalInput('T1'));
    await Promise.all([server.next('link.up'), terminal.next('link.up')]);
    const sync = requestsFrom('T1').sync;
    terminal.send({ type: 'link.send', to: 'sd/1', message: sync });
    await eventually(() => server.events.filter((e) => e.type === 'link.message').length === 2, 'the request twice at the server');
    expect(stats.sent).toBe(1);

    server.send({ type: 'link.send', to: 'T1', message: resultFor(sync) });
    await eventually(() => held.length === 1, 'the answer at the shaper');
    expect(terminal.events.filter((e) => e.type === 'link.message')).toEqual([]);
    held.shift()!();
    expect(terminal.events.filter((e) => e.type === 'link.message').map((e) => e.message)).toEqual([resultFor(sync)]);

    // A message still held when coverage goes is lost with the connection, and counted.
    server.send({ type: 'link.send', to: 'T1', message: resultFor(sync) });
    await eventually(() => held.length === 1, 'the second answer at the shaper');
    const mark = terminal.events.length;
    terminal.send({ type: 'link.coverage', inCoverage: false });
    await terminal.next('link.down', mark);
    held.shift()!();
    expect(terminal.events.slice(mark).map((e) => e.type)).toEqual(['link.down']);
    expect(stats.droppedInFlight).toBe(1);
    server.stop();
    terminal.stop();
  });

  it('drops an outgoing message the shaper holds past the end of its connection', async () => {
    const stats = createLinkStats();
    const server = hostLink(createMqttLink({ url, secret, seed: 1, backoff: BACKOFF }), serverInput);
    const terminal = hostLink(createMqttLink({ url, secret, seed: 1, backoff: BACKOFF, stats, shaper: holdingOut }), terminalInput('T2'));
    await Promise.all([server.next('link.up'), terminal.next('link.up')]);
    terminal.send({ type: 'link.send', to: 'sd/0', message: requestsFrom('T2').sync });
    terminal.send({ type: 'link.send', to: 'sd/0', message: requestsFrom('T2').debit });
    heldOut.shift()!();
    expect((await server.next('link.message')).message).toEqual(requestsFrom('T2').sync);
    const mark = terminal.events.length;
    terminal.send({ type: 'link.coverage', inCoverage: false });
    await terminal.next('link.down', mark);
    heldOut.shift()!();
    expect(stats.droppedInFlight).toBe(1);
    expect(stats.sent).toBe(2);
    expect(server.events.filter((e) => e.type === 'link.message')).toHaveLength(1);
    server.stop();
    terminal.stop();
  });
});

describe('identityOfLink', () => {
  it('names terminals, POS and servers, and refuses ids that cannot name topics', () => {
    expect(identityOfLink(terminalInput('T1'))).toEqual({ role: 'terminal', id: 'T1' });
    expect(identityOfLink(serverInput)).toEqual({ role: 'server', id: '0-1', shards: [0, 1] });
    expect(() => identityOfLink(terminalInput('a/b'))).toThrow(/badEndpointId/);
    expect(() => identityOfLink(terminalInput('tm:1'))).toThrow(/badEndpointId/);
    expect(() => identityOfLink({ ...serverInput, shards: [] })).toThrow(/noShards/);
  });
});
