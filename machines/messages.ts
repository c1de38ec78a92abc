// Goal: the messages that cross a link — the payment API (APIP) between apps or POS and the proxy, and the
// protocol between proxies, POS units and the payment servers (K1 remote payments, K2 remittances, sync,
// settlement). The broker's topic contract validates against these shapes; the machines produce and consume them.
// Method: plain JSON-serialisable data, discriminated by `kind`. Money moves only in messages that carry a
// signature; every request carries a `reqId` unique for its sender, so a message delivered twice is answered
// twice with the same result and changes nothing the second time.

import type { Minor } from './domain/money.ts';
import type { PaymentPath, PaymentType } from './domain/discriminate.ts';
import type { PaymentClaim, ServerOutcome } from './domain/signature.ts';

// ---------------------------------------------------------------- payment API (app or POS → proxy)

/** M1: a payment order from an app on the terminal, or from a POS over the near link. */
export interface PaymentOrder {
  orderId: string;
  source: { kind: 'app'; appId: string } | { kind: 'pos'; posId: string };
  type: PaymentType;
  meansId: string;
  amountMinor: Minor;
  /** The beneficiary: a merchant or an app operator's account id. */
  payee: string;
  /** For telepayments: pay now ('debit') or authorise now and confirm later ('authCapture'). */
  remoteMode?: 'debit' | 'authCapture';
  /** With authCapture: how long after authorisation the app confirms (delivery of the goods). */
  captureAfterMs?: number;
  /** A POS's unpredictable number for this sale; the proxy signs it into the proof (see PaymentClaim). */
  nonce?: string;
}

/**
 * A proof of payment: the proxy's signed claim (its path included), and for a remote payment SD's compact receipt —
 * what SD did (`serverOutcome`) and SD's signature over the proof's txId, means, payee, amount and that outcome
 * (signature.ts: serverReceiptFields).
 */
export interface Proof extends PaymentClaim {
  sig: string;
  path: PaymentPath;
  serverOutcome?: ServerOutcome;
  serverSig?: string;
}

/**
 * r: the proxy's response to an order. A refusal is signed by the proxy over its id, the order and the reason
 * (signature.ts: refusalFields), so a holder can show who declined and why.
 */
export type ProxyResponse =
  | { orderId: string; ok: true; proof: Proof }
  | { orderId: string; ok: false; reason: string; proxyId?: string; sig?: string };

// ---------------------------------------------------------------- protocol (proxy or POS → server)

/** A locally approved transaction, as remitted in a grouped remittance. */
export type SignedTx = Proof;

export interface AggregateEntry {
  meansId: string;
  payee: string;
  sumMinor: Minor;
  txIds: string[];
  /**
   * The signature counters of the covered transactions, one per txId in the same order (strictly increasing).
   * They are the counter range the aggregate covers, with its gaps: an aggregate of one (means, payee) skips the
   * counters the proxy used for other payees, other means and remote payments, so a bare [from, to] would overlap
   * its honest neighbours. SD records each counter against its txId and refuses an aggregate that reuses one
   * [INV-6 replay], as it does for a grouped remittance.
   */
  counters: number[];
}

interface RequestBase {
  reqId: string;
  /** The sender: a proxy id or a POS id. The broker checks it matches the connected client. */
  from: string;
  sig: string;
}

/** K1 authorisation: places a hold; confirmed later by `capture` or given back by `release`. */
export interface AuthRequest extends RequestBase { kind: 'auth'; claim: PaymentClaim }
/** K1 debit: pays at once. */
export interface DebitRequest extends RequestBase { kind: 'debit'; claim: PaymentClaim }
export interface CaptureRequest extends RequestBase { kind: 'capture'; txId: string; amountMinor: Minor }
export interface ReleaseRequest extends RequestBase { kind: 'release'; txId: string }
/** K2 remittance, grouped (each transaction with its own signature) or aggregate (sums and the ids they cover). */
export type RemitRequest =
  | (RequestBase & { kind: 'remit'; mode: 'grouped'; transactions: SignedTx[] })
  | (RequestBase & { kind: 'remit'; mode: 'aggregate'; aggregates: AggregateEntry[] });
/** Asks SD for the authoritative local balance SL of a means. */
export interface SyncRequest extends RequestBase { kind: 'sync'; meansId: string }
/**
 * Moves local value between a funding means and a purse on the SIM (domain/localValue.ts): `amountMinor` from the
 * funding means into the purse (a reload, a purchase, a subscription period) and `leftoverMinor` of expired value
 * from the purse to the operator. `granted`: the SIM has already given itself the value (a recurring amount reset
 * at its period boundary, offline too), so SD applies it whatever the funding means holds; otherwise SD refuses
 * with insufficientFunds what the funding means cannot pay, and the SIM gets nothing.
 */
export interface ReloadRequest extends RequestBase {
  kind: 'reload';
  purseMeansId: string;
  fundingMeansId: string;
  amountMinor: Minor;
  leftoverMinor: Minor;
  granted: boolean;
}
/** A POS hands in the proofs it collected, so the merchant is credited even if the terminal never remits. */
export interface SettleRequest extends RequestBase { kind: 'settle'; proofs: Proof[] }

export type ServerRequest = AuthRequest | DebitRequest | CaptureRequest | ReleaseRequest | RemitRequest | SyncRequest | SettleRequest | ReloadRequest;
export type RequestKind = ServerRequest['kind'];

/** SD's view of a means after handling a request: the figure a proxy syncs SL from. */
export interface BalanceFigure {
  meansId: string;
  availableMinor: Minor;
  /** Increases with every change to the means' account, so a stale figure can be recognised. */
  version: number;
}

/** SD's answer; `serverSig` covers `resultFields(result)`. */
export interface ServerResult {
  kind: 'result';
  reqId: string;
  /** Who the result is for (the request's `from`). */
  to: string;
  requestKind: RequestKind;
  ok: boolean;
  /** 'ok', or why not: 'insufficientFunds', 'badSignature', 'idConflict', 'replayedCounter', 'unknownMeans', … */
  code: string;
  reason?: string;
  txId?: string;
  balances?: BalanceFigure[];
  /** remit/settle: transaction ids posted by this request, and those found already posted. */
  posted?: string[];
  alreadyPosted?: string[];
  /**
   * settle/remit: transaction ids refused one by one (a proof whose own signature does not verify, or signed by
   * an unregistered proxy): the rest of the batch is posted, so one bad proof cannot block the others.
   */
  refused?: string[];
  /** auth/debit ok: SD's signature over the payment's compact receipt, which the proxy puts in its proof. */
  receiptSig?: string;
  serverSig: string;
}

/**
 * SD asks a proxy to remit now (the patent's explicit request, from SD or from the app's server through SD). It is
 * signed by SD over `remitNowFields` (domain/requests.ts): the proxy acts on it only if SD's signature verifies, it
 * is addressed to this proxy, and its id is not one it has acted on already (a replay).
 */
export interface RemitNow {
  kind: 'remitNow';
  reqId: string;
  /** The server (or `sd` for SD as a whole) that asked. */
  from: string;
  to: string;
  /** When SD asked (its clock), part of what it signs. */
  issuedAtMs: number;
  sig: string;
}

export type ServerMessage = ServerResult | RemitNow;
export type LinkMessage = ServerRequest | ServerMessage;
