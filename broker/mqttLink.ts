// Goal: the MQTT implementation of a machine's `link` child (machines/link.ts), swapped in with
// `machine.provide({ actors: { link: createMqttLink(options) } })`: one real mqtt.js connection per endpoint.
// Method: an XState callback actor owning one mqtt.js v5 client (MQTT 3.1.1, so aedes speaks it). It connects
// with the credentials the harness issues, subscribes to the endpoint's own topics (a server: its shards'
// request topics), and reports `link.up` only once those subscriptions are granted, so "up" means answers can
// arrive. Sends are QoS 1 on the topic of broker/topics.ts. mqtt.js never reconnects by itself
// (`reconnectPeriod: 0`): this actor does, with capped exponential backoff and full jitter drawn from a seeded
// generator, so a reconnect storm spreads out and a seeded run draws the same delays. Out of coverage the socket
// is ended and nothing reconnects until coverage returns.
//
// Sessions are clean (`clean: true`) for every role, money-moving or not. The broker is never relied on to
// deliver: a message sent while down is dropped here, and one lost by the broker (Mosquitto drops silently past
// its queue limits) is retried end to end by the proxy's outbox, which the server answers idempotently. A
// persistent session would only make the broker hold stale answers for offline terminals and replay them in a
// burst on reconnect. Each connection attempt uses a fresh mqtt.js client, so nothing queued inside an old one
// (an unacknowledged QoS 1 publish) is resent behind the machine's back.
//
// Several brokers (`url` a comma-separated list): a terminal or POS starts on the broker of its index (the number
// its id ends with, modulo the list: `t7` of three brokers starts on the second) and, when an attempt fails, tries
// the next one — a connection that was up and drops is first retried where it was, so a broker's brief hiccup
// does not move its clients, while a broker that is gone (the retry refused) sends them on. A server subscribes
// on every broker of the list at once, one connection each, and answers a request on the connection it came in
// on (brokers that do not share messages need that; clustered ones do not mind). On brokers clustered through
// Redis (`payfleet broker --cluster`) give a server one broker: the cluster allows one connection per client id,
// so two connections of one server to two brokers of one cluster would close each other in turn.
//
// An optional `shaper` stands for a lossy radio on top of the real broker: every outgoing publish and every valid
// incoming message goes through it, and it may drop, repeat or delay it (sim/mqtt/radio.ts applies a scenario's
// network knobs). A message it delays is dropped if its connection has ended by then, as the radio lost it.

import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { fromCallback, type CallbackActorLogic } from 'xstate';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { LinkCommand, LinkEvent, LinkInput } from '../machines/link.ts';
import type { LinkMessage } from '../machines/messages.ts';
import { credentialsFor } from './credentials.ts';
import { ENDPOINT_ID_PATTERN, controlSubscriptionsOf, parseTopic, serverIdentity, subscriptionsOf, topicForSend, type ClientIdentity, type ParsedTopic } from './topics.ts';
import { MAX_MESSAGE_BYTES, decodeMessageOnRoute, type Publisher } from './validate.ts';

export interface BackoffPolicy {
  /** Cap of the first delay; every delay is uniform in [0, cap) (full jitter). */
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 30_000, multiplier: 2 };

/** Counters shared by every link made from one `createMqttLink` (pass your own to read them). */
export interface LinkStats {
  connectAttempts: number;
  connects: number;
  disconnects: number;
  /** Connections ended because a subscription was refused (SUBACK 0x80). */
  subscribeRefusals: number;
  sent: number;
  /** `link.send` while the link was down: dropped, the sender's outbox retries. */
  droppedWhileDown: number;
  /** `link.send` with no route in the topic contract, or larger than the size limit: dropped. */
  unroutable: number;
  publishErrors: number;
  received: number;
  /** Incoming payloads refused by decodeMessage, by code. */
  rejected: Record<string, number>;
  // What the `shaper` did (all 0 without one), under the virtual network's names for the same faults.
  /** Messages the shaper dropped. */
  lost: number;
  /** Messages the shaper passed twice. */
  duplicated: number;
  /** Messages the shaper held back so that later ones overtook them. */
  reordered: number;
  /** Messages the shaper passed after a delay rather than at once. */
  delayed: number;
  /** Messages the shaper delayed whose connection had ended when their delay ran out: dropped. */
  droppedInFlight: number;
  /** Times an endpoint moved to the next broker of its list after a failed attempt (0 with one broker). */
  failovers: number;
}

export function createLinkStats(): LinkStats {
  return {
    connectAttempts: 0, connects: 0, disconnects: 0, subscribeRefusals: 0, sent: 0, droppedWhileDown: 0, unroutable: 0, publishErrors: 0, received: 0, rejected: {},
    lost: 0, duplicated: 0, reordered: 0, delayed: 0, droppedInFlight: 0, failovers: 0,
  };
}
/**
 * What a lossy radio does to a device's messages. Each hook gets one message's way on (`pass`) and calls it
 * zero, one or more times, at once or later; it counts what it did in the link's `LinkStats`.
 */
export interface LinkShaper {
  /** A message `endpointId` publishes. */
  outgoing(endpointId: string, pass: () => void): void;
  /** A valid message that reached `endpointId` from the broker. */
  incoming(endpointId: string, pass: () => void): void;
}

export interface MqttLinkOptions {
  /** `mqtt://host:port` or `ws://host:port`, or several separated by commas (see the header). */
  url: string;
  /**
   * Brokers a terminal or POS moves on to after every one of `url`'s, never starts on (comma-separated): the
   * servers' brokers of a Redis cluster, say, which carry the same messages.
   */
  failoverUrl?: string;
  /** The run's secret; each endpoint's password is derived from it. */
  secret: string;
  /** Seed of the reconnect jitter; each endpoint mixes in its own id so endpoints draw different delays. */
  seed: number;
  keepaliveSec?: number;
  connectTimeoutMs?: number;
  backoff?: BackoffPolicy;
  maxMessageBytes?: number;
  stats?: LinkStats;
  /** Loss, duplication and delay between the endpoint and the broker; none when absent. */
  shaper?: LinkShaper;
  /** A man in the middle on the radio path (alteredInFlight): may return a copy sent in place of an outgoing message; hears every valid incoming one. */
  tamper?: { outgoing(endpointId: string, message: LinkMessage): LinkMessage | undefined; heard(endpointId: string, message: LinkMessage): void };
  /** Gets the id of each endpoint whose link came up at least once: one that never got in tells a test bed that
   *  could not host the fleet (a broker refusing connections) from a fault of the system under test. */
  everConnected?: Set<string>;
  /**
   * Harness control messages for this endpoint (a payment server's `pf/v1/ctl/sd/{shard}/cmd`): with it the link
   * also subscribes to the endpoint's control topics and hands what arrives there to `receive`, not to the machine.
   */
  control?: ControlChannel;
}

/** What a link does with harness control messages; see `MqttLinkOptions.control`. */
export interface ControlChannel {
  /**
   * A payload that arrived on one of the endpoint's control topics, unchecked (decode it with `decodeControl`).
   * `publish` sends a reply at QoS 1 on the connection that is up when it is called; while down it drops the
   * reply and returns false (the harness resends its command, so the receiver must answer idempotently).
   */
  receive(topic: string, payload: Buffer, publish: (topic: string, payload: string) => boolean): void;
}

/** The identity a link endpoint connects as. */
export function identityOfLink(input: LinkInput): ClientIdentity {
  if (input.role === 'server') {
    if (!input.shards || input.shards.length === 0) throw new Error(`noShards: server link ${JSON.stringify(input.endpointId)} has no shards`);
    return serverIdentity(input.shards);
  }
  if (!ENDPOINT_ID_PATTERN.test(input.endpointId)) {
    throw new Error(`badEndpointId: ${JSON.stringify(input.endpointId)} does not match ${ENDPOINT_ID_PATTERN.source}, so it cannot name MQTT topics`);
  }
  return { role: input.role, id: input.endpointId };
}

/** FNV-1a of the endpoint id, mixed with the seed, as a 32-bit generator seed. */
function endpointSeed(seed: number, endpointId: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < endpointId.length; i++) h = Math.imul(h ^ endpointId.charCodeAt(i), 0x01000193) >>> 0;
  return h | 0;
}

export interface Backoff {
  /** The delay before the next attempt: uniform in [0, min(maxMs, initialMs·multiplier^attempts)). */
  nextDelayMs(): number;
  /** After a success: the next delay starts from `initialMs` again. */
  reset(): void;
}

/** Capped exponential backoff with full jitter, drawn from a generator seeded by `seed` and the endpoint id. */
export function jitteredBackoff(seed: number, endpointId: string, policy: BackoffPolicy = DEFAULT_BACKOFF): Backoff {
  const rng = xoroshiro128plus(endpointSeed(seed, endpointId));
  let attempts = 0;
  return {
    nextDelayMs() {
      const capMs = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** attempts);
      attempts++;
      return Math.floor(uniformFloat64(rng) * capMs);
    },
    reset() {
      attempts = 0;
    },
  };
}

/** mqtt.js's logger, replaced so that no client builds its own `debug` instance (about 1 KB each). */
const silentLog = (): void => undefined;

/** The publisher of every payload on a response topic: only a server may publish there (the broker's ACL). */
const SERVER_PUBLISHER: Publisher = { role: 'server' };
/** mqtt.js copies a publish's options, so one object serves every send. */
const PUBLISH_QOS1 = { qos: 1 } as const;

/** A plain `mqtt://host:port`, parsed once; undefined for any other URL (WebSocket with its path, TLS, auth). */
interface TcpAddress {
  host: string;
  port: number;
}

/** The broker URLs of a `url` option: one, or several separated by commas (blanks around them ignored). */
export function brokerUrlList(url: string): string[] {
  const urls = url.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (urls.length === 0) throw new Error(`noBrokerUrl: no broker URL in ${JSON.stringify(url)}`);
  return urls;
}

/**
 * The broker a terminal or POS starts on: the number its id ends with (`t12` → 12), modulo the number of brokers,
 * so consecutive terminals spread evenly; 0 for an id without one.
 */
export function homeBrokerIndex(endpointId: string, brokerCount: number): number {
  const digits = /(\d+)$/.exec(endpointId)?.[1];
  if (!digits || brokerCount <= 1) return 0;
  return Number(BigInt(digits) % BigInt(brokerCount));
}

function tcpAddressOf(url: string): TcpAddress | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== 'mqtt:' || parsed.username || parsed.password || parsed.search) return undefined;
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: parsed.port ? Number(parsed.port) : 1883 };
}

/**
 * The options of one mqtt.js client. mqtt.js keeps this very object as `client.options` and adds its defaults and
 * derived fields to it; added one by one, they turn it into a slow dictionary object of about 1.5 KB per client.
 * For a plain TCP address every field mqtt.js adds is declared here first, left undefined so that mqtt.js fills in
 * exactly what it would have (its defaults, the host name): the object keeps its compact literal shape, and
 * mqtt.js skips its per-connection `url.parse`. Any other URL is left to mqtt.js, as before.
 */
function clientOptionsFor(address: TcpAddress | undefined, own: Pick<IClientOptions, 'clientId' | 'username' | 'password' | 'keepalive' | 'connectTimeout'>): IClientOptions {
  if (!address) return { ...own, protocolVersion: 4, clean: true, reconnectPeriod: 0, resubscribe: false, log: silentLog };
  return {
    clientId: own.clientId,
    username: own.username,
    password: own.password,
    keepalive: own.keepalive,
    connectTimeout: own.connectTimeout,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    resubscribe: false,
    log: silentLog,
    protocol: 'mqtt',
    host: address.host,
    port: address.port,
    // Filled in by mqtt.js.
    defaultProtocol: undefined,
    hostname: undefined,
    unixSocket: undefined,
    socksProxy: undefined,
    protocolId: undefined,
    reschedulePings: undefined,
    subscribeBatchSize: undefined,
    writeCache: undefined,
    timerVariant: undefined,
    customHandleAcks: undefined,
  };
}

/** What every endpoint of one `createMqttLink` shares. */
interface LinkShared {
  options: MqttLinkOptions;
  /** The brokers (`url`'s, then `failoverUrl`'s), and each one's parsed TCP address (undefined for a URL left to mqtt.js). */
  urls: string[];
  /** How many of `urls` are `url`'s: the brokers endpoints start on. */
  homeCount: number;
  addresses: Array<TcpAddress | undefined>;
  policy: BackoffPolicy;
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
    this.backoff = jitteredBackoff(options.seed, input.endpointId, policy);
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
      if (!shaper) return this.emit(event);
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
        this.urlIndex = (this.urlIndex + 1) % this.shared.urls.length;
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
    if (!shaper) {
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
    policy: options.backoff ?? DEFAULT_BACKOFF,
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
