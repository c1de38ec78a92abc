// Goal: the payment proxy's (PP's) order flow — one order at a time, the others queued: ask the user when the
// policy says so, decide (locally, or remotely at SD), answer with a signed proof or a decline, take the next.
// Method: a step table, `orderSteps`, one row per event that moves the order in hand, each naming the stage the
// order must be at (proxyFlow.ts: `idle`, `awaitingUser`, `awaitingRemote`). The flow, read as stages:
//
//   idle ──order──▶ (blocked PIN: decline) | (confirmation asked: awaitingUser) | decide
//   awaitingUser ──confirm.answer──▶ decline | decide      ──orders.confirmTimeout──▶ decline
//   decide: local or declined ──▶ answered at once, next order taken | remote ──▶ awaitingRemote
//   awaitingRemote ──SD's result──▶ answered     ──orders.remoteResend──▶ resent, still waiting
//                  ──orders.remoteTimeout──▶ declined, the payment reversed at SD
//
// Every step that ends an order takes the next queued one at once (`startQueuedOrders`), so a single event may
// answer several orders; that is why the stage is read from the context rather than kept as machine states (one
// transition per event, not a chain of eventless ones). All rules are the pure functions of
// domain/proxyRules.ts and domain/confirmation.ts.

import type { ProxyResponse } from './messages.ts';
import { checkPin, isPinBlocked, requiredConfirmation } from './domain/confirmation.ts';
import { completeRemote, decideOrder, decline, reverseInFlight } from './domain/proxyRules.ts';
import { DEFAULT_CONFIRM_TIMEOUT_MS, type QueuedOrder } from './proxyTypes.ts';
import { deliverResponse, isResult, sendToServer, step, type Flow } from './proxyFlow.ts';
import { handleServerMessage, settleOutbox, triggerRemittance } from './proxyOutbox.ts';
import { unremitted } from './domain/remittance.ts';
import { reviewPursesNow } from './proxyLocal.ts';

/**
 * Answers the order and tells the harness. The event carries the means as this decision left it, because
 * emitted events are delivered after the whole macrostep, when a queued order may already have changed it.
 */
function finishOrder(f: Flow, current: QueuedOrder, response: ProxyResponse, path: string, nowMs: number, startedAtMs = nowMs, declinedRemoteTxId?: string): void {
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
    ...(current.decidedWith === undefined ? {} : { decidedWith: current.decidedWith }),
    ...(declinedRemoteTxId === undefined || response.ok ? {} : { declinedRemoteTxId }),
  });
}

/** Ends the current order with a decline that never reached the payment rules (user, PIN, timeout). */
function declineCurrent(f: Flow, reason: string): void {
  const current = f.c.current!;
  const { state, response } = decline(f.c.state, current.order, reason, { key: f.c.input.key, nowMs: f.c.input.now() });
  f.c.state = state;
  f.c.current = undefined;
  finishOrder(f, current, response, 'none', f.c.input.now());
}

/** Sends the remote payment in hand to SD (again, for a resend). */
function sendRemote(f: Flow): void {
  const remote = f.c.remote!;
  sendToServer(f.e, f.c, remote.claim.meansId, remote.request);
}

function remoteResendMs(remoteTimeoutMs: number): number {
  return Math.max(1, Math.floor(remoteTimeoutMs / 4));
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
  const pending = unremitted(c.state.journal);
  const current = { ...c.current!, decidedWith: { inCoverage: c.linkUp, pendingCount: pending.count, pendingAmountMinor: pending.amountMinor } };
  c.current = current;
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
  // A purse reviewed for the decision may have queued a reload or a renewal, even for an order it declined.
  if (decision.state.journal.outbox !== c.state.journal.outbox) f.outboxChanged = true;
  c.state = decision.state;
  c.current = undefined;
  finishOrder(f, current, decision.response, decision.kind === 'approvedLocal' ? decision.path : 'declined', now);
  if (decision.kind === 'approvedLocal') {
    // Any payment made in coverage triggers remittance when the policy says so (the patent's "triggered by
    // another payment"), local ones as much as remote ones; otherwise a long enough backlog does.
    triggerRemittance(f, 'payment');
    triggerRemittance(f, 'backlog');
    f.outboxChanged = true;
    // A payment from a purse may have taken it below its reload threshold: ask SD now if in coverage.
    if (c.state.means[current.order.meansId]?.localValue) reviewPursesNow(f, current.order.meansId);
  }
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

/** The order flow's steps; the machine runs each from the action of the same name. */
export const orderSteps = {
  /** No order in hand: the new one is taken at once. */
  startOrder: step({
    on: ['order', 'near.order'],
    stage: 'idle',
    run(f, event) {
      f.c.queue = [...f.c.queue, { order: event.order, receivedAtMs: f.c.input.now() }];
      startQueuedOrders(f);
      settleOutbox(f);
    },
  }),
  /** Checks the user's answer; a refusal, a wrong PIN or a blocked PIN ends the order, an approval decides it. */
  applyAnswer: step({
    on: ['confirm.answer'],
    stage: 'awaitingUser',
    run(f, event) {
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
    },
  }),
  /** The user did not answer in time: the order is declined. */
  declineUnanswered: step({
    on: ['orders.confirmTimeout'],
    stage: 'awaitingUser',
    run(f) {
      declineCurrent(f, 'confirmationTimeout');
      startQueuedOrders(f);
      settleOutbox(f);
    },
  }),
  /** SD answered the remote payment; online, the outbox sees the result too (it may carry balances). */
  completeRemote: step({
    on: ['link.message'],
    stage: 'awaitingRemote',
    run(f, event) {
      const c = f.c;
      const result = event.message;
      if (!isResult(result)) throw new Error(`proxy: completeRemote was run for a ${result.kind}`);
      const current = c.current!;
      const remote = c.remote!;
      const now = c.input.now();
      f.e.cancel('orders.remoteResend');
      f.e.cancel('orders.remoteTimeout');
      const done = completeRemote(c.state, remote, result, { nowMs: now, key: c.input.key });
      c.state = done.state;
      c.remote = undefined;
      c.current = undefined;
      finishOrder(f, current, done.response, done.approved ? 'remote' : 'declined', now, remote.startedAtMs, remote.claim.txId);
      // Talking to SD anyway: the backlog goes along (the patent's "triggered by another payment").
      triggerRemittance(f, 'payment');
      f.outboxChanged = true;
      // Offline (a result that was on its way when the link went down) the outbox waits for the link.
      if (c.linkUp) handleServerMessage(f, result);
      startQueuedOrders(f);
      settleOutbox(f);
    },
  }),
  /**
   * Resends the remote payment. The timer re-arms even while the link is down (the resend is then skipped), so
   * a request lost before a coverage gap is still resent.
   */
  resendRemote: step({
    on: ['orders.remoteResend'],
    stage: 'awaitingRemote',
    run(f) {
      if (f.c.linkUp) sendRemote(f);
      f.e.raise({ type: 'orders.remoteResend' }, { id: 'orders.remoteResend', delay: remoteResendMs(f.c.input.policy.remoteTimeoutMs) });
    },
  }),
  /** No answer in time: decline, and queue a reversal so a late debit or hold at SD is undone. */
  abandonRemote: step({
    on: ['orders.remoteTimeout'],
    stage: 'awaitingRemote',
    run(f) {
      const c = f.c;
      const current = c.current!;
      const { startedAtMs, claim } = c.remote!;
      const now = c.input.now();
      f.e.cancel('orders.remoteResend');
      const reversed = reverseInFlight(c.state, c.input.key, now);
      const { state, response } = decline(reversed, current.order, 'remoteTimeout', { key: c.input.key, nowMs: now });
      c.state = state;
      c.remote = undefined;
      c.current = undefined;
      finishOrder(f, current, response, 'declined', now, startedAtMs, claim.txId);
      f.outboxChanged = true;
      startQueuedOrders(f);
      settleOutbox(f);
    },
  }),
};
