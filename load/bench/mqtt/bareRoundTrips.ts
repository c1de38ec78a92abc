// Goal: the baseline of `npm run bench:mqtt` — what a bare mqtt.js request/response client pair achieves
// through the same broker (and, for comparison, bare requesters on as many connections as the harness uses), so the harness's round trips can be read as a fraction of what the broker and the
// client library allow on this machine, measured in the same run.
// Method: a requester (a terminal's identity) and a responder (a server's identity), each one mqtt.js client
// with the credentials the harness issues, so the broker does the same authentication, authorisation and payload
// validation as for the harness. The requester keeps `concurrency` requests in flight (a closed loop), each a
// real-sized debit request at QoS 1 on its request topic; the responder answers each with a real-sized result at
// QoS 1 on the requester's response topic, doing nothing else: no machine, no signature check, no ledger.
// Latency is publish → answer received, on the monotonic clock. The storm's baseline: as many bare mqtt.js
// clients as the harness has terminals connect and subscribe all at once, with mqtt.js's own reconnect.

import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { credentialsFor } from '../../../broker/credentials.ts';
import { requestFilter, requestTopic, responseTopic, serverIdentity, type ClientIdentity } from '../../../broker/topics.ts';
import type { DebitRequest, ServerResult } from '../../../machines/messages.ts';

export interface RoundTripFigures {
  concurrency: number;
  roundTrips: number;
  elapsedMs: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Exact percentile of a list of samples (nearest rank); 0 for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function figuresOf(concurrency: number, latenciesMs: readonly number[], elapsedMs: number): RoundTripFigures {
  return {
    concurrency,
    roundTrips: latenciesMs.length,
    elapsedMs,
    perSecond: elapsedMs > 0 ? (latenciesMs.length * 1000) / elapsedMs : 0,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
  };
}

function connect(url: string, secret: string, identity: ClientIdentity): Promise<MqttClient> {
  const { username, password } = credentialsFor(secret, identity);
  const client = mqtt.connect(url, { clientId: username, username, password, protocolVersion: 4, clean: true, reconnectPeriod: 0, keepalive: 60 });
  return new Promise((resolve, reject) => {
    client.once('connect', () => {
      // Sockets without Nagle's delay, as the harness's links have (broker/mqttLink.ts).
      (client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined)?.setNoDelay?.(true);
      resolve(client);
    });
    client.once('error', reject);
  });
}

/** A debit request and its answer, shaped and sized as the harness's own (ed25519 signatures are 86 characters). */
function messagesFor(terminalId: string, seq: number): { request: DebitRequest; answer: Omit<ServerResult, 'reqId'> } {
  const sig = 'S'.repeat(86);
  const request: DebitRequest = {
    kind: 'debit',
    reqId: `${terminalId}:r${seq}`,
    from: terminalId,
    sig,
    claim: { txId: `${terminalId}:x${seq}`, amountMinor: 2000, payee: 'merchant-bench', timeMs: 1000 + seq, counter: seq, proxyId: terminalId, meansId: `m-${terminalId}` },
  };
  const answer: Omit<ServerResult, 'reqId'> = {
    kind: 'result',
    to: terminalId,
    requestKind: 'debit',
    ok: true,
    code: 'ok',
    txId: request.claim.txId,
    balances: [{ meansId: request.claim.meansId, availableMinor: 99_998_000, version: seq }],
    serverSig: sig,
  };
  return { request, answer };
}

/**
 * Round trips through the broker at `url` for `durationMs`, `concurrency` in flight, spread over the requesters
 * (terminals `requesterIds`, as evenly as they go) and answered by one responder (the server of shard 0). With one
 * requester this is the bare client pair; with one requester per payment in flight the broker fans out over as
 * many connections as the harness's closed loop uses. Run it while no harness process uses these identities.
 */
export async function bareRoundTrips(url: string, secret: string, requesterIds: readonly string[], concurrency: number, durationMs: number, responderUrl = url): Promise<RoundTripFigures> {
  // The responder may sit on another broker of a cluster (clusterRoundTrips.ts): every message then crosses Redis.
  const responder = await connect(responderUrl, secret, serverIdentity([0]));
  const requesters: MqttClient[] = [];
  try {
    await responder.subscribeAsync(requestFilter(0), { qos: 1 });
    const { answer } = messagesFor('x', 0);
    // The responder parses the request (as any server must, to know whom to answer) and sends the answer.
    responder.on('message', (_topic, payload) => {
      const request = JSON.parse(payload.toString()) as DebitRequest;
      responder.publish(responseTopic('terminal', request.from), JSON.stringify({ ...answer, to: request.from, reqId: request.reqId }), { qos: 1 });
    });
    for (const id of requesterIds) {
      const client = await connect(url, secret, { role: 'terminal', id });
      requesters.push(client);
      await client.subscribeAsync(responseTopic('terminal', id), { qos: 1 });
    }

    const latenciesMs: number[] = [];
    const sentAtMs = new Map<string, number>();
    const startedAtMs = performance.now();
    const deadlineMs = startedAtMs + durationMs;
    let seq = 0;
    let lastAtMs = startedAtMs;
    let inFlight = 0;
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const send = (index: number): void => {
      const id = requesterIds[index]!;
      const { request } = messagesFor(id, ++seq);
      sentAtMs.set(request.reqId, performance.now());
      inFlight++;
      requesters[index]!.publish(requestTopic(0, { role: 'terminal', id }), JSON.stringify(request), { qos: 1 });
    };
    requesters.forEach((requester, index) =>
      requester.on('message', (_topic, payload) => {
        const { reqId } = JSON.parse(payload.toString()) as ServerResult;
        const sentAt = sentAtMs.get(reqId);
        if (sentAt === undefined) return;
        sentAtMs.delete(reqId);
        inFlight--;
        lastAtMs = performance.now();
        latenciesMs.push(lastAtMs - sentAt);
        if (lastAtMs < deadlineMs) send(index);
        else if (inFlight === 0) finish();
      }),
    );
    for (let i = 0; i < concurrency; i++) send(i % requesters.length);
    await finished;
    return figuresOf(concurrency, latenciesMs, lastAtMs - startedAtMs);
  } finally {
    await Promise.all([...requesters, responder].map((client) => client.endAsync(true)));
  }
}

/**
 * Seconds until `terminalIds.length` bare mqtt.js clients, all started at once, are connected and subscribed to
 * their response topics (mqtt.js reconnects a refused or timed-out attempt after 1 s, its default). The clients
 * are closed before this returns. Undefined when not all made it within `timeoutMs`.
 */
export async function bareConnectStorm(url: string, secret: string, terminalIds: readonly string[], timeoutMs: number): Promise<number | undefined> {
  const startedAtMs = performance.now();
  const clients: MqttClient[] = [];
  let subscribed = 0;
  let finish: (seconds: number | undefined) => void = () => undefined;
  const done = new Promise<number | undefined>((resolve) => (finish = resolve));
  const timer = setTimeout(() => finish(undefined), timeoutMs);
  for (const id of terminalIds) {
    const { username, password } = credentialsFor(secret, { role: 'terminal', id });
    const client = mqtt.connect(url, { clientId: username, username, password, protocolVersion: 4, clean: true, reconnectPeriod: 1000, keepalive: 30 });
    client.on('error', () => undefined);
    client.once('connect', () => {
      client.subscribe(responseTopic('terminal', id), { qos: 1 }, (error) => {
        if (error) return;
        if (++subscribed === terminalIds.length) finish((performance.now() - startedAtMs) / 1000);
      });
    });
    clients.push(client);
  }
  try {
    return await done;
  } finally {
    clearTimeout(timer);
    await Promise.all(clients.map((c) => c.endAsync(true)));
  }
}
