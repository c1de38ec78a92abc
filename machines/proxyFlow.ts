// Goal: the plumbing every step of the payment proxy (PP) shares: how one event's work reads and replaces the
// context, how it enqueues its sends, emits and timers, and the few acts every step may do (answer an order's
// source, send to SD, check that a result is SD's).
// Method: a step works on a `Flow` — a draft of the context plus XState's `enqueue` seen through the small
// `Enqueue` interface below (XState's own enqueuer satisfies it as it is, no cast) — and `runFlow` stores the
// draft with one `assign` at the end. The enqueued actions carry values computed during the step, so where the
// `assign` sits among them changes nothing, and their order is the order the step ran them in.

import type { LinkCommand, NearLinkCommand } from './link.ts';
import { serverAddress, shardOf } from './link.ts';
import type { LinkMessage, PaymentOrder, ProxyResponse, ServerRequest, ServerResult } from './messages.ts';
import { verifyResult } from './domain/requests.ts';
import type { ProxyContext, ProxyEmitted, ProxyEvent, ProxyTimerEvent } from './proxyTypes.ts';

/**
 * The timers' ids. XState keeps one pending timer per id, so each is armed again only after it fired or was
 * cancelled; the outbox's two timers (next due item, date trigger) share one id because at most one runs.
 */
export type TimerId = 'orders.confirmTimeout' | 'orders.remoteResend' | 'orders.remoteTimeout' | 'outbox.timer';

/** The subset of XState's `enqueue` the steps use (they run inside `enqueueActions`). */
export interface Enqueue {
  assign(values: Partial<ProxyContext>): void;
  sendTo(actorId: 'link' | 'nearLink', event: LinkCommand | NearLinkCommand): void;
  sendParent(event: { type: string; [key: string]: unknown }): void;
  emit(event: ProxyEmitted): void;
  raise(event: ProxyTimerEvent, options: { id: TimerId; delay: number }): void;
  cancel(id: TimerId): void;
}

/**
 * One event's work. The steps read and replace the fields of a draft of the context and enqueue their sends,
 * emits and timers in the order the flow runs them; `runFlow` stores the draft with one `assign` at the end.
 */
export interface Flow {
  c: ProxyContext;
  e: Enqueue;
  /** The outbox may have changed: its timer is re-armed at the end of the event (only while online). */
  outboxChanged: boolean;
}

export function runFlow(context: ProxyContext, enqueue: Enqueue, body: (f: Flow) => void): void {
  const f: Flow = { c: { ...context }, e: enqueue, outboxChanged: false };
  body(f);
  f.e.assign(f.c);
}

/** Answers the order's source: an app through the terminal, or a POS over the near link. */
export function deliverResponse(e: Enqueue, order: PaymentOrder, response: ProxyResponse): void {
  if (order.source.kind === 'pos') e.sendTo('nearLink', { type: 'near.send', to: order.source.posId, response });
  else e.sendParent({ type: 'proxy.response', appId: order.source.appId, order, response });
}

/** Sends a request to the SD that serves the shard of `meansId`. */
export function sendToServer(e: Enqueue, context: ProxyContext, meansId: string, message: ServerRequest): void {
  e.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(meansId, context.input.shardCount)), message });
}

export function isResult(message: LinkMessage): message is ServerResult {
  return message.kind === 'result';
}

// A result is looked at by the remote-result guard and by the outbox; the verdict is cached per message object
// so it is verified once.
const authenticity = new WeakMap<ServerResult, boolean>();

/** [INV-6 signatures] Only results signed by SD and addressed to this proxy are acted on. */
export function isAuthentic(context: ProxyContext, result: ServerResult): boolean {
  let verdict = authenticity.get(result);
  if (verdict === undefined) {
    verdict = result.to === context.input.proxyId && verifyResult(context.input.scheme, context.input.serverPublicKey, result);
    authenticity.set(result, verdict);
  }
  return verdict;
}

/**
 * Where the order in hand stands: none (`idle`), waiting for the user's answer (`awaitingUser`), or sent to SD
 * and waiting for its result (`awaitingRemote`). It is read from the context — `current` and `remote` already
 * say it — rather than kept as a state of its own, so it can never disagree with them.
 */
export type OrderStage = 'idle' | 'awaitingUser' | 'awaitingRemote';

export function orderStageOf(context: ProxyContext): OrderStage {
  if (context.current === undefined) return 'idle';
  return context.remote === undefined ? 'awaitingUser' : 'awaitingRemote';
}

export type ProxyEventType = ProxyEvent['type'];
export type ProxyEventOf<K extends ProxyEventType> = Extract<ProxyEvent, { type: K }>;

/**
 * One row of a step table: the events that run the step, the stage of the order in hand it runs at (for the
 * steps of the order flow), and its work on the flow. The machine's guards route each event to its step;
 * `runStep` checks the row agrees, so a table and the machine cannot drift apart unnoticed.
 */
export interface Step<K extends ProxyEventType> {
  on: readonly K[];
  stage?: OrderStage;
  run(f: Flow, event: ProxyEventOf<K>): void;
}

/** Declares a step; `K`, the events it takes, is inferred from `on`, and types the event `run` receives. */
export function step<K extends ProxyEventType>(row: Step<K>): Step<K> {
  return row;
}

function isTakenBy<K extends ProxyEventType>(row: Step<K>, event: ProxyEvent): event is ProxyEventOf<K> {
  return row.on.some((type) => type === event.type);
}

/** Runs one step for one event and stores the context it leaves. */
export function runStep<K extends ProxyEventType>(row: Step<K>, context: ProxyContext, event: ProxyEvent, enqueue: Enqueue): void {
  if (!isTakenBy(row, event)) throw new Error(`proxy: a step for ${row.on.join('|')} was run for ${event.type}`);
  if (row.stage !== undefined && orderStageOf(context) !== row.stage) {
    throw new Error(`proxy: a ${row.stage} step was run for ${event.type} with the order ${orderStageOf(context)}`);
  }
  runFlow(context, enqueue, (f) => row.run(f, event));
}
