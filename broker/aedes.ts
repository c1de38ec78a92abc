// Goal: the embedded MQTT broker of the mqtt mode: aedes 1.x (MQTT 3.1.1) on TCP and, optionally, WebSocket,
// refusing anonymous clients and every publish or subscription the topic contract does not allow.
// Method: aedes' hooks. `authenticate` recomputes the password from the username (broker/credentials.ts) and
// remembers the client's identity; `authorizePublish` checks size, the ACL of broker/topics.ts and then the
// payload itself with broker/validate.ts (requests, answers and harness control messages), so a malformed or
// forged message never reaches a subscriber [INV-6 signatures]; a refused publish closes the publisher's
// connection (aedes' way, MQTT-3.3.5-2).
// `authorizeSubscribe` negates a forbidden subscription (SUBACK 0x80) and keeps the connection. Every refusal
// is counted by reason.
// Clustered (`clusterUrl`, `payfleet broker --cluster redis://…`), the broker's message bus is mqemitter-redis:
// every publish goes through Redis and reaches the subscribers of every broker of the cluster, so a terminal on
// one broker is answered by a server on another. The payload checks stay here, in the publishing broker's
// `authorizePublish`: a message is checked once, where it enters the cluster. The persistence stays aedes'
// in-memory one, on purpose: every session is clean (broker/mqttLink.ts), every message is QoS 1 and nothing is
// retained (refused above), so a broker holds nothing another broker would need — only the in-flight QoS 1
// packets of its own connections, which die with them and are resent end to end by the proxies' outboxes.
// (aedes-persistence-redis 12 does not install beside aedes 1.2 either.)

import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import MQEmitterRedis from 'mqemitter-redis';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { authenticate } from './credentials.ts';
import { maySubscribe, parseTopic, publishCheckOf, type ClientIdentity, type ParsedTopic } from './topics.ts';
import { MAX_MESSAGE_BYTES, RefusalCounter, decodeControl, decodeMessageOnRoute } from './validate.ts';

export interface BrokerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** WebSocket listener port; none when undefined, 0 picks a free port. */
  wsPort?: number;
  /** The per-run secret credentials are derived from. */
  secret: string;
  maxMessageBytes?: number;
  /** Check payloads of request and response topics with decodeMessage (default true). */
  validatePayloads?: boolean;
  /**
   * Refuses the connections of the endpoints it names (CONNACK 3, server unavailable), well-authenticated or
   * not: a test bed that cannot host part of the fleet, as a broker out of file descriptors.
   */
  refuseEndpoint?: (identity: ClientIdentity) => boolean;
  /** A Redis URL (`redis://host:port`): share every message with the other brokers on it; standalone when absent. */
  clusterUrl?: string;
  /** Real time to wait for Redis before giving up (default 10 s). */
  clusterConnectTimeoutMs?: number;
  /** Where a clustered broker reports Redis errors after the start (ioredis reconnects by itself). */
  onClusterError?: (error: Error) => void;
}

export interface BrokerStats {
  connectedClients: number;
  /** Connections accepted since start. */
  connections: number;
  /** Messages accepted from clients. */
  published: number;
  /** Refused connections, publishes and subscriptions, by reason. */
  refusals: Record<string, number>;
  /** Messages that went out to Redis (clustered only; each is one Redis PUBLISH, aedes' own $SYS ones included). */
  clusterPublished?: number;
}

export interface RunningBroker {
  host: string;
  port: number;
  wsPort: number | undefined;
  url: string;
  wsUrl: string | undefined;
  stats(): BrokerStats;
  /** True while a client with this id is connected. */
  isConnected(clientId: string): boolean;
  close(): Promise<void>;
}

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** MQTT 3.1.1 CONNACK codes: 2 identifier rejected, 3 server unavailable, 4 bad username or password, 5 not authorised. */
const RETURN_CODE = { anonymous: 5, unknownUser: 4, badPassword: 4, clientIdMismatch: 2, serverUnavailable: 3 } as const;

/** The message bus of a clustered broker, once both its Redis connections are ready. */
async function redisEmitter(url: string, timeoutMs: number, onError: (error: Error) => void): Promise<{ mq: ReturnType<typeof MQEmitterRedis>; published: () => number }> {
  // No retries of a command while Redis is down: a publish fails at once (its QoS 1 sender resends) instead of
  // piling up in ioredis' offline queue behind a dead connection.
  const mq = MQEmitterRedis({ connectionString: url, maxRetriesPerRequest: 1 });
  const connections = [(mq as unknown as { subConn: RedisConnection }).subConn, (mq as unknown as { pubConn: RedisConnection }).pubConn];
  // mqemitter-redis turns every connection error into an 'error' event of its own: heard from the start, or it
  // would be thrown.
  let lastError: Error | undefined;
  let started = false;
  (mq as unknown as { state: RedisConnection }).state.on('error', (error: Error) => {
    if (started) onError(error);
    else lastError = error;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.all(connections.map((c) => new Promise((resolve) => c.once('ready', resolve)))),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`clusterUnreachable: no Redis at ${url} after ${timeoutMs} ms${lastError ? ` (${lastError.message})` : ''}`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    // Not `mq.close()`: it QUITs, which waits for a connection that never came.
    for (const c of connections) c.disconnect();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  started = true;
  let published = 0;
  const emit = mq.emit.bind(mq);
  mq.emit = (message, done) => {
    published++;
    emit(message, done);
  };
  return { mq, published: () => published };
}

/** What is used here of an ioredis connection and of mqemitter-redis' state emitter. */
interface RedisConnection {
  on(event: string, listener: (...args: never[]) => void): unknown;
  once(event: string, listener: (...args: never[]) => void): unknown;
  disconnect(): void;
}

function listen(server: NetServer | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: NetServer | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  const host = options.host ?? '127.0.0.1';
  const maxBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  const validatePayloads = options.validatePayloads ?? true;
  const refusals = new RefusalCounter();
  const identities = new WeakMap<Client, ClientIdentity>();
  /**
   * Per client, what its publishes need besides its identity: its ACL check (rules built once), and the route of
   * the last topic it published on with the ACL's verdict — a terminal publishes on one topic, so most messages
   * cost no topic parsing and no rule matching.
   */
  const publishers = new WeakMap<Client, { mayPublish: (topic: string) => boolean; topic: string | undefined; allowed: boolean; route: ParsedTopic | undefined }>();
  let connections = 0;
  let published = 0;
  const cluster = options.clusterUrl
    ? await redisEmitter(options.clusterUrl, options.clusterConnectTimeoutMs ?? 10_000, options.onClusterError ?? ((error) => console.error(`payfleet broker: Redis: ${error.message}`)))
    : undefined;

  const aedes = await Aedes.createBroker({
    // In memory (aedes' default) even when clustered: see the header.
    ...(cluster ? { mq: cluster.mq } : {}),
    authenticate(client, username, password, done) {
      const verdict = authenticate(options.secret, client.id, username, password);
      if (!verdict.ok) {
        refusals.count(`connect.${verdict.reason}`);
        done(authError(RETURN_CODE[verdict.reason], verdict.reason), null);
        return;
      }
      if (options.refuseEndpoint?.(verdict.identity)) {
        refusals.count('connect.refusedByTestBed');
        done(authError(RETURN_CODE.serverUnavailable, 'serverUnavailable'), null);
        return;
      }
      identities.set(client, verdict.identity);
      publishers.set(client, { mayPublish: publishCheckOf(verdict.identity), topic: undefined, allowed: false, route: undefined });
      done(null, true);
    },
    authorizePublish(client, packet, callback) {
      const refuse = (reason: string) => {
        refusals.count(`publish.${reason}`);
        callback(new Error(reason));
      };
      const identity = client ? identities.get(client) : undefined;
      const publisher = client ? publishers.get(client) : undefined;
      if (!identity || !publisher) return refuse('unauthenticated');
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      if (payload.length > maxBytes) return refuse('oversized');
      // Retained messages would replay stale answers to a reconnecting client: the contract has none.
      if (packet.retain) return refuse('retained');
      if (packet.topic !== publisher.topic) {
        publisher.topic = packet.topic;
        publisher.allowed = publisher.mayPublish(packet.topic);
        publisher.route = publisher.allowed ? parseTopic(packet.topic) : undefined;
      }
      if (!publisher.allowed) return refuse('forbiddenTopic');
      const route = publisher.route;
      const family = route?.family;
      if (validatePayloads && (family === 'req' || family === 'resp')) {
        const decoded = decodeMessageOnRoute(payload, packet.topic, route, identity, maxBytes);
        if (!decoded.ok) return refuse(decoded.code);
      }
      // Harness control commands and their answers are checked the same way: a forged one never reaches a server.
      if (validatePayloads && (family === 'ctlCmd' || family === 'ctlAck')) {
        const decoded = decodeControl(payload, packet.topic, identity, maxBytes);
        if (!decoded.ok) return refuse(decoded.code);
      }
      published++;
      callback(null);
    },
    authorizeSubscribe(client, subscription, callback) {
      const identity = identities.get(client);
      if (!identity || !maySubscribe(identity, subscription.topic)) {
        refusals.count('subscribe.forbiddenTopic');
        callback(null, null);
        return;
      }
      callback(null, subscription);
    },
  });
  aedes.on('client', () => connections++);
  // Connected clients by id; a takeover replaces the entry, so the old client's disconnect must not remove it.
  const live = new Map<string, Client>();
  aedes.on('clientReady', (client) => live.set(client.id, client));
  aedes.on('clientDisconnect', (client) => {
    if (live.get(client.id) === client) live.delete(client.id);
  });

  // Sockets that never send CONNECT are not aedes clients; track them so close() does not wait for them.
  const sockets = new Set<Socket>();
  // No Nagle delay: payment requests are small and latency-bound (measured: 88 ms → 1.5 ms round trips).
  const tcp = createNetServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  const port = await listen(tcp, options.port ?? 1883, host);

  let http: HttpServer | undefined;
  let wss: WebSocketServer | undefined;
  let wsPort: number | undefined;
  if (options.wsPort !== undefined) {
    http = createHttpServer();
    wss = new WebSocketServer({ server: http });
    wss.on('connection', (websocket, request) => aedes.handle(createWebSocketStream(websocket), request));
    wsPort = await listen(http, options.wsPort, host);
  }

  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    wsPort,
    url: `mqtt://${host}:${port}`,
    wsUrl: wsPort === undefined ? undefined : `ws://${host}:${wsPort}`,
    isConnected: (clientId) => live.has(clientId),
    stats: () => ({ connectedClients: aedes.connectedClients, connections, published, refusals: refusals.snapshot(), ...(cluster ? { clusterPublished: cluster.published() } : {}) }),
    close() {
      closing ??= (async () => {
        const servers: Promise<void>[] = [closeServer(tcp)];
        if (wss && http) {
          for (const ws of wss.clients) ws.terminate();
          wss.close();
          servers.push(closeServer(http));
          http.closeAllConnections();
        }
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await Promise.all(servers);
      })();
      return closing;
    },
  };
}
