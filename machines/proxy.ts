// Goal: PP, the payment proxy — the XState machine that takes every payment order from the terminal's apps
// or from a POS over the near link, confirms it with the user, discriminates, pays locally or remotely, answers
// with a signed proof, and remits local transactions to SD until they are acknowledged.
// Method: two states, `offline` and `online`, follow the link; everything else is context. The order flow
// (one order at a time, others queue: confirmation → decision → remote wait → response) is the step table of
// proxyOrders.ts, and the link's and the outbox's events are the step table of proxyOutbox.ts; the guards below
// route each event to its step, which reads where the order stands from `current` and `remote`. Each event is
// handled in one transition whose action runs the whole step, so XState does one microstep per event instead of
// a chain of eventless steps and raised events; the order of every send, emit and timer is the one the step
// implies. All rules are the pure functions of domain/proxyRules.ts; all I/O goes through the `link` (MC) and
// `nearLink` (ICP) children; time comes from `input.now()` and XState delays.

import { assign, emit, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { LinkCommand, LinkInput, NearLinkCommand } from './link.ts';
import { initialProxyState, previousResponse, reverseInFlight, signedRefusal } from './domain/proxyRules.ts';
import { DEFAULT_MAX_QUEUED, type ProxyContext, type ProxyEmitted, type ProxyEvent, type ProxyInput } from './proxyTypes.ts';
import { deliverResponse, isAuthentic, isResult, orderStageOf, runStep } from './proxyFlow.ts';
import { orderSteps } from './proxyOrders.ts';
import { outboxSteps } from './proxyOutbox.ts';

export type { ProxyContext, ProxyEmitted, ProxyEvent, ProxyInput, ProxyTimerEvent, QueuedOrder } from './proxyTypes.ts';

/** A link that never connects: the default until a real one is provided. */
const disconnectedLink = fromCallback<LinkCommand, LinkInput>(() => undefined);
const disconnectedNearLink = fromCallback<NearLinkCommand, { endpointId: string }>(() => undefined);

/**
 * How an order comes in: answered again from the history, dropped as a repeat of the one in hand, refused when
 * the queue is full, taken at once when no order is in hand, else queued.
 */
const takeOrder = [
  { guard: 'isAnsweredOrder', actions: 'replayPreviousResponse' },
  { guard: 'isOrderInProgress' },
  { guard: 'isQueueFull', actions: 'refuseBusy' },
  { guard: 'isIdle', actions: 'startOrder' },
  { actions: 'enqueueOrder' },
] as const;

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
    isIdle: ({ context }) => orderStageOf(context) === 'idle',
    isAwaitingUser: ({ context }) => orderStageOf(context) === 'awaitingUser',
    isAwaitingRemote: ({ context }) => orderStageOf(context) === 'awaitingRemote',
    isAnswerForCurrent: ({ context, event }) =>
      event.type === 'confirm.answer' && orderStageOf(context) === 'awaitingUser' && event.orderId === context.current?.order.orderId,
    isRemoteResult: ({ context, event }) =>
      event.type === 'link.message' &&
      isResult(event.message) &&
      event.message.reqId === context.remote?.request.reqId &&
      isAuthentic(context, event.message),
  },
  actions: {
    /** Tells the link about radio coverage; the link answers with link.up / link.down. */
    forwardCoverage: sendTo('link', ({ event }) => ({ type: 'link.coverage', inCoverage: event.type === 'coverage' && event.inCoverage }) satisfies LinkCommand),
    /** An order in hand already: the new one waits its turn. */
    enqueueOrder: assign({
      queue: ({ context, event }) =>
        event.type === 'order' || event.type === 'near.order' ? [...context.queue, { order: event.order, receivedAtMs: context.input.now() }] : context.queue,
    }),
    replayPreviousResponse: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'order' && event.type !== 'near.order') return;
      const response = previousResponse(context.state, event.order.orderId);
      if (response) deliverResponse(enqueue, event.order, response);
    }),
    refuseBusy: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'order' && event.type !== 'near.order') return;
      deliverResponse(enqueue, event.order, signedRefusal(context.input.proxyId, context.input.key, event.order.orderId, 'busy'));
    }),
    // The order flow (proxyOrders.ts).
    startOrder: enqueueActions(({ context, event, enqueue }) => runStep(orderSteps.startOrder, context, event, enqueue)),
    applyAnswer: enqueueActions(({ context, event, enqueue }) => runStep(orderSteps.applyAnswer, context, event, enqueue)),
    declineUnanswered: enqueueActions(({ context, event, enqueue }) => runStep(orderSteps.declineUnanswered, context, event, enqueue)),
    completeRemote: enqueueActions(({ context, event, enqueue }) => runStep(orderSteps.completeRemote, context, event, enqueue)),
    resendRemote: enqueueActions(({ context, event, enqueue }) => runStep(orderSteps.resendRemote, context, event, enqueue)),
    abandonRemote: enqueueActions(({ context, event, enqueue }) => runStep(orderSteps.abandonRemote, context, event, enqueue)),
    // The link and the outbox (proxyOutbox.ts).
    reconnect: enqueueActions(({ context, event, enqueue }) => runStep(outboxSteps.reconnect, context, event, enqueue)),
    handleServerMessage: enqueueActions(({ context, event, enqueue }) => runStep(outboxSteps.handleServerMessage, context, event, enqueue)),
    flushOutbox: enqueueActions(({ context, event, enqueue }) => runStep(outboxSteps.flushOutbox, context, event, enqueue)),
    remitOnRequest: enqueueActions(({ context, event, enqueue }) => runStep(outboxSteps.remitOnRequest, context, event, enqueue)),
    remitOnSchedule: enqueueActions(({ context, event, enqueue }) => runStep(outboxSteps.remitOnSchedule, context, event, enqueue)),
    /** Coverage is lost: the outbox waits for the link (its items keep their retry schedule). */
    disconnect: enqueueActions(({ enqueue }) => {
      enqueue.assign({ linkUp: false });
      enqueue.cancel('outbox.timer');
    }),
    emitRefusal: emit(({ event }) => ({ type: 'proxy.refused' as const, reason: event.type === 'link.rejected' ? event.reason : event.type })),
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
    'remit.now': { actions: 'remitOnRequest' },
    // An order from an app (through the terminal) or from a POS (over the near link) takes the same way in.
    order: takeOrder,
    'near.order': takeOrder,
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
        'link.message': { guard: 'isRemoteResult', actions: 'completeRemote' },
      },
    },
    online: {
      on: {
        'link.up': { actions: 'reconnect' },
        'link.down': { target: 'offline', actions: 'disconnect' },
        'link.message': [{ guard: 'isRemoteResult', actions: 'completeRemote' }, { actions: 'handleServerMessage' }],
        'outbox.due': { actions: 'flushOutbox' },
        'outbox.remitSchedule': { actions: 'remitOnSchedule' },
      },
    },
  },
});
