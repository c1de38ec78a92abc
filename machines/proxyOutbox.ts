// Goal: the payment proxy's (PP's) side of remittance: forming remittances when a trigger says so, sending the
// outbox's due items to SD until each is acknowledged, acting on SD's results and requests, and the one timer
// that wakes the outbox.
// Method: helpers on a `Flow` (proxyFlow.ts) that the order steps call too, and the step table `outboxSteps`
// the machine runs for the link's and the outbox's events. All rules are the pure functions of
// domain/remittance.ts and domain/proxyRules.ts. The outbox keeps one timer, armed for the earliest due item
// (or the date trigger) and re-armed at the end of any event that may have changed the outbox.

import type { LinkMessage, RemitNow } from './messages.ts';
import { acceptRemitRequest, applyAcknowledgement, applyBalances, requestSigner, syncRequests } from './domain/proxyRules.ts';
import { dueItems, expediteAll, formRemittances, isRemittanceDue, markSent, nextDueMs, type RemittanceTrigger } from './domain/remittance.ts';
import { isAuthentic, isResult, sendToServer, step, type Flow } from './proxyFlow.ts';
import { endPeriods, reviewPursesNow, takeReloadResult } from './proxyLocal.ts';

/** Forms remittances from the pending journal when the trigger says so. */
export function triggerRemittance(f: Flow, trigger: RemittanceTrigger): void {
  const c = f.c;
  if (!c.linkUp || !isRemittanceDue(c.state.journal, trigger, c.input.policy.remittance)) return;
  const signer = requestSigner(c.state.proxyId, c.input.key);
  c.state = { ...c.state, journal: formRemittances(c.state.journal, c.input.policy.remittance, signer, c.input.now()) };
  f.outboxChanged = true;
}

/**
 * Re-arms the outbox timer after a change: for the earliest due item, else for the date trigger while payments
 * wait, else none. Offline there is no timer; `reconnect` arms it when the link comes back. It is re-armed
 * whenever the outbox may have changed, even when its due time stays the same, because a timer armed later runs
 * after the others due at the same instant: re-arming less often would reorder events of a virtual run.
 */
export function settleOutbox(f: Flow, { cancel }: { cancel: boolean } = { cancel: true }): void {
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

/**
 * SD's explicit request to remit: the backlog goes now if SD signed the request for this proxy and it is no
 * replay; anything else is refused and counted, as a forged result is [INV-6].
 */
export function remitOnServerRequest(f: Flow, request: RemitNow): void {
  const c = f.c;
  const verdict = acceptRemitRequest(c.state, request, { scheme: c.input.scheme, serverPublicKey: c.input.serverPublicKey });
  if (!verdict.accepted) {
    c.refusedResults += 1;
    f.e.emit({ type: 'proxy.refused', reason: verdict.reason });
    return;
  }
  c.state = verdict.state;
  triggerRemittance(f, 'serverRequest');
}

/** A result for an outbox item or a sync, or SD's request to remit; forged results are refused. */
export function handleServerMessage(f: Flow, message: LinkMessage): void {
  const c = f.c;
  if (message.kind === 'remitNow') return remitOnServerRequest(f, message);
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
  if (message.requestKind === 'reload') return takeReloadResult(f, message);
  const applied = applyAcknowledgement(c.state, message);
  c.state = applied.state;
  if (applied.refused) {
    f.e.emit({ type: 'proxy.refused', reason: `outboxRefused:${message.requestKind}:${applied.refused.code}` });
    f.outboxChanged = true;
  }
  if (!applied.known) return;
  const now = c.input.now();
  // An MTD period that follows remittances ends with each remittance SD acknowledged for its means.
  if (message.requestKind === 'remit') endPeriods(f, 'remittance', new Set(applied.remitted.map((tx) => tx.meansId)));
  if (message.requestKind === 'remit') f.e.emit({ type: 'proxy.remitted', txs: applied.remitted, reqId: message.reqId, ackAtMs: now });
  else f.e.emit({ type: 'proxy.acknowledged', reqId: message.reqId, requestKind: message.requestKind, ackAtMs: now });
  f.outboxChanged = true;
}

/** The steps for the link's and the outbox's events; the machine runs each from the action of the same name. */
export const outboxSteps = {
  /** Coverage is back: resend at once, remit the backlog, ask SD for fresh balances, and arm the outbox timer. */
  reconnect: step({
    on: ['link.up'],
    run(f) {
      const c = f.c;
      c.linkUp = true;
      // Sync request ids come from the journal's persisted sequence: a counter that restarted with the machine
      // would reuse the ids of syncs made before a crash, and SD would answer them with its stored, stale figures.
      const seq = c.state.journal.nextSeq;
      const state = { ...c.state, journal: { ...expediteAll(c.state.journal, c.input.now()), nextSeq: seq + 1 } };
      c.state = state;
      triggerRemittance(f, 'coverageRegained');
      for (const request of syncRequests(state, c.input.key, seq)) sendToServer(f.e, c, request.meansId, request);
      // An MTD period that follows connections ends here; purses are renewed, accounted and refilled now.
      endPeriods(f, 'connection');
      reviewPursesNow(f);
      f.outboxChanged = true;
      settleOutbox(f);
    },
  }),
  /** A message from SD that is not the result of the remote payment in hand. */
  handleServerMessage: step({
    on: ['link.message'],
    run(f, event) {
      handleServerMessage(f, event.message);
      settleOutbox(f);
    },
  }),
  /** Sends every due outbox item once, schedules its retry, and re-arms the timer. */
  flushOutbox: step({
    on: ['outbox.due'],
    run(f) {
      const c = f.c;
      const now = c.input.now();
      const due = dueItems(c.state.journal, now);
      for (const item of due) sendToServer(f.e, c, item.meansId, item.request);
      c.state = { ...c.state, journal: markSent(c.state.journal, due.map((i) => i.reqId), c.input.policy.remittance.retry, now) };
      f.outboxChanged = true;
      // The timer has just fired: there is nothing to cancel.
      settleOutbox(f, { cancel: false });
    },
  }),
  /** SD's signed request reached the proxy through its terminal (the app's server relays it). */
  remitOnRequest: step({
    on: ['remit.now'],
    run(f, event) {
      remitOnServerRequest(f, event.request);
      settleOutbox(f);
    },
  }),
  /** The date trigger's timer has fired: remit if due, and re-arm the outbox timer whatever the remittance did. */
  remitOnSchedule: step({
    on: ['outbox.remitSchedule'],
    run(f) {
      triggerRemittance(f, 'schedule');
      f.outboxChanged = true;
      settleOutbox(f, { cancel: false });
    },
  }),
};
