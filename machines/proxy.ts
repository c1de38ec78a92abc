// Goal: PP, the payment proxy — the XState machine that takes every payment order from the terminal's apps
// or from a POS over the near link, confirms it with the user, discriminates, pays locally or remotely, answers
// with a signed proof, and remits local transactions to SD until they are acknowledged.
// Method: two parallel regions. `orders` handles one order at a time (others queue): confirmation → decision
// → (remote wait) → response. `outbox` keeps sending due remittances and captures while the link is up, on a
// timer armed for the earliest due item. All rules are the pure functions of domain/proxyRules.ts; all I/O goes
// through the `link` (MC) and `nearLink` (ICP) children; time comes from `input.now()` and XState delays.

import { assign, emit, enqueueActions, fromCallback, raise, sendParent, sendTo, setup } from 'xstate';
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
  | { type: 'outbox.changed' }
  | LinkEvent
  | NearLinkEvent;

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

// Both regions see each incoming result; the verdict is cached per message object so it is verified once.
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


/** The subset of XState's `enqueue` the helpers below use (they run inside `enqueueActions`). */
interface Enqueue {
  assign(values: Partial<ProxyContext>): void;
  sendTo(actorId: 'link' | 'nearLink', event: LinkCommand | NearLinkCommand): void;
  sendParent(event: { type: string; [key: string]: unknown }): void;
  emit(event: ProxyEmitted): void;
  raise(event: ProxyEvent): void;
}

function enq(enqueue: unknown): Enqueue {
  return enqueue as Enqueue;
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
function finishOrder(state: ProxyState, e: Enqueue, current: QueuedOrder, response: ProxyResponse, path: string, nowMs: number, startedAtMs = nowMs): void {
  deliverResponse(e, current.order, response);
  e.emit({
    type: 'proxy.decided',
    order: current.order,
    response,
    path,
    receivedAtMs: current.receivedAtMs,
    startedAtMs,
    decidedAtMs: nowMs,
    means: state.means[current.order.meansId],
  });
}

/** Ends the current order with a decline that never reached the payment rules (user, PIN, timeout). */
function declineCurrent(context: ProxyContext, e: Enqueue, reason: string): void {
  const current = context.current!;
  const { state, response } = decline(context.state, current.order.orderId, reason);
  e.assign({ state, current: undefined });
  finishOrder(state, e, current, response, 'none', context.input.now());
}

function sendRemote(context: ProxyContext, e: Enqueue): void {
  const remote = context.remote!;
  e.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(remote.claim.meansId, context.input.shardCount)), message: remote.request });
}

/** Forms remittances from the pending journal when the trigger says so. */
function triggerRemittance(context: ProxyContext, e: Enqueue, trigger: RemittanceTrigger): void {
  if (!context.linkUp || !isRemittanceDue(context.state.journal, trigger, context.input.policy.remittance)) return;
  const signer = requestSigner(context.state.proxyId, context.input.key);
  e.assign({ state: { ...context.state, journal: formRemittances(context.state.journal, context.input.policy.remittance, signer, context.input.now()) } });
  e.raise({ type: 'outbox.changed' });
}

export const proxyMachine = setup({
  types: {
    context: {} as ProxyContext,
    events: {} as ProxyEvent,
    input: {} as ProxyInput,
    emitted: {} as ProxyEmitted,
  },
  actors: { link: disconnectedLink, nearLink: disconnectedNearLink },
  delays: {
    confirmTimeout: ({ context }) => context.input.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS,
    remoteTimeout: ({ context }) => context.input.policy.remoteTimeoutMs,
    // A lost request is resent a few times before the timeout gives up on it.
    remoteResend: ({ context }) => Math.max(1, Math.floor(context.input.policy.remoteTimeoutMs / 4)),
    outboxDue: ({ context }) => Math.max(0, (nextDueMs(context.state.journal) ?? context.input.now()) - context.input.now()),
    // Counted from the oldest pending payment, not from entering `scheduled`: that state is re-entered at every
    // payment, and a delay restarted each time would never fire while payments keep coming.
    remitSchedule: ({ context }) => {
      const oldest = context.state.journal.pending[0];
      const everyMs = context.input.policy.remittance.triggers.everyMs ?? 0;
      return oldest === undefined ? everyMs : Math.max(0, oldest.timeMs + everyMs - context.input.now());
    },
  },
  guards: {
    // A POS's order repeated by the near link is answered from the history too, so it cannot be paid twice.
    isAnsweredOrder: ({ context, event }) =>
      (event.type === 'order' || event.type === 'near.order') && previousResponse(context.state, event.order.orderId) !== undefined,
    // An order repeated while the first copy is still being handled is dropped: its answer is on its way.
    isOrderInProgress: ({ context, event }) =>
      (event.type === 'order' || event.type === 'near.order') &&
      (context.current?.order.orderId === event.order.orderId || context.queue.some((q) => q.order.orderId === event.order.orderId)),
    isQueueFull: ({ context }) => context.queue.length >= (context.input.maxQueuedOrders ?? DEFAULT_MAX_QUEUED),
    hasQueuedOrder: ({ context }) => context.queue.length > 0,
    isPinBlocked: ({ context }) => isPinBlocked(context.state.pin),
    needsConfirmation: ({ context }) => context.current !== undefined && context.current.confirmation !== 'none' && context.current.confirmation !== 'inform',
    isAnswerForCurrent: ({ context, event }) => event.type === 'confirm.answer' && event.orderId === context.current?.order.orderId,
    isRemoteResult: ({ context, event }) =>
      event.type === 'link.message' &&
      isResult(event.message) &&
      event.message.reqId === context.remote?.request.reqId &&
      isAuthentic(context, event.message),
    isLinkUp: ({ context }) => context.linkUp,
    hasOutbox: ({ context }) => context.state.journal.outbox.length > 0,
    hasPending: ({ context }) => context.state.journal.pending.length > 0,
    // The date trigger only runs while something waits, so idle proxies cost no timer events.
    isScheduleArmed: ({ context }) => context.input.policy.remittance.triggers.everyMs !== null && context.state.journal.pending.length > 0,
  },
  actions: {
    /** Tells the link about radio coverage; the link answers with link.up / link.down. */
    forwardCoverage: sendTo('link', ({ event }) => ({ type: 'link.coverage', inCoverage: (event as { inCoverage: boolean }).inCoverage }) as LinkCommand),
    markLinkUp: assign({ linkUp: true }),
    markLinkDown: assign({ linkUp: false }),
    enqueueOrder: assign({
      queue: ({ context, event }) => [...context.queue, { order: (event as { order: PaymentOrder }).order, receivedAtMs: context.input.now() }],
    }),
    replayPreviousResponse: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'order' && event.type !== 'near.order') return;
      const response = previousResponse(context.state, event.order.orderId);
      if (response) deliverResponse(enq(enqueue), event.order, response);
    }),
    refuseBusy: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'order' && event.type !== 'near.order') return;
      deliverResponse(enq(enqueue), event.order, { orderId: event.order.orderId, ok: false, reason: 'busy' });
    }),
    takeNextOrder: assign(({ context }) => {
      const [next, ...rest] = context.queue;
      if (!next) return {};
      return { queue: rest, current: { ...next, confirmation: requiredConfirmation(next.order, context.input.policy.confirmation) } };
    }),
    askUser: sendParent(({ context }) => ({
      type: 'proxy.confirm',
      orderId: context.current!.order.orderId,
      kind: context.current!.confirmation,
      amountMinor: context.current!.order.amountMinor,
      payee: context.current!.order.payee,
    })),
    informUser: emit(({ context }) => ({
      type: 'proxy.inform' as const,
      orderId: context.current!.order.orderId,
      amountMinor: context.current!.order.amountMinor,
      payee: context.current!.order.payee,
    })),
    declineCurrent: enqueueActions(({ context, enqueue }, params: { reason: string }) => declineCurrent(context, enq(enqueue), params.reason)),
    /** Checks the user's answer; a refusal, a wrong PIN or a blocked PIN ends the order. */
    applyAnswer: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'confirm.answer') return;
      const current = context.current!;
      if (!event.approved) return declineCurrent(context, enq(enqueue), 'userDeclined');
      if (current.confirmation !== 'pin') return enqueue.assign({ current: { ...current, confirmation: 'none' } });
      const check = checkPin(context.state.pin, event.pin ?? '', context.input.pin);
      const withCounter = { ...context, state: { ...context.state, pin: check.counter } };
      if (check.result === 'ok') return enqueue.assign({ state: withCounter.state, current: { ...current, confirmation: 'none' } });
      declineCurrent(withCounter, enq(enqueue), check.result === 'blocked' ? 'pinBlocked' : 'wrongPin');
    }),
    /** Steps B–D: decides the current order; a remote payment is sent and awaited. */
    decideCurrent: enqueueActions(({ context, enqueue }) => {
      const current = context.current!;
      const now = context.input.now();
      const decision = decideOrder(context.state, context.input.policy, current.order, { inCoverage: context.linkUp, nowMs: now, key: context.input.key });
      const e = enq(enqueue);
      if (decision.kind === 'remote') {
        // The decision wrote the payment ahead into the persisted state, so a restored proxy can reverse it.
        e.assign({ state: decision.state, remote: decision.remote });
        sendRemote({ ...context, remote: decision.remote }, e);
        return;
      }
      e.assign({ state: decision.state, current: undefined });
      finishOrder(decision.state, e, current, decision.response, decision.kind === 'approvedLocal' ? decision.path : 'declined', now);
      if (decision.kind === 'approvedLocal') {
        triggerRemittance({ ...context, state: decision.state }, e, 'backlog');
        e.raise({ type: 'outbox.changed' });
      }
    }),
    resendRemote: enqueueActions(({ context, enqueue }) => {
      if (context.linkUp) sendRemote(context, enq(enqueue));
    }),
    completeRemote: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'link.message' || !isResult(event.message)) return;
      const current = context.current!;
      const now = context.input.now();
      const done = completeRemote(context.state, context.remote!, event.message, { nowMs: now, key: context.input.key });
      const e = enq(enqueue);
      e.assign({ state: done.state, remote: undefined, current: undefined });
      finishOrder(done.state, e, current, done.response, done.approved ? 'remote' : 'declined', now, context.remote!.startedAtMs);
      // Talking to SD anyway: the backlog goes along (the patent's "triggered by another payment").
      triggerRemittance({ ...context, state: done.state }, e, 'payment');
      e.raise({ type: 'outbox.changed' });
    }),
    /** No answer in time: decline, and queue a reversal so a late debit or hold at SD is undone. */
    abandonRemote: enqueueActions(({ context, enqueue }) => {
      const current = context.current!;
      const now = context.input.now();
      const reversed = reverseInFlight(context.state, context.input.key, now);
      const { state, response } = decline(reversed, current.order.orderId, 'remoteTimeout');
      const e = enq(enqueue);
      e.assign({ state, remote: undefined, current: undefined });
      finishOrder(state, e, current, response, 'declined', now, context.remote?.startedAtMs ?? now);
      e.raise({ type: 'outbox.changed' });
    }),
    /** Sends every due outbox item once and schedules its retry. */
    flushOutbox: enqueueActions(({ context, enqueue }) => {
      const now = context.input.now();
      const due = dueItems(context.state.journal, now);
      for (const item of due) {
        enqueue.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(item.meansId, context.input.shardCount)), message: item.request } as LinkCommand);
      }
      enqueue.assign({ state: { ...context.state, journal: markSent(context.state.journal, due.map((i) => i.reqId), context.input.policy.remittance.retry, now) } });
    }),
    /** Coverage is back: resend at once, remit the backlog, and ask SD for fresh balances. */
    reconnect: enqueueActions(({ context, enqueue }) => {
      const e = enq(enqueue);
      // Sync request ids come from the journal's persisted sequence: a counter that restarted with the machine
      // would reuse the ids of syncs made before a crash, and SD would answer them with its stored, stale figures.
      const seq = context.state.journal.nextSeq;
      const state = { ...context.state, journal: { ...expediteAll(context.state.journal, context.input.now()), nextSeq: seq + 1 } };
      e.assign({ state });
      triggerRemittance({ ...context, state, linkUp: true }, e, 'coverageRegained');
      for (const request of syncRequests(state, context.input.key, seq)) {
        e.sendTo('link', { type: 'link.send', to: serverAddress(shardOf(request.meansId, context.input.shardCount)), message: request });
      }
      e.raise({ type: 'outbox.changed' });
    }),
    /** A result for an outbox item or a sync, or SD's request to remit; forged results are refused. */
    handleServerMessage: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'link.message') return;
      const message = event.message;
      const e = enq(enqueue);
      if (message.kind === 'remitNow') return triggerRemittance(context, e, 'serverRequest');
      if (!isResult(message)) return;
      if (!isAuthentic(context, message)) {
        e.assign({ refusedResults: context.refusedResults + 1 });
        e.emit({ type: 'proxy.refused', reason: 'badServerSignature' });
        return;
      }
      if (message.requestKind === 'sync') return e.assign({ state: applyBalances(context.state, message.balances) });
      const applied = applyAcknowledgement(context.state, message);
      e.assign({ state: applied.state });
      if (applied.refused) {
        e.emit({ type: 'proxy.refused', reason: `outboxRefused:${message.requestKind}:${applied.refused.code}` });
        e.raise({ type: 'outbox.changed' });
      }
      if (!applied.known) return;
      const now = context.input.now();
      if (message.requestKind === 'remit') e.emit({ type: 'proxy.remitted', txs: applied.remitted, reqId: message.reqId, ackAtMs: now });
      else e.emit({ type: 'proxy.acknowledged', reqId: message.reqId, requestKind: message.requestKind, ackAtMs: now });
      e.raise({ type: 'outbox.changed' });
    }),
    triggerRemittance: enqueueActions(({ context, enqueue }, params: { trigger: RemittanceTrigger }) => triggerRemittance(context, enq(enqueue), params.trigger)),
    acceptNearOrder: assign({
      queue: ({ context, event }) => [...context.queue, { order: (event as { order: PaymentOrder }).order, receivedAtMs: context.input.now() }],
    }),
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
  type: 'parallel',
  on: {
    coverage: { actions: 'forwardCoverage' },
    'link.up': { actions: ['markLinkUp', 'reconnect'] },
    'link.down': { actions: 'markLinkDown' },
    'link.rejected': { actions: 'emitRefusal' },
    'remit.now': { actions: { type: 'triggerRemittance', params: { trigger: 'serverRequest' } } },
  },
  states: {
    orders: {
      initial: 'idle',
      on: {
        order: [
          { guard: 'isAnsweredOrder', actions: 'replayPreviousResponse' },
          { guard: 'isOrderInProgress' },
          { guard: 'isQueueFull', actions: 'refuseBusy' },
          { actions: 'enqueueOrder' },
        ],
        'near.order': [
          { guard: 'isAnsweredOrder', actions: 'replayPreviousResponse' },
          { guard: 'isOrderInProgress' },
          { guard: 'isQueueFull', actions: 'refuseBusy' },
          { actions: 'acceptNearOrder' },
        ],
      },
      states: {
        idle: {
          always: { guard: 'hasQueuedOrder', target: 'confirming', actions: 'takeNextOrder' },
        },
        confirming: {
          always: [
            { guard: 'isPinBlocked', target: 'idle', actions: { type: 'declineCurrent', params: { reason: 'pinBlocked' } } },
            { guard: 'needsConfirmation', target: 'awaitingUser' },
            { target: 'deciding', actions: 'informUser' },
          ],
        },
        awaitingUser: {
          entry: 'askUser',
          on: {
            'confirm.answer': { guard: 'isAnswerForCurrent', target: 'answered', actions: 'applyAnswer' },
          },
          after: { confirmTimeout: { target: 'idle', actions: { type: 'declineCurrent', params: { reason: 'confirmationTimeout' } } } },
        },
        answered: {
          always: [{ guard: ({ context }) => context.current === undefined, target: 'idle' }, { target: 'deciding' }],
        },
        deciding: {
          entry: 'decideCurrent',
          always: [{ guard: ({ context }) => context.remote !== undefined, target: 'awaitingRemote' }, { target: 'idle' }],
        },
        awaitingRemote: {
          initial: 'waiting',
          on: {
            'link.message': [
              { guard: 'isRemoteResult', target: 'idle', actions: 'completeRemote' },
            ],
          },
          after: { remoteTimeout: { target: 'idle', actions: 'abandonRemote' } },
          states: {
            // The timer re-arms even while the link is down (the resend is then skipped): a guarded transition that
            // did not fire would leave no timer, and a request lost before a coverage gap would never be resent.
            waiting: {
              after: { remoteResend: { target: 'waiting', reenter: true, actions: 'resendRemote' } },
            },
          },
        },
      },
    },
    outbox: {
      initial: 'offline',
      states: {
        offline: {
          always: { guard: 'isLinkUp', target: 'online' },
        },
        online: {
          always: { guard: ({ context }) => !context.linkUp, target: 'offline' },
          initial: 'settle',
          states: {
            // Re-entered whenever the outbox may have changed, to re-arm the timer for the earliest due item.
            settle: {
              always: [{ guard: 'hasOutbox', target: 'armed' }, { guard: 'isScheduleArmed', target: 'scheduled' }, { target: 'quiet' }],
            },
            quiet: {},
            scheduled: {
              after: { remitSchedule: { target: 'settle', actions: { type: 'triggerRemittance', params: { trigger: 'schedule' } } } },
            },
            armed: {
              after: { outboxDue: { target: 'settle', reenter: true, actions: 'flushOutbox' } },
            },
          },
          on: {
            'link.message': { actions: 'handleServerMessage' },
            'outbox.changed': { target: '.settle', reenter: true },
          },
        },
      },
    },
  },
});

