// Goal: the MQTT implementation of a machine's `link` child (machines/link.ts), swapped in with
// `machine.provide({ actors: { link: createMqttLink(options) } })`: one real mqtt.js connection per endpoint.
// Method: an XState callback actor owning one mqtt.js v5 client (MQTT 3.1.1, so aedes speaks it). It connects
// with the credentials the harness issues, subscribes to the endpoint's own topics (a server: its shards'
// request topics), and reports `link.up` only once those subscriptions are granted, so "up" means answers can
// arrive. Sends are QoS 1 on the topic of broker/topics.ts. mqtt.js never reconnects by itself:
// this actor does, after the seeded, jittered backoff of broker/linkPolicy.ts. Out of coverage the socket is ended
// and nothing reconnects until coverage returns. Its options, stats and hooks are declared in broker/linkOptions.ts.
//
// Sessions are clean (`clean: true`) for every role, money-moving or not. The broker is never relied on to
// deliver: a message sent while down is dropped here, and one lost by the broker (Mosquitto drops silently past
// its queue limits) is retried end to end by the proxy's outbox, which the server answers idempotently. A
// persistent session would only make the broker hold stale answers for offline terminals and replay them in a
// burst on reconnect. Each connection attempt uses a fresh mqtt.js client, so nothing queued inside an old one
// (an unacknowledged QoS 1 publish) is resent behind the machine's back.
//
// Several brokers (`url` a comma-separated list): a terminal or POS starts on its home broker and moves on after a
// failed attempt, as broker/linkPolicy.ts says. A server subscribes on every broker of the list at once, one
// connection each, and answers a request on the connection it came in on (brokers that do not share messages need
// that; clustered ones do not mind). On brokers clustered through
// Redis (`payfleet broker --cluster`) give a server one broker: the cluster allows one connection per client id,
// so two connections of one server to two brokers of one cluster would close each other in turn.
//
// An optional `shaper` stands for a lossy radio on top of the real broker: every outgoing publish and every valid
// incoming message goes through it, and it may drop, repeat or delay it (sim/mqtt/radio.ts applies a scenario's
// network knobs). A message it delays is dropped if its connection has ended by then, as the radio lost it.

import mqtt, { type MqttClient } from 'mqtt';
import { fromCallback, type CallbackActorLogic } from 'xstate';
import type { LinkCommand, LinkEvent, LinkInput } from '../machines/link.ts';
import { credentialsFor } from './credentials.ts';
import { createLinkStats, identityOfLink, type LinkShaper, type LinkStats, type MqttLinkOptions } from './linkOptions.ts';
import { brokerUrlList, defaultBackoffOf, clientOptionsFor, homeBrokerIndex, jitteredBackoff, nextBrokerIndex, tcpAddressOf, type Backoff, type BackoffPolicy, type TcpAddress } from './linkPolicy.ts';
import { controlSubscriptionsOf, parseTopic, subscriptionsOf, topicForSend, type ClientIdentity, type ParsedTopic } from './topics.ts';
import { MAX_MESSAGE_BYTES, decodeMessageOnRoute, type Publisher } from './validate.ts';

/** The publisher of every payload on a response topic: only a server may publish there (the broker's ACL). */
const SERVER_PUBLISHER: Publisher = { role: 'server' };
/** mqtt.js copies a publish's options, so one object serves every send. */
const PUBLISH_QOS1 = { qos: 1 } as const;

/** What every endpoint of one `createMqttLink` shares. */
interface LinkShared {
  options: MqttLinkOptions;
  /** The brokers (`url`'s, then `failoverUrl`'s), and each one's parsed TCP address (undefined for a URL left to mqtt.js). */
  urls: string[];
  /** How many of `urls` are `url`'s: the brokers endpoints start on. */
  homeCount: number;
  addresses: Array<TcpAddress | undefined>;
  /** The link's backoff when one was given; otherwise each endpoint gets its role's (`defaultBackoffOf`). */
  policy: BackoffPolicy | undefined;
  maxBytes: number;
  stats: LinkStats;
  shaper: LinkShaper | undefined;
  /** The completion callback of every publish: one function for the link, not a closure per message. */
  onPublished: (error?: Error) => void;
}

/**
 * One endpoint's link: its state in fields and its steps as methods, so the thousands of endpoints of a swarm
 * worker share one copy of the code instead of each holding a closure per step (about 0.4 KB less heap per
 * terminal, measured in a swarm worker with 5,000 terminals).
 */
class MqttEndpoint {
  private readonly identity: ClientIdentity;
  private readonly username: string;
  private readonly password: string;
  private readonly controlTopics: string[];
  private readonly subscriptions: string[];
  private readonly backoff: Backoff;
  private inCoverage: boolean;
  private client: MqttClient | undefined;
  private up = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private lastTopic: string | undefined;
  private lastRoute: ParsedTopic | undefined;
  private lastPublisher: Publisher = SERVER_PUBLISHER;
  private lastSendTo: string | undefined;
  private lastSendTopic: string | undefined;
  /** The broker of `shared.urls` this endpoint connects to now. */
  private urlIndex: number;

  /**
   * `pinnedUrl`: always this broker of the list (a server's connection to each); otherwise the endpoint starts on
   * its home broker and moves on after a failed attempt. `heard` learns who sent each request that arrived.
   */
  constructor(
    private readonly shared: LinkShared,
    private readonly input: LinkInput,
    private readonly emit: (event: LinkEvent) => void,
    private readonly pinnedUrl?: number,
    private readonly heard?: (from: string) => void,
  ) {
    const { options, policy } = shared;
    this.identity = identityOfLink(input);
    const { username, password } = credentialsFor(options.secret, this.identity);
    this.username = username;
    this.password = password;
    this.controlTopics = options.control ? controlSubscriptionsOf(this.identity) : [];
    this.subscriptions = [...subscriptionsOf(this.identity), ...this.controlTopics];
    this.backoff = jitteredBackoff(options.seed, input.endpointId, policy ?? defaultBackoffOf(this.identity.role));
    this.inCoverage = input.role === 'server' || input.inCoverage;
    this.urlIndex = pinnedUrl ?? homeBrokerIndex(input.endpointId, shared.homeCount);
  }

  get isUp(): boolean {
    return this.up;
  }

  scheduleConnect(): void {
    if (this.stopped || !this.inCoverage || this.client || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, this.backoff.nextDelayMs());
  }

  private markDown(): void {
    if (!this.up) return;
    this.up = false;
    this.shared.stats.disconnects++;
    this.emit({ type: 'link.down' });
  }

  private publishControl(topic: string, payload: string): boolean {
    if (!this.up || !this.client) return false;
    this.client.publish(topic, payload, { qos: 1 }, () => undefined);
    return true;
  }

  private onMessage(c: MqttClient, topic: string, payload: Buffer): void {
    const { options, stats, shaper, maxBytes } = this.shared;
    stats.received++;
    if (options.control && this.controlTopics.includes(topic)) {
      options.control.receive(topic, payload, (replyTopic, reply) => this.publishControl(replyTopic, reply));
      return;
    }
    // An endpoint receives on its few subscribed topics, mostly one: the last topic's parse and publisher are
    // kept, so a message costs no topic parsing (a split, its arrays and the route object each time).
    if (topic !== this.lastTopic) {
      const route = parseTopic(topic);
      this.lastTopic = topic;
      this.lastRoute = route;
      // A request's sender is in its topic, which the broker's ACL binds to the publishing connection.
      this.lastPublisher = route?.family === 'req' ? route.sender : SERVER_PUBLISHER;
    }
    const decoded = decodeMessageOnRoute(payload, topic, this.lastRoute, this.lastPublisher, maxBytes);
    if (decoded.ok) {
      if (this.heard && 'from' in decoded.message && typeof decoded.message.from === 'string') this.heard(decoded.message.from);
      options.tamper?.heard(this.input.endpointId, decoded.message);
      const event: LinkEvent = { type: 'link.message', message: decoded.message };
      if (!shaper || shaper.passesAtOnce?.(this.input.endpointId)) return this.emit(event);
      shaper.incoming(this.input.endpointId, () => {
        // Delayed past the end of its connection (coverage lost, the actor stopped): the radio lost it.
        if (this.stopped || this.client !== c) stats.droppedInFlight++;
        else this.emit(event);
      });
    } else {
      stats.rejected[decoded.code] = (stats.rejected[decoded.code] ?? 0) + 1;
      this.emit({ type: 'link.rejected', reason: decoded.reason });
    }
  }

  private connect(): void {
    if (this.stopped || !this.inCoverage || this.client) return;
    const { options, stats } = this.shared;
    const address = this.shared.addresses[this.urlIndex];
    stats.connectAttempts++;
    const own = { clientId: this.username, username: this.username, password: this.password, keepalive: options.keepaliveSec ?? 30, connectTimeout: options.connectTimeoutMs ?? 10_000 };
    const c = address ? mqtt.connect(clientOptionsFor(address, own)) : mqtt.connect(this.shared.urls[this.urlIndex]!, clientOptionsFor(undefined, own));
    this.client = c;
    c.on('connect', () => {
      // No Nagle delay on the client side either (mqtt.js does not pass the option through).
      (c.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined)?.setNoDelay?.(true);
      c.subscribe(this.subscriptions, { qos: 1 }, (error, granted) => {
        if (this.client !== c) return;
        if (error || !granted || granted.some((g) => g.qos === 128)) {
          stats.subscribeRefusals++;
          c.end(true);
          return;
        }
        this.backoff.reset();
        this.up = true;
        stats.connects++;
        this.shared.options.everConnected?.add(this.input.endpointId);
        this.emit({ type: 'link.up' });
      });
    });
    c.on('message', (topic, payload) => {
      if (this.client === c) this.onMessage(c, topic, payload);
    });
    // Errors (refused connection, bad credentials) are followed by 'close', which schedules the retry.
    c.on('error', () => undefined);
    c.on('close', () => {
      if (this.client !== c) return;
      this.client = undefined;
      // An attempt that never came up: this broker is gone (or refuses us), so the next one is tried. A
      // connection that was up is retried where it was first.
      if (!this.up && this.pinnedUrl === undefined && this.shared.urls.length > 1) {
        this.urlIndex = nextBrokerIndex(this.urlIndex, this.shared.urls.length);
        stats.failovers++;
      }
      this.markDown();
      this.scheduleConnect();
    });
  }

  /** Ends the socket and any pending attempt; tells the parent only while the actor is alive. */
  private drop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    c?.end(true);
    if (!this.stopped) return this.markDown();
    // A stopped actor has no parent to tell, but its connection is gone all the same: `connects −
    // disconnects` is how many links are up (a crashed terminal's link must not stay counted).
    if (this.up) this.shared.stats.disconnects++;
    this.up = false;
  }

  receive(command: LinkCommand): void {
    if (command.type === 'link.coverage') {
      if (this.input.role === 'server' || command.inCoverage === this.inCoverage) return;
      this.inCoverage = command.inCoverage;
      if (this.inCoverage) {
        this.backoff.reset();
        this.scheduleConnect();
      } else {
        this.drop();
      }
      return;
    }
    this.send(command);
  }

  /** Publishes a `link.send`, or counts why it was dropped. */
  send(command: Extract<LinkCommand, { type: 'link.send' }>): void {
    const { stats, shaper, maxBytes } = this.shared;
    if (!this.up || !this.client) {
      stats.droppedWhileDown++;
      return;
    }
    const topic = this.topicFor(command);
    const payload = topic === undefined ? undefined : JSON.stringify(this.shared.options.tamper?.outgoing(this.input.endpointId, command.message) ?? command.message);
    // A UTF-16 unit is at most 3 UTF-8 bytes, so a short payload needs no byte count.
    if (topic === undefined || payload === undefined || (payload.length * 3 > maxBytes && Buffer.byteLength(payload) > maxBytes)) {
      stats.unroutable++;
      return;
    }
    stats.sent++;
    const c = this.client;
    if (!shaper || shaper.passesAtOnce?.(this.input.endpointId)) {
      c.publish(topic, payload, PUBLISH_QOS1, this.shared.onPublished);
      return;
    }
    shaper.outgoing(this.input.endpointId, () => {
      if (this.stopped || !this.up || this.client !== c) stats.droppedInFlight++;
      else c.publish(topic, payload, PUBLISH_QOS1, this.shared.onPublished);
    });
  }

  /**
   * The topic of a send. A terminal's or POS's topic depends only on the address it sends to (its shard), so the
   * last one is kept; a server's depends on the message too and is built each time.
   */
  private topicFor(command: Extract<LinkCommand, { type: 'link.send' }>): string | undefined {
    if (this.identity.role !== 'terminal' && this.identity.role !== 'pos') return topicForSend(this.identity, command.to, command.message);
    if (command.to !== this.lastSendTo) {
      this.lastSendTo = command.to;
      this.lastSendTopic = topicForSend(this.identity, command.to, command.message);
    }
    return this.lastSendTopic;
  }

  stop(): void {
    this.stopped = true;
    this.drop();
  }
}

/**
 * A server on several brokers: one pinned connection to each. It is up while any of them is (and says `link.up`
 * once, when the first comes up), and answers each recipient on the connection its last request came in on — on
 * brokers that do not share messages, the only one that reaches it — else on the first connection that is up.
 */
class EveryBrokerEndpoint {
  private readonly connections: MqttEndpoint[];
  private readonly lastHeardOn = new Map<string, number>();
  private upCount = 0;

  constructor(shared: LinkShared, input: LinkInput, emit: (event: LinkEvent) => void) {
    this.connections = shared.urls.map((_, index) => {
      const own = (event: LinkEvent): void => {
        if (event.type === 'link.up') {
          if (++this.upCount === 1) emit(event);
        } else if (event.type === 'link.down') {
          if (--this.upCount === 0) emit(event);
        } else {
          emit(event);
        }
      };
      return new MqttEndpoint(shared, input, own, index, (from) => this.lastHeardOn.set(from, index));
    });
  }

  scheduleConnect(): void {
    for (const connection of this.connections) connection.scheduleConnect();
  }

  receive(command: LinkCommand): void {
    if (command.type !== 'link.send') return;
    const heardOn = this.connections[this.lastHeardOn.get(command.to) ?? -1];
    const connection = heardOn?.isUp ? heardOn : (this.connections.find((c) => c.isUp) ?? this.connections[0]!);
    connection.send(command);
  }

  stop(): void {
    for (const connection of this.connections) connection.stop();
  }
}

export function createMqttLink(options: MqttLinkOptions): CallbackActorLogic<LinkCommand, LinkInput> {
  const home = brokerUrlList(options.url);
  const urls = [...home, ...(options.failoverUrl ? brokerUrlList(options.failoverUrl) : [])];
  const shared: LinkShared = {
    options,
    urls,
    homeCount: home.length,
    addresses: urls.map(tcpAddressOf),
    policy: options.backoff,
    maxBytes: options.maxMessageBytes ?? MAX_MESSAGE_BYTES,
    stats: options.stats ?? createLinkStats(),
    shaper: options.shaper,
    onPublished: (error) => {
      if (error) shared.stats.publishErrors++;
    },
  };
  return fromCallback<LinkCommand, LinkInput>(({ input, sendBack, receive }) => {
    const endpoint = input.role === 'server' && home.length > 1 ? new EveryBrokerEndpoint(shared, input, sendBack) : new MqttEndpoint(shared, input, sendBack);
    receive((command) => endpoint.receive(command));
    endpoint.scheduleConnect();
    return () => endpoint.stop();
  });
}
