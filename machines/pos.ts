// Goal: TP, the shop's point of sale. It sends proximity payment orders to a customer's terminal over the near
// link (ICP), which works without network coverage, checks the signed proof it gets back, keeps the receipt,
// and settles its receipts with SD over its own link so the merchant is credited even if the terminal never
// remits.
// Method: two states, `ready` and `awaitingPayer`, follow the sale (one at a time). Beside it runs a settlement
// loop, kept in context: `settlement` says whether it is idle, sending the unsettled receipts of one shard (and
// resending on a backoff until SD answers) or waiting after a refusal. Each event is handled by one transition
// whose action does the whole step on a copy of the context — including starting the next settlement where the
// step made one due — so XState does one microstep per event, with no parallel regions and no eventless
// transitions to re-check after every event. Timers are raised with ids and cancelled explicitly, in the order the
// states' entries and exits armed and cancelled them. I/O only through `link` and `nearLink`.

import { assign, emit, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { LinkCommand, LinkEvent, LinkInput, NearLinkCommand, NearLinkEvent } from './link.ts';
import { serverAddress, shardOf } from './link.ts';
import type { PaymentOrder, Proof, ProxyResponse, ServerResult, SettleRequest } from './messages.ts';
import { refusalFields, signFields, verifyClaim, verifyFields, verifyServerReceipt, type SignatureScheme, type SigningKey } from './domain/signature.ts';
import { UNSTORED_REFUSAL_CODES, signRequest, verifyResult } from './domain/requests.ts';
import { retryDelayMs, type RetryPolicy } from './domain/remittance.ts';

export interface PosInput {
  posId: string;
  /** The merchant account this POS collects for. */
  merchantId: string;
  key: SigningKey;
  scheme: SignatureScheme;
  serverPublicKey: string;
  /** The public key of a proxy, to check a customer's proof; undefined for an unknown proxy. */
  proxyPublicKeyOf: (proxyId: string) => string | undefined;
  shardCount: number;
  now: () => number;
  inCoverage: boolean;
  saleTimeoutMs?: number;
  /** Settle at most this many receipts per request. */
  settleBatchSize?: number;
  retry: RetryPolicy;
}

export interface PendingSale {
  order: PaymentOrder;
  terminalId: string;
  startedAtMs: number;
}

/**
 * Where the settlement loop stands: `idle`, `sending` (a request is in flight and its resend timer runs) or
 * `refused` (SD refused the last batch; the loop waits before it tries again).
 */
export type SettlementPhase = 'idle' | 'sending' | 'refused';

export interface PosContext {
  input: PosInput;
  linkUp: boolean;
  saleSeq: number;
  settleSeq: number;
  /** The sale in progress; defined exactly in `awaitingPayer`. */
  sale?: PendingSale;
  /** Receipts not yet acknowledged by SD. */
  unsettled: Proof[];
  settlement: SettlementPhase;
  /**
   * The settlement request last sent and not yet answered. It outlives `sending` when the link went down before
   * SD answered: the next try resends the same request rather than a new batch.
   */
  settling?: { request: SettleRequest; attempts: number };
  settledCount: number;
  /** Settlements SD refused in a row; the wait before the next try grows with it. */
  settleRefusals: number;
  /**
   * The txIds of the last RECEIVED_TX_MEMORY proofs kept, newest last. A proof is already bound to its sale by
   * the signed order id and nonce; this is the second lock a terminal keeps (as an EMV terminal's batch refuses
   * a duplicate transaction sequence), so a proxy that answered two sales with one transaction is caught here.
   */
  receivedTxIds: string[];
}

export type PosEvent =
  | { type: 'pos.sale'; terminalId: string; meansId: string; amountMinor: number }
  | { type: 'coverage'; inCoverage: boolean }
  | PosTimerEvent
  | LinkEvent
  | NearLinkEvent;

/** The delayed events the POS raises to itself: its timers, each under the id of its own type. */
export type PosTimerEvent = { type: 'sale.timeout' } | { type: 'settlement.retry' } | { type: 'settlement.afterRefusal' };

export type PosEmitted =
  | { type: 'pos.receipt'; posId: string; proof: Proof; order: PaymentOrder; startedAtMs: number }
  | { type: 'pos.declined'; posId: string; order: PaymentOrder; reason: string }
  | { type: 'pos.settled'; posId: string; txIds: string[] }
  | { type: 'pos.settleRefused'; posId: string; txIds: string[]; code: string };

const DEFAULT_SALE_TIMEOUT_MS = 120_000;
const DEFAULT_SETTLE_BATCH = 50;
/** How many received txIds a POS remembers (a bounded window: the signed sale binding covers older proofs). */
export const RECEIVED_TX_MEMORY = 1024;

/**
 * The POS's unpredictable number for a sale (EMV's tag 9F37). It is a keyed digest of the sale under the POS's
 * own key rather than a draw, so a run stays reproducible from its seed while no customer can predict it: a
 * proof made in advance or kept from an earlier sale — also one made before a restart of the POS reset its
 * order numbers — cannot carry it.
 */
export function saleNonce(input: Pick<PosInput, 'key' | 'posId'>, orderId: string, nowMs: number): string {
  return signFields(input.key, ['pos.nonce', input.posId, orderId, nowMs]).slice(-16);
}

/**
 * [INV-5 beneficiary] A proof is kept only if a known proxy signed it, for this merchant and this very sale: the
 * signed claim names the order, this POS and the sale's nonce, and its txId was not received before. An old
 * genuine proof with the same amount, payee and means is refused, so goods are never handed over twice for
 * one payment.
 */
export function isProofForSale(
  input: PosInput,
  order: PaymentOrder,
  response: ProxyResponse,
  receivedTxIds: readonly string[] = [],
): response is Extract<ProxyResponse, { ok: true }> {
  if (!response.ok || response.orderId !== order.orderId) return false;
  const proof = response.proof;
  const publicKey = input.proxyPublicKeyOf(proof.proxyId);
  return (
    publicKey !== undefined &&
    proof.orderId === order.orderId &&
    proof.posId === input.posId &&
    proof.nonce === order.nonce &&
    proof.amountMinor === order.amountMinor &&
    proof.payee === input.merchantId &&
    proof.meansId === order.meansId &&
    !receivedTxIds.includes(proof.txId) &&
    verifyClaim(input.scheme, publicKey, proof, proof.sig) &&
    // A remote payment's proof carries SD's signed receipt of exactly this payment; a local one carries none.
    (proof.path === 'remote' ? verifyServerReceipt(input.scheme, input.serverPublicKey, proof) : proof.serverSig === undefined)
  );
}

/** True when a refusal is signed by the proxy it names (so the merchant can show who declined, and why). */
export function isSignedRefusal(input: Pick<PosInput, 'scheme' | 'proxyPublicKeyOf'>, response: ProxyResponse): boolean {
  if (response.ok || response.proxyId === undefined) return false;
  const publicKey = input.proxyPublicKeyOf(response.proxyId);
  return publicKey !== undefined && verifyFields(input.scheme, publicKey, refusalFields({ proxyId: response.proxyId, orderId: response.orderId, reason: response.reason }), response.sig);
}

/** The next settlement request: the oldest unsettled receipt's shard, up to a batch of its receipts. */
function settleBatch(context: PosContext): SettleRequest | undefined {
  const first = context.unsettled[0];
  if (!first) return undefined;
  const shard = shardOf(first.meansId, context.input.shardCount);
  const proofs = context.unsettled
    .filter((p) => shardOf(p.meansId, context.input.shardCount) === shard)
    .slice(0, context.input.settleBatchSize ?? DEFAULT_SETTLE_BATCH);
  return signRequest<SettleRequest>(context.input.key, { kind: 'settle', reqId: `${context.input.posId}:s${context.settleSeq}`, from: context.input.posId, proofs });
}

/** The order a sale sends to the customer's terminal; a refused second sale is reported under the id `:busy`. */
function saleOrder(input: PosInput, orderId: string, sale: Extract<PosEvent, { type: 'pos.sale' }>, nonce?: string): PaymentOrder {
  const order: PaymentOrder = { orderId, source: { kind: 'pos', posId: input.posId }, type: 'proximity', meansId: sale.meansId, amountMinor: sale.amountMinor, payee: input.merchantId };
  if (nonce !== undefined) order.nonce = nonce;
  return order;
}

/** The transaction ids SD acknowledged, newly posted or already on its ledger [INV-4]. */
function acknowledgedTxIds(result: ServerResult): Set<string> {
  return new Set([...(result.posted ?? []), ...(result.alreadyPosted ?? [])]);
}

const disconnectedLink = fromCallback<LinkCommand, LinkInput>(() => undefined);
const disconnectedNearLink = fromCallback<NearLinkCommand, { endpointId: string }>(() => undefined);

/** The subset of XState's `enqueue` the steps below use (they run inside `enqueueActions`). */
interface Enqueue {
  assign(values: Partial<PosContext>): void;
  sendTo(actorId: 'link' | 'nearLink', event: LinkCommand | NearLinkCommand): void;
  emit(event: PosEmitted): void;
  raise(event: PosTimerEvent, options: { id: PosTimerEvent['type']; delay: number }): void;
  cancel(id: PosTimerEvent['type']): void;
}

/**
 * One event's work: the helpers read and replace the fields of a draft of the context and enqueue their sends,
 * emits and timers in the order the step runs them; `runStep` stores the draft with one `assign` at the end. The
 * enqueued actions carry values computed here, so where the `assign` sits among them changes nothing.
 */
interface Step {
  c: PosContext;
  e: Enqueue;
}

function runStep(context: PosContext, enqueue: unknown, body: (s: Step) => void): void {
  const s: Step = { c: { ...context }, e: enqueue as Enqueue };
  body(s);
  s.e.assign(s.c);
}

/**
 * Sends the settlement in flight, forming one from the unsettled receipts if there is none, and arms its resend
 * timer. Called only with a settlement in flight or receipts to settle.
 */
function sendSettlement(s: Step): void {
  const c = s.c;
  const settling = c.settling ?? { request: settleBatch(c)!, attempts: 0 };
  if (c.settling === undefined) c.settleSeq += 1;
  c.settling = { ...settling, attempts: settling.attempts + 1 };
  c.settlement = 'sending';
  const shard = shardOf(settling.request.proofs[0]!.meansId, c.input.shardCount);
  s.e.sendTo('link', { type: 'link.send', to: serverAddress(shard), message: settling.request });
  s.e.raise({ type: 'settlement.retry' }, { id: 'settlement.retry', delay: retryDelayMs(c.input.retry, c.settling.attempts, settling.request.reqId) });
}

/**
 * Starts a settlement when the loop is idle, the link is up and receipts wait. Every step that can make this
 * true (the link comes up, a receipt is kept, the loop returns to idle) ends with it, so an idle loop never sits
 * with receipts to settle and a link to send them on.
 */
function settleIfDue(s: Step): void {
  const c = s.c;
  if (c.settlement === 'idle' && c.linkUp && c.unsettled.length > 0) sendSettlement(s);
}

export const posMachine = setup({
  types: { context: {} as PosContext, events: {} as PosEvent, input: {} as PosInput, emitted: {} as PosEmitted },
  actors: { link: disconnectedLink, nearLink: disconnectedNearLink },
  guards: {
    isResponseForSale: ({ context, event }) => event.type === 'near.response' && event.response.orderId === context.sale?.order.orderId,
    // Only the answer to the request in flight counts, and only if SD signed it for this POS [INV-6].
    isSettleResult: ({ context, event }) =>
      context.settlement === 'sending' &&
      event.type === 'link.message' &&
      event.message.kind === 'result' &&
      event.message.reqId === context.settling?.request.reqId &&
      event.message.to === context.input.posId &&
      verifyResult(context.input.scheme, context.input.serverPublicKey, event.message),
    isSending: ({ context }) => context.settlement === 'sending',
    isRefused: ({ context }) => context.settlement === 'refused',
  },
  actions: {
    forwardCoverage: sendTo('link', ({ event }) => ({ type: 'link.coverage', inCoverage: (event as { inCoverage: boolean }).inCoverage }) as LinkCommand),
    startSale: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, enqueue, (s) => {
        if (event.type !== 'pos.sale') return;
        const c = s.c;
        const orderId = `${c.input.posId}:o${c.saleSeq}`;
        const startedAtMs = c.input.now();
        const order = saleOrder(c.input, orderId, event, saleNonce(c.input, orderId, startedAtMs));
        c.saleSeq += 1;
        c.sale = { order, terminalId: event.terminalId, startedAtMs };
        s.e.sendTo('nearLink', { type: 'near.order', to: event.terminalId, order });
        s.e.raise({ type: 'sale.timeout' }, { id: 'sale.timeout', delay: c.input.saleTimeoutMs ?? DEFAULT_SALE_TIMEOUT_MS });
      }),
    ),
    refuseBusySale: emit(({ context, event }) => {
      const order = saleOrder(context.input, `${context.input.posId}:busy`, event as Extract<PosEvent, { type: 'pos.sale' }>);
      return { type: 'pos.declined' as const, posId: context.input.posId, order, reason: 'posBusy' };
    }),
    /** Keeps a verified receipt (and settles it if the loop is free) or reports why the sale failed. */
    finishSale: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, enqueue, (s) => {
        if (event.type !== 'near.response' || !context.sale) return;
        const c = s.c;
        const { order, startedAtMs } = context.sale;
        s.e.cancel('sale.timeout');
        c.sale = undefined;
        if (isProofForSale(c.input, order, event.response, c.receivedTxIds)) {
          c.unsettled = [...c.unsettled, event.response.proof];
          c.receivedTxIds = [...c.receivedTxIds.slice(-(RECEIVED_TX_MEMORY - 1)), event.response.proof.txId];
          s.e.emit({ type: 'pos.receipt', posId: c.input.posId, proof: event.response.proof, order, startedAtMs });
        } else {
          // A refusal that its proxy did not sign is reported as such: it proves nothing about the customer's means.
          const reason = event.response.ok ? 'proofRejected' : isSignedRefusal(c.input, event.response) ? event.response.reason : 'unsignedRefusal';
          s.e.emit({ type: 'pos.declined', posId: c.input.posId, order, reason });
        }
        settleIfDue(s);
      }),
    ),
    abandonSale: enqueueActions(({ context, enqueue }) => {
      if (!context.sale) return;
      enqueue.emit({ type: 'pos.declined', posId: context.input.posId, order: context.sale.order, reason: 'saleTimeout' });
      enqueue.assign({ sale: undefined });
    }),
    /** The link is up: receipts waiting for it are settled now. */
    reconnect: enqueueActions(({ context, enqueue }) =>
      runStep(context, enqueue, (s) => {
        s.c.linkUp = true;
        settleIfDue(s);
      }),
    ),
    /** The link is down: a request in flight keeps its resend timer, which finds the link down and waits. */
    disconnect: assign({ linkUp: false }),
    /** SD answered the settlement in flight: a refusal waits before the next try, an acknowledgement clears receipts. */
    applySettlement: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, enqueue, (s) => {
        if (event.type !== 'link.message' || event.message.kind !== 'result') return;
        const c = s.c;
        const result = event.message;
        s.e.cancel('settlement.retry');
        // A refusal SD did not store (the copy it got was altered in flight, or the POS is not registered yet)
        // says nothing of this request: it is kept and resent as it was after the wait. Any other answer ends it.
        const keepRequest = !result.ok && UNSTORED_REFUSAL_CODES.has(result.code);
        if (!keepRequest) c.settling = undefined;
        if (!result.ok) {
          // SD refused the batch (a proof it could not verify, or a POS it does not know): keep the receipts, and
          // try again only after a growing wait, since trying at once would get the same answer at once.
          c.settleRefusals += 1;
          c.settlement = 'refused';
          s.e.emit({ type: 'pos.settleRefused', posId: c.input.posId, txIds: context.settling?.request.proofs.map((p) => p.txId) ?? [], code: result.code });
          s.e.raise({ type: 'settlement.afterRefusal' }, { id: 'settlement.afterRefusal', delay: retryDelayMs(c.input.retry, c.settleRefusals, `${c.input.posId}#refused`) });
          return;
        }
        const done = acknowledgedTxIds(result);
        // A receipt SD refused alone (its proof's own signature fails) would be refused again in every batch: it
        // leaves the unsettled receipts, reported, and no longer holds back the others.
        const refusedAlone = new Set(result.refused ?? []);
        if (refusedAlone.size > 0) s.e.emit({ type: 'pos.settleRefused', posId: c.input.posId, txIds: [...refusedAlone], code: 'badProofSignature' });
        c.settleRefusals = 0;
        c.unsettled = c.unsettled.filter((p) => !done.has(p.txId) && !refusedAlone.has(p.txId));
        c.settledCount += done.size;
        c.settlement = 'idle';
        s.e.emit({ type: 'pos.settled', posId: c.input.posId, txIds: [...done] });
        settleIfDue(s);
      }),
    ),
    /**
     * No answer in time: resend the same request while the link is up; otherwise the loop goes idle, keeping the
     * request for when the link comes back (the link is down, so no settlement is due now).
     */
    retrySettlement: enqueueActions(({ context, enqueue }) =>
      runStep(context, enqueue, (s) => {
        if (context.linkUp) sendSettlement(s);
        else s.c.settlement = 'idle';
      }),
    ),
    resumeAfterRefusal: enqueueActions(({ context, enqueue }) =>
      runStep(context, enqueue, (s) => {
        s.c.settlement = 'idle';
        settleIfDue(s);
      }),
    ),
  },
}).createMachine({
  id: 'pos',
  context: ({ input }) => ({ input, linkUp: false, saleSeq: 1, settleSeq: 1, unsettled: [], settlement: 'idle', settledCount: 0, settleRefusals: 0, receivedTxIds: [] }),
  invoke: [
    { src: 'link', id: 'link', input: ({ context }) => ({ endpointId: context.input.posId, role: 'pos' as const, inCoverage: context.input.inCoverage }) },
    { src: 'nearLink', id: 'nearLink', input: ({ context }) => ({ endpointId: context.input.posId }) },
  ],
  on: {
    coverage: { actions: 'forwardCoverage' },
    'link.up': { actions: 'reconnect' },
    'link.down': { actions: 'disconnect' },
    'link.message': { guard: 'isSettleResult', actions: 'applySettlement' },
    'settlement.retry': { guard: 'isSending', actions: 'retrySettlement' },
    'settlement.afterRefusal': { guard: 'isRefused', actions: 'resumeAfterRefusal' },
  },
  initial: 'ready',
  states: {
    ready: { on: { 'pos.sale': { target: 'awaitingPayer', actions: 'startSale' } } },
    awaitingPayer: {
      on: {
        'near.response': { guard: 'isResponseForSale', target: 'ready', actions: 'finishSale' },
        'pos.sale': { actions: 'refuseBusySale' },
        'sale.timeout': { target: 'ready', actions: 'abandonSale' },
      },
    },
  },
});
