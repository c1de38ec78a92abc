// Goal: the payment proxy's business rules as pure functions over its persisted state — what happens to an
// order after confirmation (steps B, C, D of the patent's FIG. 3), and what a server result does to the state.
// Method: `decideOrder` discriminates, approves locally (recording a signed transaction in the journal) or
// builds a signed remote request; `applyServerResult` folds SD's answers (remote results, remittance and
// capture acknowledgements, sync figures) back in. The proxy machine calls these from `assign`, so the machine
// holds the flow and these functions hold the rules.

import { DomainError, type Minor } from './money.ts';
import { discriminate, type DiscriminationPolicy, type PaymentPath } from './discriminate.ts';
import { applySync, isWithinCeiling, localApproval, recordRemoteSpend, type MeansState } from './means.ts';
import { newPinCounter, type ConfirmationPolicy, type PinCounter } from './confirmation.ts';
import {
  acknowledge,
  emptyJournal,
  queueCapture,
  queueReversal,
  recordLocal,
  unremitted,
  unremittedMinor,
  type Journal,
  type RemittancePolicy,
  type RequestSigner,
} from './remittance.ts';
import { refusalFields, signClaim, signFields, type PaymentClaim, type SignatureScheme, type SigningKey } from './signature.ts';
import { signProof, signRequest, UNSTORED_REFUSAL_CODES, verifyRemitNow } from './requests.ts';
import { outstandingReloadsMinor, reviewPurses } from './localValue.ts';
import type { AuthRequest, BalanceFigure, DebitRequest, PaymentOrder, Proof, ProxyResponse, RemitNow, ServerResult, SyncRequest } from '../messages.ts';

export interface ProxyPolicy {
  discrimination: DiscriminationPolicy;
  confirmation: ConfirmationPolicy;
  remittance: RemittancePolicy;
  /** A remote payment unanswered after this long is declined (the app is told; nothing was posted or will be). */
  remoteTimeoutMs: number;
}

/** The proxy's persisted state: everything that must survive a crash or a move of the SIM. */
export interface ProxyState {
  proxyId: string;
  means: Record<string, MeansState>;
  journal: Journal;
  /** Signature counter; strictly increases with every signed payment. */
  counter: number;
  pin: PinCounter;
  /**
   * OPj / rj: the record of orders and their responses, per means, so a repeated order gets the same answer and is
   * not paid twice and a dispute can be settled from it. Durable (it is part of the persisted state, through a
   * crash or a SIM move) and kept for HISTORY_RETENTION_MS, not cut to the last few answers: a POS that repeats an
   * order after a burst of others must still find it answered.
   */
  history: Record<string, HistoryEntry[]>;
  /**
   * Write-ahead record of a remote payment sent to SD and not yet answered. A proxy restored with one reverses it
   * at SD, because its app was never told the outcome.
   */
  remoteInFlight?: PaymentClaim;
  /**
   * The ids of the last explicit remittance requests (RemitNow) acted on, so a replayed one is refused. Optional:
   * a state persisted before it existed has none.
   */
  remitRequestsSeen?: string[];
}

/** One order of the record: when it was answered, and the answer (signed, approval or refusal). */
export interface HistoryEntry {
  orderId: string;
  atMs: number;
  response: ProxyResponse;
}

/**
 * How long an answered order stays in the record. A week: far beyond any retry of an app or a POS and beyond a
 * run, yet bounded, so a SIM in use for years does not keep every answer it ever gave.
 */
export const HISTORY_RETENTION_MS = 7 * 24 * 3_600_000;

export function initialProxyState(proxyId: string, means: MeansState[], policy: ProxyPolicy): ProxyState {
  return {
    proxyId,
    means: Object.fromEntries(means.map((m) => [m.meansId, m])),
    journal: emptyJournal(),
    counter: 0,
    pin: newPinCounter(policy.confirmation.pinTries),
    history: {},
  };
}

export function requestSigner(proxyId: string, key: SigningKey): RequestSigner {
  return { proxyId, sign: (unsigned) => signRequest(key, unsigned) };
}

/** A remote payment in flight: kept by the machine until SD answers or the timeout fires. */
export interface RemotePayment {
  order: PaymentOrder;
  claim: PaymentClaim;
  proofSig: string;
  request: AuthRequest | DebitRequest;
  startedAtMs: number;
}

export type OrderDecision =
  | { kind: 'declined'; state: ProxyState; response: ProxyResponse }
  | { kind: 'approvedLocal'; state: ProxyState; response: ProxyResponse; path: PaymentPath }
  | { kind: 'remote'; state: ProxyState; remote: RemotePayment };

export function previousResponse(state: ProxyState, orderId: string): ProxyResponse | undefined {
  // Per means, and a terminal has a few: the order id is looked for in each record (an order repeated under another
  // means is still the same order, answered once).
  for (const entries of Object.values(state.history)) {
    for (const entry of entries) if (entry.orderId === orderId) return entry.response;
  }
  return undefined;
}

/** The history after `response` to an order on `meansId`: that means' record, without entries past retention, plus it. */
function historyWith(history: ProxyState['history'], meansId: string, response: ProxyResponse, nowMs: number): ProxyState['history'] {
  const entries = history[meansId] ?? [];
  let first = 0;
  while (first < entries.length && entries[first]!.atMs < nowMs - HISTORY_RETENTION_MS) first++;
  const next = entries.slice(first);
  next.push({ orderId: response.orderId, atMs: nowMs, response });
  return { ...history, [meansId]: next };
}

/** A refusal signed by the proxy over its id, the order and the reason. */
export function signedRefusal(proxyId: string, key: SigningKey, orderId: string, reason: string): ProxyResponse {
  return { orderId, ok: false, reason, proxyId, sig: signFields(key, refusalFields({ proxyId, orderId, reason })) };
}

/** Declines the order with a signed refusal, recorded in its means' history. */
export function decline(
  state: ProxyState,
  order: Pick<PaymentOrder, 'orderId' | 'meansId'>,
  reason: string,
  env: { key: SigningKey; nowMs: number },
): { state: ProxyState; response: ProxyResponse } {
  const response = signedRefusal(state.proxyId, env.key, order.orderId, reason);
  return { state: { ...state, history: historyWith(state.history, order.meansId, response, env.nowMs) }, response };
}

/**
 * The claim of the next signed payment; its `counter` is the proxy's new signature counter. It names the order
 * it answers and, for a POS's sale, the POS and its nonce, so the proof is good for that sale only [INV-5].
 */
function nextClaim(state: ProxyState, order: PaymentOrder, nowMs: number): PaymentClaim {
  const counter = state.counter + 1;
  const claim: PaymentClaim = {
    txId: `${state.proxyId}:t${counter}`,
    amountMinor: order.amountMinor,
    payee: order.payee,
    timeMs: nowMs,
    counter,
    proxyId: state.proxyId,
    meansId: order.meansId,
    orderId: order.orderId,
  };
  if (order.source.kind === 'pos') {
    claim.posId = order.source.posId;
    if (order.nonce !== undefined) claim.nonce = order.nonce;
  }
  return claim;
}

/** Steps B–D for a confirmed order. */
export function decideOrder(
  state: ProxyState,
  policy: ProxyPolicy,
  order: PaymentOrder,
  env: { inCoverage: boolean; nowMs: number; key: SigningKey },
): OrderDecision {
  let means = state.means[order.meansId];
  if (!means) return { kind: 'declined', ...decline(state, order, 'unknownMeans', env) };
  if (means.localValue) {
    // Local value on the SIM pays internal payments only (B1); the purse is first brought to now, so a recurring
    // amount is reset exactly at its period boundary [INV-2] with its renewal queued to SD.
    if (order.type !== 'internal') return { kind: 'declined', ...decline(state, order, 'purseInternalOnly', env) };
    const reviewed = reviewPurses(state.means, state.journal, {
      proxyId: state.proxyId,
      sign: (unsigned) => signRequest(env.key, unsigned),
      nowMs: env.nowMs,
      online: env.inCoverage,
      onlyMeansId: means.meansId,
    });
    if (reviewed.changed) {
      state = { ...state, means: reviewed.means, journal: reviewed.journal };
      means = state.means[order.meansId]!;
    }
  }
  if (!Number.isSafeInteger(order.amountMinor) || order.amountMinor <= 0) {
    return { kind: 'declined', ...decline(state, order, 'badAmount', env) };
  }
  const pending = unremitted(state.journal);
  const route = discriminate(
    { type: order.type, amountMinor: order.amountMinor, inCoverage: env.inCoverage, pendingCount: pending.count, pendingAmountMinor: pending.amountMinor },
    policy.discrimination,
  );
  if (route.route === 'decline') return { kind: 'declined', ...decline(state, order, route.reason, env) };

  if (route.route === 'local') {
    const approval = localApproval(means, order.amountMinor, env.nowMs);
    if (approval.ok) {
      const claim = nextClaim(state, order, env.nowMs);
      const proof: Proof = signProof(env.key, claim, route.path);
      const response: ProxyResponse = { orderId: order.orderId, ok: true, proof };
      // One new state object with every changed part, rather than one copy per change.
      const next: ProxyState = {
        ...state,
        counter: claim.counter,
        means: { ...state.means, [means.meansId]: approval.means },
        journal: recordLocal(state.journal, proof),
        history: historyWith(state.history, order.meansId, response, env.nowMs),
      };
      return { kind: 'approvedLocal', state: next, response, path: route.path };
    }
    // Below the threshold but over a local limit: in coverage the proxy asks SD instead (as an EMV card goes
    // online when its offline limits are reached); without coverage, or for internal payments, it declines.
    if (route.path !== 'localBelowThreshold') return { kind: 'declined', ...decline(state, order, approval.reason, env) };
  }

  if (!isWithinCeiling(means, order.amountMinor, env.nowMs)) return { kind: 'declined', ...decline(state, order, 'ceilingExceeded', env) };
  // The path is under the proxy's signature from the start: the request SD sees and the proof both say remote.
  const claim: PaymentClaim = { ...nextClaim(state, order, env.nowMs), path: 'remote' };
  const reqId = `${state.proxyId}:q${claim.counter}`;
  const request =
    order.remoteMode === 'authCapture'
      ? signRequest<AuthRequest>(env.key, { kind: 'auth', reqId, from: state.proxyId, claim })
      : signRequest<DebitRequest>(env.key, { kind: 'debit', reqId, from: state.proxyId, claim });
  return { kind: 'remote', state: { ...state, counter: claim.counter, remoteInFlight: claim }, remote: { order, claim, proofSig: signClaim(env.key, claim), request, startedAtMs: env.nowMs } };
}

/**
 * Gives up on the remote payment in flight (timeout, or a restart after a crash): its app is told no, and a
 * reversal goes to SD so that a debit or hold SD may have made is undone.
 */
export function reverseInFlight(state: ProxyState, key: SigningKey, nowMs: number): ProxyState {
  const claim = state.remoteInFlight;
  if (!claim) return state;
  return { ...state, remoteInFlight: undefined, journal: queueReversal(state.journal, requestSigner(state.proxyId, key), claim, nowMs) };
}

/** Applies SD's balance figures: SL := SD's available less what SD has not seen yet, MTDL := 0. */
export function applyBalances(state: ProxyState, balances: readonly BalanceFigure[] | undefined): ProxyState {
  if (!balances || balances.length === 0) return state;
  let means = state.means;
  for (const figure of balances) {
    const current = means[figure.meansId];
    if (!current) continue;
    // What SD has not seen yet: local payments not acknowledged, and reloads of purses it funds not yet answered.
    const pendingMinor = unremittedMinor(state.journal, figure.meansId) + outstandingReloadsMinor(state.journal, figure.meansId);
    const synced = applySync(current, figure.availableMinor, figure.version, pendingMinor);
    if (synced === current) continue;
    // The first change copies the record; later figures of the same answer update that copy in place.
    if (means === state.means) means = { ...means };
    means[figure.meansId] = synced;
  }
  return means === state.means ? state : { ...state, means };
}

/** SD answered a remote payment: approve (with SD's signature on the proof) or decline. */
export function completeRemote(
  state: ProxyState,
  remote: RemotePayment,
  result: ServerResult,
  env: { nowMs: number; key: SigningKey },
): { state: ProxyState; response: ProxyResponse; approved: boolean } {
  // `next` is a fresh object from here on, so the steps below fill it in rather than copying it once each.
  const next: ProxyState = { ...state, remoteInFlight: undefined };
  next.means = applyBalances(state, result.balances).means;
  if (!result.ok) {
    const response = signedRefusal(state.proxyId, env.key, remote.order.orderId, `server:${result.code}`);
    next.history = historyWith(state.history, remote.order.meansId, response, env.nowMs);
    return { state: next, response, approved: false };
  }
  const means = next.means[remote.claim.meansId];
  if (means) {
    // Without a ceiling (or a period to roll) the means is unchanged and its record need not be copied.
    const spent = recordRemoteSpend(means, remote.claim.amountMinor, env.nowMs);
    if (spent !== means) next.means = { ...next.means, [means.meansId]: spent };
  }
  if (result.requestKind === 'auth') {
    // The authorisation holds the money; the confirmation goes out later and must reach SD whatever happens.
    const captureAtMs = env.nowMs + (remote.order.captureAfterMs ?? 0);
    next.journal = queueCapture(state.journal, requestSigner(state.proxyId, env.key), remote.claim, captureAtMs, env.nowMs);
  }
  // SD's signed receipt of this payment (what it did, for this txId, means, payee and amount) goes in the proof.
  const proof: Proof = { ...remote.claim, sig: remote.proofSig, path: 'remote', serverOutcome: result.requestKind === 'auth' ? 'authorised' : 'debited' };
  if (result.receiptSig !== undefined) proof.serverSig = result.receiptSig;
  const response: ProxyResponse = { orderId: remote.order.orderId, ok: true, proof };
  next.history = historyWith(state.history, remote.order.meansId, response, env.nowMs);
  return { state: next, response, approved: true };
}

/**
 * Refusals SD does not store (malformed, unauthenticated, or an id taken by another payload): they may answer
 * a copy altered in flight under this item's request id, so the item stays and is resent as it was. The list
 * is SD's own (UNSTORED_REFUSAL_CODES), so the proxy can never drop an item SD did not refuse for good, nor
 * resend for ever one it did. Every other refusal is stored by SD and would come back the same forever.
 */
const TRANSIENT_REFUSALS = UNSTORED_REFUSAL_CODES;

/**
 * SD answered an outbox item (remittance, capture, reversal). An acceptance removes it; a refusal SD stored
 * also removes it (resending would only fetch the same refusal and the outbox would never drain) and is
 * reported as `refused`, because money the proxy approved is then not on the ledger: a bug to surface, not to
 * hide behind endless retries. Unknown or repeated answers change nothing.
 */
export function applyAcknowledgement(
  state: ProxyState,
  result: ServerResult,
): { state: ProxyState; remitted: Proof[]; known: boolean; refused?: { code: string; txs: Proof[] } } {
  if (!result.ok && TRANSIENT_REFUSALS.has(result.code)) return { state: applyBalances(state, result.balances), remitted: [], known: false };
  const { journal, item } = acknowledge(state.journal, result.reqId);
  if (!item) return { state: applyBalances(state, result.balances), remitted: [], known: false };
  const next = applyBalances({ ...state, journal }, result.balances);
  if (!result.ok) return { state: next, remitted: [], known: false, refused: { code: result.code, txs: item.txs } };
  // Transactions SD refused one by one inside an accepted remittance are not on the ledger: reported, as a
  // refusal of the whole request would be.
  const refusedOne = new Set(result.refused ?? []);
  if (refusedOne.size > 0) {
    const refusedTxs = item.txs.filter((tx) => refusedOne.has(tx.txId));
    return { state: next, remitted: item.txs.filter((tx) => !refusedOne.has(tx.txId)), known: true, refused: { code: 'badProofSignature', txs: refusedTxs } };
  }
  return { state: next, remitted: item.txs, known: true };
}

const REMIT_REQUESTS_REMEMBERED = 16;

/**
 * An explicit remittance request (from SD, or the app's server through SD): acted on only when SD signed it, it is
 * addressed to this proxy, and its id is not one of the last ones acted on. A replay can at worst ask for a
 * remittance the policy allows on request anyway; remembering the recent ids stops it being used as a flood.
 */
export function acceptRemitRequest(
  state: ProxyState,
  request: RemitNow,
  trust: { scheme: SignatureScheme; serverPublicKey: string },
): { state: ProxyState; accepted: true } | { state: ProxyState; accepted: false; reason: string } {
  if (request.to !== state.proxyId) return { state, accepted: false, reason: 'remitRequestNotForMe' };
  // [INV-6 signatures] only SD's signature makes a request; anyone can publish the message's shape.
  if (!verifyRemitNow(trust.scheme, trust.serverPublicKey, request)) return { state, accepted: false, reason: 'badRemitRequestSignature' };
  const seen = state.remitRequestsSeen ?? [];
  if (seen.includes(request.reqId)) return { state, accepted: false, reason: 'replayedRemitRequest' };
  return { state: { ...state, remitRequestsSeen: [...seen.slice(-(REMIT_REQUESTS_REMEMBERED - 1)), request.reqId] }, accepted: true };
}

export function syncRequests(state: ProxyState, key: SigningKey, seqBase: number): SyncRequest[] {
  const signer = requestSigner(state.proxyId, key);
  // A purse's value is on the SIM: SD's figure for it is never asked for (see applySync).
  return Object.keys(state.means).filter((meansId) => !state.means[meansId]!.localValue).map((meansId, i) =>
    signer.sign<SyncRequest>({ kind: 'sync', reqId: `${state.proxyId}:s${seqBase}.${i}`, from: state.proxyId, meansId }),
  );
}

/** Total unremitted local money of this proxy: the money at risk while it is offline. */
export function moneyAtRisk(state: ProxyState): Minor {
  return unremitted(state.journal).amountMinor;
}

export function assertProxyState(state: unknown): asserts state is ProxyState {
  const s = state as ProxyState;
  if (!s || typeof s.proxyId !== 'string' || typeof s.counter !== 'number' || !s.journal || !s.means) {
    throw new DomainError('badProxyState', 'not a persisted proxy state', state);
  }
}
