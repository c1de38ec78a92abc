// Goal: TP, the shop's point of sale. It sends proximity payment orders to a customer's terminal over the near
// link (ICP), which works without network coverage, checks the signed proof it gets back, keeps the receipt,
// and settles its receipts with SD over its own link so the merchant is credited even if the terminal never
// remits.
// Method: one sale at a time (`selling`), and alongside it a settlement loop that sends the unsettled receipts of
// one shard at a time and resends on a backoff until SD acknowledges. I/O only through `link` and `nearLink`.

import { and, assign, emit, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { LinkCommand, LinkEvent, LinkInput, NearLinkCommand, NearLinkEvent } from './link.ts';
import { serverAddress, shardOf } from './link.ts';
import type { PaymentOrder, Proof, ProxyResponse, ServerResult, SettleRequest } from './messages.ts';
import { verifyClaim, type SignatureScheme, type SigningKey } from './domain/signature.ts';
import { signRequest, verifyResult } from './domain/requests.ts';
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

export interface PosContext {
  input: PosInput;
  linkUp: boolean;
  saleSeq: number;
  settleSeq: number;
  sale?: PendingSale;
  /** Receipts not yet acknowledged by SD. */
  unsettled: Proof[];
  settling?: { request: SettleRequest; attempts: number };
  settledCount: number;
  /** Settlements SD refused in a row; the wait before the next try grows with it. */
  settleRefusals: number;
}

export type PosEvent =
  | { type: 'pos.sale'; terminalId: string; meansId: string; amountMinor: number }
  | { type: 'coverage'; inCoverage: boolean }
  | LinkEvent
  | NearLinkEvent;

export type PosEmitted =
  | { type: 'pos.receipt'; posId: string; proof: Proof; order: PaymentOrder; startedAtMs: number }
  | { type: 'pos.declined'; posId: string; order: PaymentOrder; reason: string }
  | { type: 'pos.settled'; posId: string; txIds: string[] }
  | { type: 'pos.settleRefused'; posId: string; txIds: string[]; code: string };

const DEFAULT_SALE_TIMEOUT_MS = 120_000;
const DEFAULT_SETTLE_BATCH = 50;

/** [INV-5 beneficiary] A proof is kept only if a known proxy signed it, for this merchant and this sale. */
export function isProofForSale(input: PosInput, order: PaymentOrder, response: ProxyResponse): response is Extract<ProxyResponse, { ok: true }> {
  if (!response.ok || response.orderId !== order.orderId) return false;
  const proof = response.proof;
  const publicKey = input.proxyPublicKeyOf(proof.proxyId);
  return (
    publicKey !== undefined &&
    proof.amountMinor === order.amountMinor &&
    proof.payee === input.merchantId &&
    proof.meansId === order.meansId &&
    verifyClaim(input.scheme, publicKey, proof, proof.sig)
  );
}

function settleBatch(context: PosContext): SettleRequest | undefined {
  const first = context.unsettled[0];
  if (!first) return undefined;
  const shard = shardOf(first.meansId, context.input.shardCount);
  const proofs = context.unsettled
    .filter((p) => shardOf(p.meansId, context.input.shardCount) === shard)
    .slice(0, context.input.settleBatchSize ?? DEFAULT_SETTLE_BATCH);
  return signRequest<SettleRequest>(context.input.key, { kind: 'settle', reqId: `${context.input.posId}:s${context.settleSeq}`, from: context.input.posId, proofs });
}

const disconnectedLink = fromCallback<LinkCommand, LinkInput>(() => undefined);
const disconnectedNearLink = fromCallback<NearLinkCommand, { endpointId: string }>(() => undefined);

export const posMachine = setup({
  types: { context: {} as PosContext, events: {} as PosEvent, input: {} as PosInput, emitted: {} as PosEmitted },
  actors: { link: disconnectedLink, nearLink: disconnectedNearLink },
  delays: {
    saleTimeout: ({ context }) => context.input.saleTimeoutMs ?? DEFAULT_SALE_TIMEOUT_MS,
    settleRetry: ({ context }) => retryDelayMs(context.input.retry, context.settling?.attempts ?? 1, context.settling?.request.reqId ?? context.input.posId),
    settleAfterRefusal: ({ context }) => retryDelayMs(context.input.retry, context.settleRefusals, `${context.input.posId}#refused`),
  },
  guards: {
    isResponseForSale: ({ context, event }) => event.type === 'near.response' && event.response.orderId === context.sale?.order.orderId,
    isSettleResult: ({ context, event }) =>
      event.type === 'link.message' &&
      event.message.kind === 'result' &&
      event.message.reqId === context.settling?.request.reqId &&
      event.message.to === context.input.posId &&
      verifyResult(context.input.scheme, context.input.serverPublicKey, event.message),
    isSettleRefusal: ({ context, event }) => event.type === 'link.message' && event.message.kind === 'result' && !event.message.ok && event.message.reqId === context.settling?.request.reqId,
    hasUnsettled: ({ context }) => context.unsettled.length > 0,
    isLinkUp: ({ context }) => context.linkUp,
  },
  actions: {
    startSale: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'pos.sale') return;
      const order: PaymentOrder = {
        orderId: `${context.input.posId}:o${context.saleSeq}`,
        source: { kind: 'pos', posId: context.input.posId },
        type: 'proximity',
        meansId: event.meansId,
        amountMinor: event.amountMinor,
        payee: context.input.merchantId,
      };
      enqueue.assign({ saleSeq: context.saleSeq + 1, sale: { order, terminalId: event.terminalId, startedAtMs: context.input.now() } });
      enqueue.sendTo('nearLink', { type: 'near.order', to: event.terminalId, order } as NearLinkCommand);
    }),
    refuseBusySale: emit(({ context, event }) => {
      const sale = event as Extract<PosEvent, { type: 'pos.sale' }>;
      const order: PaymentOrder = { orderId: `${context.input.posId}:busy`, source: { kind: 'pos', posId: context.input.posId }, type: 'proximity', meansId: sale.meansId, amountMinor: sale.amountMinor, payee: context.input.merchantId };
      return { type: 'pos.declined' as const, posId: context.input.posId, order, reason: 'posBusy' };
    }),
    finishSale: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'near.response' || !context.sale) return;
      const { order, startedAtMs } = context.sale;
      enqueue.assign({ sale: undefined });
      if (isProofForSale(context.input, order, event.response)) {
        enqueue.assign({ unsettled: [...context.unsettled, event.response.proof] });
        enqueue.emit({ type: 'pos.receipt', posId: context.input.posId, proof: event.response.proof, order, startedAtMs });
      } else {
        const reason = event.response.ok ? 'proofRejected' : event.response.reason;
        enqueue.emit({ type: 'pos.declined', posId: context.input.posId, order, reason });
      }
    }),
    abandonSale: enqueueActions(({ context, enqueue }) => {
      if (!context.sale) return;
      enqueue.emit({ type: 'pos.declined', posId: context.input.posId, order: context.sale.order, reason: 'saleTimeout' });
      enqueue.assign({ sale: undefined });
    }),
    forwardCoverage: sendTo('link', ({ event }) => ({ type: 'link.coverage', inCoverage: (event as { inCoverage: boolean }).inCoverage }) as LinkCommand),
    markLinkUp: assign({ linkUp: true }),
    markLinkDown: assign({ linkUp: false }),
    /** Sends the settlement in flight, forming one from the unsettled receipts if there is none. */
    sendSettlement: enqueueActions(({ context, enqueue }) => {
      const settling = context.settling ?? (() => {
        const request = settleBatch(context);
        return request ? { request, attempts: 0 } : undefined;
      })();
      if (!settling) return;
      const shard = shardOf(settling.request.proofs[0]!.meansId, context.input.shardCount);
      enqueue.assign({ settling: { ...settling, attempts: settling.attempts + 1 }, settleSeq: context.settling ? context.settleSeq : context.settleSeq + 1 });
      enqueue.sendTo('link', { type: 'link.send', to: serverAddress(shard), message: settling.request } as LinkCommand);
    }),
    applySettlement: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'link.message' || event.message.kind !== 'result') return;
      const result = event.message as ServerResult;
      if (!result.ok) {
        // SD refused the batch (a proof it could not verify, or a POS it does not know): keep the receipts, and
        // try again only after a growing wait, since trying at once would get the same answer at once.
        enqueue.assign({ settling: undefined, settleRefusals: context.settleRefusals + 1 });
        enqueue.emit({ type: 'pos.settleRefused', posId: context.input.posId, txIds: context.settling?.request.proofs.map((p) => p.txId) ?? [], code: result.code });
        return;
      }
      const done = new Set([...(result.posted ?? []), ...(result.alreadyPosted ?? [])]);
      enqueue.assign({
        settling: undefined,
        settleRefusals: 0,
        unsettled: context.unsettled.filter((p) => !done.has(p.txId)),
        settledCount: context.settledCount + done.size,
      });
      enqueue.emit({ type: 'pos.settled', posId: context.input.posId, txIds: [...done] });
    }),
  },
}).createMachine({
  id: 'pos',
  context: ({ input }) => ({ input, linkUp: false, saleSeq: 1, settleSeq: 1, unsettled: [], settledCount: 0, settleRefusals: 0 }),
  invoke: [
    { src: 'link', id: 'link', input: ({ context }) => ({ endpointId: context.input.posId, role: 'pos' as const, inCoverage: context.input.inCoverage }) },
    { src: 'nearLink', id: 'nearLink', input: ({ context }) => ({ endpointId: context.input.posId }) },
  ],
  type: 'parallel',
  on: {
    coverage: { actions: 'forwardCoverage' },
    'link.up': { actions: 'markLinkUp' },
    'link.down': { actions: 'markLinkDown' },
  },
  states: {
    selling: {
      initial: 'ready',
      states: {
        ready: { on: { 'pos.sale': { target: 'awaitingPayer', actions: 'startSale' } } },
        awaitingPayer: {
          on: {
            'near.response': { guard: 'isResponseForSale', target: 'ready', actions: 'finishSale' },
            'pos.sale': { actions: 'refuseBusySale' },
          },
          after: { saleTimeout: { target: 'ready', actions: 'abandonSale' } },
        },
      },
    },
    settlement: {
      initial: 'idle',
      states: {
        idle: {
          always: { guard: ({ context }) => context.linkUp && context.unsettled.length > 0, target: 'sending' },
        },
        sending: {
          entry: 'sendSettlement',
          on: {
            'link.message': [
              { guard: and(['isSettleResult', 'isSettleRefusal']), target: 'refused', actions: 'applySettlement' },
              { guard: 'isSettleResult', target: 'idle', actions: 'applySettlement' },
            ],
          },
          after: { settleRetry: [{ guard: 'isLinkUp', target: 'sending', reenter: true }, { target: 'idle' }] },
        },
        refused: {
          after: { settleAfterRefusal: { target: 'idle' } },
        },
      },
    },
  },
});
