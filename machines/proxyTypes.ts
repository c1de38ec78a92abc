// Goal: the payment proxy's (PP's) vocabulary — its input, its context, the events it takes and the events it
// emits — in one module that the machine (proxy.ts) and its steps (proxyFlow.ts, proxyOrders.ts,
// proxyOutbox.ts) all read, so none of them imports another for a type.
// Method: plain TypeScript types; proxy.ts re-exports them, so callers keep importing from './proxy.ts'.

import type { LinkEvent, NearLinkEvent } from './link.ts';
import type { PaymentOrder, Proof, ProxyResponse, RemitNow } from './messages.ts';
import type { ConfirmationKind } from './domain/confirmation.ts';
import type { ProxyPolicy, ProxyState, RemotePayment } from './domain/proxyRules.ts';
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
  /** What the decision saw (set when the proxy decides): the oracle re-derives the route from it. */
  decidedWith?: DecisionContext;
}

/** Coverage (∃φ) and the unremitted backlog when the proxy discriminated the order (steps B2, offline caps). */
export interface DecisionContext {
  inCoverage: boolean;
  pendingCount: number;
  pendingAmountMinor: number;
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
  /** SD's signed request to remit now, handed in by the terminal (the app's server relays it) or by a harness. */
  | { type: 'remit.now'; request: RemitNow }
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
      /** What the discrimination saw; absent when the order never reached it (user, PIN, confirmation timeout). */
      decidedWith?: DecisionContext;
      /**
       * The transaction of a remote payment declined to its app after its request went to SD (SD refused it, or no
       * answer came in time and a reversal was queued): SD must end holding nothing and paying nothing for it [INV-4].
       */
      declinedRemoteTxId?: string;
    }
  | { type: 'proxy.remitted'; txs: Proof[]; reqId: string; ackAtMs: number }
  | { type: 'proxy.acknowledged'; reqId: string; requestKind: string; ackAtMs: number }
  | { type: 'proxy.refused'; reason: string }
  | { type: 'proxy.inform'; orderId: string; amountMinor: number; payee: string };

export const DEFAULT_CONFIRM_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_QUEUED = 16;
