// Goal: PP, the payment proxy — the XState machine that takes every payment order from the terminal's apps
// or from a POS over the near link, confirms it with the user, discriminates, pays locally or remotely, answers
// with a signed proof, and remits local transactions to SD until they are acknowledged.
// Method: two states, `offline` and `online`, follow the link; everything else is context. The order flow
// (one order at a time, others queue: confirmation → decision → remote wait → response) is read from
// `current` and `remote`, which already say where an order stands, and the outbox keeps one timer, armed for the
// earliest due item (or the date trigger) and re-armed whenever the outbox may have changed. Each event is
// handled in one transition whose action runs the whole flow, so XState does one microstep per event instead of
// a chain of eventless steps and raised events; the order of every send, emit and timer is the one the flow
// implies. All rules are the pure functions of domain/proxyRules.ts; all I/O goes through the `link` (MC) and
// `nearLink` (ICP) children; time comes from `input.now()` and XState delays.

import { assign, emit, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { LinkCommand, LinkEvent, LinkInput, NearLinkCommand, NearLinkEvent } from './link.ts';
import { serverAddress, shardOf } from './link.ts';
import type { LinkMessage, PaymentOrder, Proof, ProxyResponse, ServerResult } from './messages.ts';
import { checkPin, isPinBlocked, requiredConfirmation, type ConfirmationKind } from './domain/confirmation.ts';
import {
  applyAcknowledgement,
  applyBalances,
  completeRemote,
  decideOrder,
  decline,
  initialProxyState,
  previousResponse,
  requestSigner,
  reverseInFlight,
  syncRequests,
  type ProxyPolicy,
  type ProxyState,
  type RemotePayment,
} from './domain/proxyRules.ts';
import { dueItems, expediteAll, formRemittances, isRemittanceDue, markSent, nextDueMs, type RemittanceTrigger } from './domain/remittance.ts';
import { verifyResult } from './domain/requests.ts';
import type { MeansState } from './domain/means.ts';
import type { SignatureScheme, SigningKey } from './domain/signature.ts';

export interface ProxyInput {
  proxyId: string;
  policy: ProxyPolicy;
  /** CP, the proxy's private key, held by the secure element. */
  key: SigningKey;
  /** SD's public key, to check the signature of every result. */
  serverPublicKey: string;
  scheme: SignatureScheme;
  shardCount: number;
  /** The user's PIN, as the secure element holds it. */
  pin: string;
  means: MeansState[];
  /** State restored after a crash or a SIM move; otherwise a fresh state is made from `means`. */
  restored?: ProxyState;
  inCoverage: boolean;
  now: () => number;
  /** How long the user has to answer a confirmation. */
  confirmTimeoutMs?: number;
  /** How many orders may wait while one is processed. */
  maxQueuedOrders?: number;
}

export interface QueuedOrder {
  order: PaymentOrder;
  receivedAtMs: number;
}

export interface ProxyContext {
  input: Omit<ProxyInput, 'restored' | 'means'>;
  state: ProxyState;
  linkUp: boolean;
  current?: QueuedOrder & { confirmation: ConfirmationKind };
  queue: QueuedOrder[];
  remote?: RemotePayment;
  /** Results refused because their server signature did not verify [INV-6]. */
  refusedResults: number;
}

export type ProxyEvent =
  | { type: 'order'; order: PaymentOrder }
  | { type: 'confirm.answer'; orderId: string; approved: boolean; pin?: string }
  | { type: 'coverage'; inCoverage: boolean }
  | { type: 'remit.now' }
  | ProxyTimerEvent
  | LinkEvent
  | NearLinkEvent;

/** The delayed events the proxy raises to itself: its timers. */
export type ProxyTimerEvent =
  | { type: 'orders.confirmTimeout' }
  | { type: 'orders.remoteResend' }
  | { type: 'orders.remoteTimeout' }
  | { type: 'outbox.due' }
  | { type: 'outbox.remitSchedule' };

/** What the proxy tells the harness; none of it changes the proxy. */
export type ProxyEmitted =
  /**
   * `receivedAtMs`: the order reached the proxy; `startedAtMs`: the decision began (after the user answered), so
   * `decidedAtMs − startedAtMs` is the authorisation latency without the user's think time.
   */
  | {
      type: 'proxy.decided';
      order: PaymentOrder;
      response: ProxyResponse;
      path: string;
      receivedAtMs: number;
      startedAtMs: number;
      decidedAtMs: number;
      /** The order's means right after this decision (undefined for an unknown means). */
      means: MeansState | undefined;
    }
  | { type: 'proxy.remitted'; txs: Proof[]; reqId: string; ackAtMs: number }
  | { type: 'proxy.acknowledged'; reqId: string; requestKind: string; ackAtMs: number }
  | { type: 'proxy.refused'; reason: string }
  | { type: 'proxy.inform'; orderId: string; amountMinor: number; payee: string };

const DEFAULT_CONFIRM_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_QUEUED = 16;

/** A link that never connects: the default until a real one is provided. */
const disconnectedLink = fromCallback<LinkCommand, LinkInput>(() => undefined);
const disconnectedNearLink = fromCallback<NearLinkCommand, { endpointId: string }>(() => undefined);

function isResult(message: LinkMessage): message is ServerResult {
  return message.kind === 'result';
}

// A result is looked at by the remote-result guard and by the outbox; the verdict is cached per message object
// so it is verified once.
const authenticity = new WeakMap<ServerResult, boolean>();

/** [INV-6 signatures] Only results signed by SD and addressed to this proxy are acted on. */
function isAuthentic(context: ProxyContext, result: ServerResult): boolean {
  let verdict = authenticity.get(result);
  if (verdict === undefined) {
    verdict = result.to === context.input.proxyId && verifyResult(context.input.scheme, context.input.serverPublicKey, result);
    authenticity.set(result, verdict);
  }
  return verdict;
}

/**
 * The timers' ids. XState keeps one pending timer per id, so each is armed again only after it fired or was
 * cancelled; the outbox's two timers (next due item, date trigger) share one id because at most one runs.
 */
type TimerId = 'orders.confirmTimeout' | 'orders.remoteResend' | 'orders.remoteTimeout' | 'outbox.timer';

/** The subset of XState's `enqueue` the flow below uses (it runs inside `enqueueActions`). */
interface Enqueue {
  assign(values: Partial<ProxyContext>): void;
  sendTo(actorId: 'link' | 'nearLink', event: LinkCommand | NearLinkCommand): void;
  sendParent(event: { type: string; [key: string]: unknown }): void;
  emit(event: ProxyEmitted): void;
  raise(event: ProxyTimerEvent, options: { id: TimerId; delay: number }): void;
  cancel(id: TimerId): void;
}

/**
 * One event's work. The helpers read and replace the fields of a draft of the context and enqueue their sends,
 * emits and timers in the order the flow runs them; `runFlow` stores the draft with one `assign` at the end. The
 * enqueued actions carry values computed here, so where the `assign` sits among them changes nothing.
 */
interface Flow {
  c: ProxyContext;
  e: Enqueue;
  /** The outbox may have changed: its timer is re-armed at the end of the event (only while online). */
  outboxChanged: boolean;
}

function runFlow(context: ProxyContext, enqueue: unknown, body: (f: Flow) => void): void {
  const f: Flow = { c: { ...context }, e: enqueue as Enqueue, outboxChanged: false };
  body(f);
  f.e.assign(f.c);
}

/** Answers the order's source: an app through the terminal, or a POS over the near link. */
function deliverResponse(e: Enqueue, order: PaymentOrder, response: ProxyResponse): void {
  if (order.source.kind === 'pos') e.sendTo('nearLink', { type: 'near.send', to: order.source.posId, response });
  else e.sendParent({ type: 'proxy.response', appId: order.source.appId, order, response });
}

/**
 * Answers the order and tells the harness. The event carries the means as this decision left it, because
 * emitted events are delivered after the whole macrostep, when a queued order may already have changed it.
 */
function finishOrder(f: Flow, current: QueuedOrder, response: ProxyResponse, path: string, nowMs: number, startedAtMs = nowMs): void {
  deliverResponse(f.e, current.order, response);
  f.e.emit({
    type: 'proxy.decided',
    order: current.order,
    response,
    path,
    receivedAtMs: current.receivedAtMs,
    startedAtMs,
    decidedAtMs: nowMs,
    means: f.c.state.means[current.order.meansId],
  });
}

/** Ends the current order with a decline that never reached the payment rules (user, PIN, timeout). */
function declineCurrent(f: Flow, reason: string): void {
  const current = f.c.current!;
  const { state, response } = decline(f.c.state, current.order.orderId, reason);
  f.c.state = state;
  f.c.current = undefined;
  finishOrder(f, current, response, 'none', f.c.input.now());
}

function sendRemote(f: Flow): void {
  const remote = f.c.remote!;
  f.e.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(remote.claim.meansId, f.c.input.shardCount)), message: remote.request });
}

/** Forms remittances from the pending journal when the trigger says so. */
function triggerRemittance(f: Flow, trigger: RemittanceTrigger): void {
  const c = f.c;
  if (!c.linkUp || !isRemittanceDue(c.state.journal, trigger, c.input.policy.remittance)) return;
  const signer = requestSigner(c.state.proxyId, c.input.key);
  c.state = { ...c.state, journal: formRemittances(c.state.journal, c.input.policy.remittance, signer, c.input.now()) };
  f.outboxChanged = true;
}

/** Asks the user to approve the current order, and gives them `confirmTimeoutMs` to answer. */
function askUser(f: Flow): void {
  const current = f.c.current!;
  f.e.sendParent({ type: 'proxy.confirm', orderId: current.order.orderId, kind: current.confirmation, amountMinor: current.order.amountMinor, payee: current.order.payee });
  f.e.raise({ type: 'orders.confirmTimeout' }, { id: 'orders.confirmTimeout', delay: f.c.input.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS });
}

/**
 * Steps B–D: decides the current order. A local or declined order is answered at once; a remote payment is
 * sent and awaited, with a timeout and, a few times before it, a resend.
 */
function decideCurrent(f: Flow): void {
  const c = f.c;
  const current = c.current!;
  const now = c.input.now();
  const decision = decideOrder(c.state, c.input.policy, current.order, { inCoverage: c.linkUp, nowMs: now, key: c.input.key });
  if (decision.kind === 'remote') {
    // The decision wrote the payment ahead into the persisted state, so a restored proxy can reverse it.
    c.state = decision.state;
    c.remote = decision.remote;
    sendRemote(f);
    const timeoutMs = c.input.policy.remoteTimeoutMs;
    f.e.raise({ type: 'orders.remoteTimeout' }, { id: 'orders.remoteTimeout', delay: timeoutMs });
    // A lost request is resent a few times before the timeout gives up on it.
    f.e.raise({ type: 'orders.remoteResend' }, { id: 'orders.remoteResend', delay: remoteResendMs(timeoutMs) });
    return;
  }
  c.state = decision.state;
  c.current = undefined;
  finishOrder(f, current, decision.response, decision.kind === 'approvedLocal' ? decision.path : 'declined', now);
  if (decision.kind === 'approvedLocal') {
    triggerRemittance(f, 'backlog');
    f.outboxChanged = true;
  }
}

function remoteResendMs(remoteTimeoutMs: number): number {
  return Math.max(1, Math.floor(remoteTimeoutMs / 4));
}

/**
 * Takes queued orders while no order is in hand: each is declined at once (blocked PIN), shown to the user
 * (who must approve: the flow stops there), or decided — locally, and the next one is taken, or remotely, and
 * the flow stops until SD answers.
 */
function startQueuedOrders(f: Flow): void {
  const c = f.c;
  while (c.current === undefined && c.queue.length > 0) {
    const [next, ...rest] = c.queue;
    c.queue = rest;
    const confirmation = requiredConfirmation(next!.order, c.input.policy.confirmation);
    c.current = { ...next!, confirmation };
    if (isPinBlocked(c.state.pin)) declineCurrent(f, 'pinBlocked');
    else if (confirmation !== 'none' && confirmation !== 'inform') askUser(f);
    else {
      f.e.emit({ type: 'proxy.inform', orderId: next!.order.orderId, amountMinor: next!.order.amountMinor, payee: next!.order.payee });
      decideCurrent(f);
    }
  }
}

/**
 * Re-arms the outbox timer after a change: for the earliest due item, else for the date trigger while payments
 * wait, else none. Offline there is no timer; `reconnect` arms it when the link comes back. It is re-armed
 * whenever the outbox may have changed, even when its due time stays the same, because a timer armed later runs
 * after the others due at the same instant: re-arming less often would reorder events of a virtual run.
 */
function settleOutbox(f: Flow, { cancel }: { cancel: boolean } = { cancel: true }): void {
  const c = f.c;
  if (!f.outboxChanged || !c.linkUp) return;
  f.outboxChanged = false;
  if (cancel) f.e.cancel('outbox.timer');
  const journal = c.state.journal;
  const now = c.input.now();
  if (journal.outbox.length > 0) {
    f.e.raise({ type: 'outbox.due' }, { id: 'outbox.timer', delay: Math.max(0, (nextDueMs(journal) ?? now) - now) });
    return;
  }
  const everyMs = c.input.policy.remittance.triggers.everyMs;
  // The date trigger only runs while something waits, so idle proxies cost no timer events. It counts from the
  // oldest pending payment, not from the last re-arm: re-armed at every payment, a delay restarted each time would
  // never fire while payments keep coming.
  const oldest = journal.pending[0];
  if (everyMs !== null && oldest !== undefined) {
    f.e.raise({ type: 'outbox.remitSchedule' }, { id: 'outbox.timer', delay: Math.max(0, oldest.timeMs + everyMs - now) });
  }
}

/** A result for an outbox item or a sync, or SD's request to remit; forged results are refused. */
function handleServerMessage(f: Flow, message: LinkMessage): void {
  const c = f.c;
  if (message.kind === 'remitNow') return triggerRemittance(f, 'serverRequest');
  if (!isResult(message)) return;
  if (!isAuthentic(c, message)) {
    c.refusedResults += 1;
    f.e.emit({ type: 'proxy.refused', reason: 'badServerSignature' });
    return;
  }
  if (message.requestKind === 'sync') {
    c.state = applyBalances(c.state, message.balances);
    return;
  }
  const applied = applyAcknowledgement(c.state, message);
  c.state = applied.state;
  if (applied.refused) {
    f.e.emit({ type: 'proxy.refused', reason: `outboxRefused:${message.requestKind}:${applied.refused.code}` });
    f.outboxChanged = true;
  }
  if (!applied.known) return;
  const now = c.input.now();
  if (message.requestKind === 'remit') f.e.emit({ type: 'proxy.remitted', txs: applied.remitted, reqId: message.reqId, ackAtMs: now });
  else f.e.emit({ type: 'proxy.acknowledged', reqId: message.reqId, requestKind: message.requestKind, ackAtMs: now });
  f.outboxChanged = true;
}

export const proxyMachine = setup({
  types: {
    context: {} as ProxyContext,
    events: {} as ProxyEvent,
    input: {} as ProxyInput,
    emitted: {} as ProxyEmitted,
  },
  actors: { link: disconnectedLink, nearLink: disconnectedNearLink },
  guards: {
    // A POS's order repeated by the near link is answered from the history too, so it cannot be paid twice.
    isAnsweredOrder: ({ context, event }) =>
      (event.type === 'order' || event.type === 'near.order') && previousResponse(context.state, event.order.orderId) !== undefined,
    // An order repeated while the first copy is still being handled is dropped: its answer is on its way.
    isOrderInProgress: ({ context, event }) =>
      (event.type === 'order' || event.type === 'near.order') &&
      (context.current?.order.orderId === event.order.orderId || context.queue.some((q) => q.order.orderId === event.order.orderId)),
    isQueueFull: ({ context }) => context.queue.length >= (context.input.maxQueuedOrders ?? DEFAULT_MAX_QUEUED),
    // Where the order in hand stands: none, waiting for the user, or waiting for SD.
    isIdle: ({ context }) => context.current === undefined,
    isAwaitingUser: ({ context }) => context.current !== undefined && context.remote === undefined,
    isAwaitingRemote: ({ context }) => context.remote !== undefined,
    isAnswerForCurrent: ({ context, event }) =>
      event.type === 'confirm.answer' && context.remote === undefined && event.orderId === context.current?.order.orderId,
    isRemoteResult: ({ context, event }) =>
      event.type === 'link.message' &&
      isResult(event.message) &&
      event.message.reqId === context.remote?.request.reqId &&
      isAuthentic(context, event.message),
  },
  actions: {
    /** Tells the link about radio coverage; the link answers with link.up / link.down. */
    forwardCoverage: sendTo('link', ({ event }) => ({ type: 'link.coverage', inCoverage: (event as { inCoverage: boolean }).inCoverage }) as LinkCommand),
    enqueueOrder: assign({
      queue: ({ context, event }) => [...context.queue, { order: (event as { order: PaymentOrder }).order, receivedAtMs: context.input.now() }],
    }),
    /** No order in hand: the new one is taken at once. */
    startOrder: enqueueActions(({ context, event, enqueue }) =>
      runFlow(context, enqueue, (f) => {
        if (event.type !== 'order' && event.type !== 'near.order') return;
        f.c.queue = [...f.c.queue, { order: event.order, receivedAtMs: f.c.input.now() }];
        startQueuedOrders(f);
        settleOutbox(f);
      }),
    ),
    replayPreviousResponse: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'order' && event.type !== 'near.order') return;
      const response = previousResponse(context.state, event.order.orderId);
      if (response) deliverResponse(enqueue as unknown as Enqueue, event.order, response);
    }),
    refuseBusy: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'order' && event.type !== 'near.order') return;
      deliverResponse(enqueue as unknown as Enqueue, event.order, { orderId: event.order.orderId, ok: false, reason: 'busy' });
    }),
    /** Checks the user's answer; a refusal, a wrong PIN or a blocked PIN ends the order, an approval decides it. */
    applyAnswer: enqueueActions(({ context, event, enqueue }) =>
      runFlow(context, enqueue, (f) => {
        if (event.type !== 'confirm.answer') return;
        const c = f.c;
        const current = c.current!;
        f.e.cancel('orders.confirmTimeout');
        if (!event.approved) declineCurrent(f, 'userDeclined');
        else if (current.confirmation !== 'pin') c.current = { ...current, confirmation: 'none' };
        else {
          const check = checkPin(c.state.pin, event.pin ?? '', c.input.pin);
          c.state = { ...c.state, pin: check.counter };
          if (check.result === 'ok') c.current = { ...current, confirmation: 'none' };
          else declineCurrent(f, check.result === 'blocked' ? 'pinBlocked' : 'wrongPin');
        }
        if (c.current !== undefined) decideCurrent(f);
        startQueuedOrders(f);
        settleOutbox(f);
      }),
    ),
    declineUnanswered: enqueueActions(({ context, enqueue }) =>
      runFlow(context, enqueue, (f) => {
        declineCurrent(f, 'confirmationTimeout');
        startQueuedOrders(f);
        settleOutbox(f);
      }),
    ),
    /** SD answered the remote payment; online, the outbox sees the result too (it may carry balances). */
    completeRemote: enqueueActions(({ context, event, enqueue }, params: { online: boolean }) =>
      runFlow(context, enqueue, (f) => {
        if (event.type !== 'link.message' || !isResult(event.message)) return;
        const c = f.c;
        const current = c.current!;
        const remote = c.remote!;
        const now = c.input.now();
        f.e.cancel('orders.remoteResend');
        f.e.cancel('orders.remoteTimeout');
        const done = completeRemote(c.state, remote, event.message, { nowMs: now, key: c.input.key });
        c.state = done.state;
        c.remote = undefined;
        c.current = undefined;
        finishOrder(f, current, done.response, done.approved ? 'remote' : 'declined', now, remote.startedAtMs);
        // Talking to SD anyway: the backlog goes along (the patent's "triggered by another payment").
        triggerRemittance(f, 'payment');
        f.outboxChanged = true;
        if (params.online) handleServerMessage(f, event.message);
        startQueuedOrders(f);
        settleOutbox(f);
      }),
    ),
    /** The timer re-arms even while the link is down (the resend is then skipped), so a request lost before a coverage gap is still resent. */
    resendRemote: enqueueActions(({ context, enqueue }) => {
      const e = enqueue as unknown as Enqueue;
      const remote = context.remote!;
      if (context.linkUp) e.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(remote.claim.meansId, context.input.shardCount)), message: remote.request });
      e.raise({ type: 'orders.remoteResend' }, { id: 'orders.remoteResend', delay: remoteResendMs(context.input.policy.remoteTimeoutMs) });
    }),
    /** No answer in time: decline, and queue a reversal so a late debit or hold at SD is undone. */
    abandonRemote: enqueueActions(({ context, enqueue }) =>
      runFlow(context, enqueue, (f) => {
        const c = f.c;
        const current = c.current!;
        const startedAtMs = c.remote!.startedAtMs;
        const now = c.input.now();
        f.e.cancel('orders.remoteResend');
        const reversed = reverseInFlight(c.state, c.input.key, now);
        const { state, response } = decline(reversed, current.order.orderId, 'remoteTimeout');
        c.state = state;
        c.remote = undefined;
        c.current = undefined;
        finishOrder(f, current, response, 'declined', now, startedAtMs);
        f.outboxChanged = true;
        startQueuedOrders(f);
        settleOutbox(f);
      }),
    ),
    /** Coverage is back: resend at once, remit the backlog, ask SD for fresh balances, and arm the outbox timer. */
    reconnect: enqueueActions(({ context, enqueue }) =>
      runFlow(context, enqueue, (f) => {
        const c = f.c;
        c.linkUp = true;
        // Sync request ids come from the journal's persisted sequence: a counter that restarted with the machine
        // would reuse the ids of syncs made before a crash, and SD would answer them with its stored, stale figures.
        const seq = c.state.journal.nextSeq;
        const state = { ...c.state, journal: { ...expediteAll(c.state.journal, c.input.now()), nextSeq: seq + 1 } };
        c.state = state;
        triggerRemittance(f, 'coverageRegained');
        for (const request of syncRequests(state, c.input.key, seq)) {
          f.e.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(request.meansId, c.input.shardCount)), message: request });
        }
        f.outboxChanged = true;
        settleOutbox(f);
      }),
    ),
    /** Coverage is lost: the outbox waits for the link (its items keep their retry schedule). */
    disconnect: enqueueActions(({ enqueue }) => {
      enqueue.assign({ linkUp: false });
      enqueue.cancel('outbox.timer');
    }),
    handleServerMessage: enqueueActions(({ context, event, enqueue }) =>
      runFlow(context, enqueue, (f) => {
        if (event.type !== 'link.message') return;
        handleServerMessage(f, event.message);
        settleOutbox(f);
      }),
    ),
    /** Sends every due outbox item once, schedules its retry, and re-arms the timer. */
    flushOutbox: enqueueActions(({ context, enqueue }) =>
      runFlow(context, enqueue, (f) => {
        const c = f.c;
        const now = c.input.now();
        const due = dueItems(c.state.journal, now);
        for (const item of due) {
          f.e.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(item.meansId, c.input.shardCount)), message: item.request });
        }
        c.state = { ...c.state, journal: markSent(c.state.journal, due.map((i) => i.reqId), c.input.policy.remittance.retry, now) };
        f.outboxChanged = true;
        settleOutbox(f, { cancel: false });
      }),
    ),
    triggerRemittance: enqueueActions(({ context, enqueue }, params: { trigger: RemittanceTrigger }) =>
      runFlow(context, enqueue, (f) => {
        triggerRemittance(f, params.trigger);
        // The date trigger's timer has fired: the outbox timer is re-armed whatever the remittance did.
        if (params.trigger === 'schedule') f.outboxChanged = true;
        settleOutbox(f, { cancel: params.trigger !== 'schedule' });
      }),
    ),
    emitRefusal: emit(({ event }) => ({ type: 'proxy.refused' as const, reason: (event as { reason: string }).reason })),
  },
}).createMachine({
  id: 'proxy',
  context: ({ input }) => {
    const { restored, means, ...rest } = input;
    // A payment in flight at the crash never got its answer to the app: reverse it at SD.
    const state = reverseInFlight(restored ?? initialProxyState(input.proxyId, means, input.policy), input.key, input.now());
    return { input: rest, state, linkUp: false, queue: [], refusedResults: 0 };
  },
  invoke: [
    { src: 'link', id: 'link', input: ({ context }) => ({ endpointId: context.input.proxyId, role: 'terminal' as const, inCoverage: context.input.inCoverage }) },
    { src: 'nearLink', id: 'nearLink', input: ({ context }) => ({ endpointId: context.input.proxyId }) },
  ],
  on: {
    coverage: { actions: 'forwardCoverage' },
    'link.rejected': { actions: 'emitRefusal' },
    'remit.now': { actions: { type: 'triggerRemittance', params: { trigger: 'serverRequest' } } },
    order: [
      { guard: 'isAnsweredOrder', actions: 'replayPreviousResponse' },
      { guard: 'isOrderInProgress' },
      { guard: 'isQueueFull', actions: 'refuseBusy' },
      { guard: 'isIdle', actions: 'startOrder' },
      { actions: 'enqueueOrder' },
    ],
    'near.order': [
      { guard: 'isAnsweredOrder', actions: 'replayPreviousResponse' },
      { guard: 'isOrderInProgress' },
      { guard: 'isQueueFull', actions: 'refuseBusy' },
      { guard: 'isIdle', actions: 'startOrder' },
      { actions: 'enqueueOrder' },
    ],
    'confirm.answer': { guard: 'isAnswerForCurrent', actions: 'applyAnswer' },
    'orders.confirmTimeout': { guard: 'isAwaitingUser', actions: 'declineUnanswered' },
    'orders.remoteResend': { guard: 'isAwaitingRemote', actions: 'resendRemote' },
    'orders.remoteTimeout': { guard: 'isAwaitingRemote', actions: 'abandonRemote' },
  },
  // `online` and `context.linkUp` go together: the decision rules read coverage from the context.
  initial: 'offline',
  states: {
    offline: {
      on: {
        'link.up': { target: 'online', actions: 'reconnect' },
        'link.message': { guard: 'isRemoteResult', actions: { type: 'completeRemote', params: { online: false } } },
      },
    },
    online: {
      on: {
        'link.up': { actions: 'reconnect' },
        'link.down': { target: 'offline', actions: 'disconnect' },
        'link.message': [
          { guard: 'isRemoteResult', actions: { type: 'completeRemote', params: { online: true } } },
          { actions: 'handleServerMessage' },
        ],
        'outbox.due': { actions: 'flushOutbox' },
        'outbox.remitSchedule': { actions: { type: 'triggerRemittance', params: { trigger: 'schedule' } } },
      },
    },
  },
});
