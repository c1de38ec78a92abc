// Goal: where a link connects and when it tries again — the broker list, each endpoint's home broker and the
// order it fails over in, the reconnect backoff, and the mqtt.js options of one attempt — apart from what a
// connection does once it is up (broker/mqttLink.ts).
// Method: pure functions and one seeded generator per endpoint, no sockets. mqtt.js never reconnects by itself
// (`reconnectPeriod: 0` in `clientOptionsFor`): the link does, with capped exponential backoff and full jitter
// drawn from a generator seeded by the run's seed and the endpoint's id, so a reconnect storm spreads out and a
// seeded run draws the same delays.
// A payment server's cap is a second, not the devices' 30 s (`SERVER_BACKOFF`): while it is away its shards'
// requests are accepted by the broker and dropped, so it must be back as soon as the broker is.
//
// Several brokers (`url` a comma-separated list): a terminal or POS starts on the broker of its index (the number
// its id ends with, modulo the list: `t7` of three brokers starts on the second) and, when an attempt fails, tries
// the next one (`nextBrokerIndex`) — a connection that was up and drops is first retried where it was, so a
// broker's brief hiccup does not move its clients, while a broker that is gone (the retry refused) sends them on.
// Brokers of `failoverUrl` come after `url`'s in the list: endpoints move on to them but never start there.

import type { IClientOptions } from 'mqtt';
import type { Role } from './topics.ts';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';

export interface BackoffPolicy {
  /** Cap of the first delay; every delay is uniform in [0, cap) (full jitter). */
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 30_000, multiplier: 2 };

/**
 * The reconnect backoff of a payment server (and of the harness): at most a second between attempts, however long
 * the broker was away. The long cap of `DEFAULT_BACKOFF` spreads the reconnect storm of thousands of devices; a
 * server is one connection, and while it is away the broker accepts (PUBACKs) every request on its shards'
 * topics and drops it for want of a subscriber, so each second it waits past the broker's return is a second of
 * its shards' requests silently lost and left to the senders' outbox backoff. With the long cap a broker that
 * took 10–20 s to come back (a loaded test bed) left the servers away for up to 30 more real seconds — 15 minutes
 * of run time at ×30, longer than a run's drain.
 */
export const SERVER_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 1_000, multiplier: 2 };

/** The backoff an endpoint gets when its link is given none: `SERVER_BACKOFF` for a server or the harness. */
export function defaultBackoffOf(role: Role): BackoffPolicy {
  return role === 'server' || role === 'harness' ? SERVER_BACKOFF : DEFAULT_BACKOFF;
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

/** The broker a failed attempt moves on to: the next of the list, round. */
export function nextBrokerIndex(urlIndex: number, brokerCount: number): number {
  return (urlIndex + 1) % brokerCount;
}

/** mqtt.js's logger, replaced so that no client builds its own `debug` instance (about 1 KB each). */
const silentLog = (): void => undefined;

/** A plain `mqtt://host:port`, parsed once; undefined for any other URL (WebSocket with its path, TLS, auth). */
export interface TcpAddress {
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

export function tcpAddressOf(url: string): TcpAddress | undefined {
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
export function clientOptionsFor(address: TcpAddress | undefined, own: Pick<IClientOptions, 'clientId' | 'username' | 'password' | 'keepalive' | 'connectTimeout'>): IClientOptions {
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
