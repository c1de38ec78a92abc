// Goal: shared material for the broker tests: well-formed, correctly signed messages of every kind, raw
// MQTT clients with issued credentials, and a parent actor that hosts one MQTT link and records its events.
// Method: the real domain signing functions with the fast 'sim' scheme, the real mqtt.js client, and a
// one-state XState machine invoking the link — no mocks.

import { expect } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { createActor, setup, type AnyActorRef, type CallbackActorLogic } from 'xstate';
import type { LinkCommand, LinkEvent, LinkInput } from '../machines/link.ts';
import type { AuthRequest, CaptureRequest, DebitRequest, LinkMessage, Proof, ReleaseRequest, ReloadRequest, RemitNow, RemitRequest, ServerRequest, ServerResult, SettleRequest, SyncRequest } from '../machines/messages.ts';
import { signProof, signRemitNow, signRequest, signResult } from '../machines/domain/requests.ts';
import { keyFromSeed, signClaim, type PaymentClaim } from '../machines/domain/signature.ts';
import { credentialsFor } from './credentials.ts';
import type { ClientIdentity } from './topics.ts';

export const proxyKey = keyFromSeed('sim', new Uint8Array(32).fill(7));
export const serverKey = keyFromSeed('sim', new Uint8Array(32).fill(9));

export function claimOf(proxyId: string, counter = 1, amountMinor = 1250): PaymentClaim {
  return { txId: `${proxyId}:t${counter}`, amountMinor, payee: 'merchant-1', timeMs: 1_000, counter, proxyId, meansId: 'm-1' };
}

export function proofOf(proxyId: string, counter = 1): Proof {
  const claim = claimOf(proxyId, counter);
  return signProof(proxyKey, claim, 'localOffline');
}

/** One signed request of each kind, from `from`. */
export function requestsFrom(from: string) {
  const base = { from, reqId: `${from}:q1` };
  return {
    auth: signRequest<AuthRequest>(proxyKey, { ...base, kind: 'auth', claim: claimOf(from) }),
    debit: signRequest<DebitRequest>(proxyKey, { ...base, kind: 'debit', claim: claimOf(from) }),
    capture: signRequest<CaptureRequest>(proxyKey, { ...base, kind: 'capture', txId: `${from}:t1`, amountMinor: 1250 }),
    release: signRequest<ReleaseRequest>(proxyKey, { ...base, kind: 'release', txId: `${from}:t1` }),
    remitGrouped: signRequest<RemitRequest>(proxyKey, { ...base, kind: 'remit', mode: 'grouped', transactions: [proofOf(from, 1), proofOf(from, 2)] }),
    remitAggregate: signRequest<RemitRequest>(proxyKey, {
      ...base,
      kind: 'remit',
      mode: 'aggregate',
      aggregates: [{ meansId: 'm-1', payee: 'merchant-1', sumMinor: 2500, txIds: [`${from}:t1`, `${from}:t2`], counters: [1, 2] }],
    }),
    sync: signRequest<SyncRequest>(proxyKey, { ...base, kind: 'sync', meansId: 'm-1' }),
    reload: signRequest<ReloadRequest>(proxyKey, { ...base, kind: 'reload', purseMeansId: `m-1/v:${from}`, fundingMeansId: 'm-1', amountMinor: 1000, leftoverMinor: 200, granted: false }),
    settle: signRequest<SettleRequest>(proxyKey, { ...base, kind: 'settle', proofs: [proofOf('T9', 3)] }),
  };
}

export function resultFor(request: ServerRequest): ServerResult {
  return signResult(serverKey, {
    kind: 'result',
    reqId: request.reqId,
    to: request.from,
    requestKind: request.kind,
    ok: true,
    code: 'ok',
    balances: [{ meansId: 'm-1', availableMinor: 8750, version: 3 }],
  });
}

export function remitNowFor(to: string): RemitNow {
  return signRemitNow(serverKey, { reqId: 'sd:r1', from: 'sd-0', to, issuedAtMs: 1_000 });
}

export function payload(message: LinkMessage | unknown): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/**
 * Names every object inherits from Object.prototype, with a value a careless check would let through: a payload
 * carrying one of them must be refused like any unknown field, never mistaken for an allowed one or reach a
 * prototype.
 */
export const INHERITED_NAMES: ReadonlyArray<readonly [name: string, value: unknown]> = [
  ['constructor', 1],
  ['toString', 'x'],
  ['__proto__', { admin: true }],
];

/** One message of every kind a link carries: requests from terminal T1 and POS P1, and a server's answers to T1. */
export function everyKindOfMessage(): Array<{ name: string; message: LinkMessage; from: 'T1' | 'P1' | 'server' }> {
  const t1 = requestsFrom('T1');
  return [
    ...Object.entries(t1)
      .filter(([name]) => name !== 'settle')
      .map(([name, message]) => ({ name, message: message as LinkMessage, from: 'T1' as const })),
    { name: 'settle', message: requestsFrom('P1').settle, from: 'P1' as const },
    { name: 'result', message: resultFor(t1.sync), from: 'server' as const },
    { name: 'remitNow', message: remitNowFor('T1'), from: 'server' as const },
  ];
}

/** Where a message nests an object (a claim, a proof, an aggregate, a balance): the fuzz plants names there too. */
function nestedObjectPath(message: LinkMessage): Array<string | number> | undefined {
  switch (message.kind) {
    case 'auth':
    case 'debit':
      return ['claim'];
    case 'remit':
      return message.mode === 'grouped' ? ['transactions', 0] : ['aggregates', 0];
    case 'settle':
      return ['proofs', 0];
    case 'result':
      return message.balances?.length ? ['balances', 0] : undefined;
    default:
      return undefined;
  }
}

/**
 * The message's JSON with one inherited name planted as an own field, at the top and inside its first nested
 * object; `refusedField` is the path the refusal must name. The field is defined, not assigned, so `__proto__`
 * lands in the text as a key rather than changing the prototype of the object being serialised.
 */
export function withInheritedNames(message: LinkMessage): Array<{ label: string; body: Buffer; refusedField: string }> {
  const nested = nestedObjectPath(message);
  const paths: Array<Array<string | number>> = nested ? [[], nested] : [[]];
  const out: Array<{ label: string; body: Buffer; refusedField: string }> = [];
  for (const path of paths) {
    for (const [name, value] of INHERITED_NAMES) {
      const copy = JSON.parse(JSON.stringify(message)) as Record<string | number, unknown>;
      let node = copy;
      for (const step of path) node = node[step] as Record<string | number, unknown>;
      Object.defineProperty(node, name, { value, enumerable: true, writable: true, configurable: true });
      const where = path.reduce<string>((text, step) => (typeof step === 'number' ? `${text}[${step}]` : text ? `${text}.${step}` : step), '');
      const refusedField = where ? `${where}.${name}` : name;
      out.push({ label: `${message.kind} ${refusedField}`, body: Buffer.from(JSON.stringify(copy)), refusedField });
    }
  }
  return out;
}

/** A raw mqtt.js client connected with the credentials issued to `identity`. */
export async function rawClient(url: string, secret: string, identity: ClientIdentity): Promise<MqttClient> {
  const { username, password } = credentialsFor(secret, identity);
  return mqtt.connectAsync(url, { clientId: username, username, password, protocolVersion: 4, reconnectPeriod: 0, clean: true });
}

/** The raw clients one test file connects, ended together after its tests. */
export class ClientPool {
  private readonly clients: MqttClient[] = [];
  constructor(private readonly secret: string) {}

  async connectAs(identity: ClientIdentity, url: string): Promise<MqttClient> {
    return this.add(await rawClient(url, this.secret, identity));
  }

  /** Takes a client connected some other way (an impostor, a bare connect) so it is ended with the rest. */
  add(client: MqttClient): MqttClient {
    this.clients.push(client);
    return client;
  }

  endAll(): void {
    for (const client of this.clients) client.end(true);
    this.clients.length = 0;
  }
}

/**
 * A terminal's sync request carried to the server on `requestTopic`, and the server's answer carried back to the
 * terminal's response topic: the round trip every broker set-up must carry. Both clients are subscribed already.
 */
export async function expectRoundTrip(terminal: MqttClient, server: MqttClient, terminalId: string, requestTopic: string): Promise<void> {
  const sync = requestsFrom(terminalId).sync!;
  const arrived = nextMessage(server, requestTopic);
  await terminal.publishAsync(requestTopic, payload(sync), { qos: 1 });
  expect(JSON.parse((await arrived).toString())).toEqual(sync);
  const responseTopic = `pf/v1/tm/${terminalId}/resp`;
  const answered = nextMessage(terminal, responseTopic);
  await server.publishAsync(responseTopic, payload(resultFor(sync)), { qos: 1 });
  expect(JSON.parse((await answered).toString())).toEqual(resultFor(sync));
}

/** Resolves with the next message the client receives on `topic`. */
export function nextMessage(client: MqttClient, topic: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const onMessage = (t: string, p: Buffer) => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve(p);
    };
    client.on('message', onMessage);
  });
}

/** Polls `condition` until true; fails after `timeoutMs` (a bound, not a measurement). */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface LinkHost {
  events: LinkEvent[];
  send(command: LinkCommand): void;
  /** Resolves with the first event of `type` at or after position `from` in `events`. */
  next<T extends LinkEvent['type']>(type: T, from?: number): Promise<Extract<LinkEvent, { type: T }>>;
  stop(): void;
}

/** Starts a parent actor invoking `link` with `input`, recording every event the link sends back. */
export function hostLink(link: CallbackActorLogic<LinkCommand, LinkInput>, input: LinkInput): LinkHost {
  const events: LinkEvent[] = [];
  const listeners = new Set<() => void>();
  const machine = setup({ actors: { link } }).createMachine({
    invoke: { src: 'link', id: 'link', input },
    on: {
      '*': {
        actions: ({ event }) => {
          events.push(event as LinkEvent);
          for (const l of [...listeners]) l();
        },
      },
    },
  });
  const actor = createActor(machine).start();
  const child = () => actor.getSnapshot().children.link as AnyActorRef;
  return {
    events,
    send: (command) => child().send(command),
    next(type, from = 0) {
      return new Promise((resolve) => {
        const check = () => {
          const found = events.slice(from).find((e) => e.type === type);
          if (!found) return;
          listeners.delete(check);
          resolve(found as never);
        };
        listeners.add(check);
        check();
      });
    },
    stop: () => actor.stop(),
  };
}
