// Goal: how a payment server (SD) answers each request from a proxy or a POS: K1 authorisations, debits,
// captures and releases, K2 remittances (grouped or aggregate), syncs of SL, and POS settlements.
// Method: one pure-ish function over the ledger. In order: the shape is checked; a (from, reqId) seen before is
// answered with its stored result (or `idConflict` if the payload differs); the sender's signature is checked
// against its registered key [INV-6 signatures]; then the request's rule runs inside one store transaction,
// which also stores the signed result, so the write is done before the result is returned. A refusal rolls the
// ledger back. A refused request whose signature verified still has its answer stored, so that a duplicate
// delivered later gets the same refusal instead of, say, a debit the proxy already told the user was declined.
// Requests that fail authentication store nothing, so a forger cannot take a reqId from its rightful sender;
// the codes of those unstored refusals are requests.ts's UNSTORED_REFUSAL_CODES, which the proxy reads as
// "resend as it was".
// A `release` is the proxy's reversal of a remote payment it declined to its app; it answers ok with code
// `released`, `reversed` or `voided` (see Ledger.reverse), so the proxy's outbox item is acknowledged whichever
// order the payment and the reversal reached SD in.

import { DomainError, isMinor } from './money.ts';
import { canonicalEncoding, signServerReceipt, verifyClaim, type PaymentClaim, type SignatureScheme, type SigningKey } from './signature.ts';
import { UNSTORED_REFUSAL_CODES, requestFields, signResult, verifyRequest } from './requests.ts';
import type { Ledger } from './ledger.ts';
import type { BalanceFigure, Proof, ServerRequest, ServerResult } from '../messages.ts';

export interface ServerContext {
  scheme: SignatureScheme;
  serverKey: SigningKey;
  /** The registered public key of a proxy or POS unit; undefined when the id is not registered. */
  publicKeyOf(id: string): string | undefined;
  nowMs: number;
}

/** What a rule adds to an ok answer; `code` replaces 'ok' when the rule says more (a release's outcome). */
type Outcome = Pick<ServerResult, 'txId' | 'balances' | 'posted' | 'alreadyPosted' | 'refused' | 'receiptSig'> & { code?: string };

export function handleRequest(ledger: Ledger, req: ServerRequest, ctx: ServerContext): ServerResult {
  const shapeProblem = shapeProblemOf(req);
  if (shapeProblem) return answer(ctx, req, { ok: false, code: 'malformed', reason: shapeProblem });

  const store = ledger.store;
  const fingerprint = canonicalEncoding(requestFields(req));
  const stored = store.getResult(req.from, req.reqId);
  if (stored) {
    if (stored.fingerprint === fingerprint) return stored.result;
    return answer(ctx, req, { ok: false, code: 'idConflict', reason: `request ${req.reqId} was already made with another payload` });
  }

  // [INV-6 signatures] an unknown sender or a signature that does not cover these exact fields changes nothing.
  const publicKey = ctx.publicKeyOf(req.from);
  if (publicKey === undefined) return answer(ctx, req, { ok: false, code: 'unknownSender', reason: `${req.from} is not registered` });
  if (!verifyRequest(ctx.scheme, publicKey, req)) return answer(ctx, req, { ok: false, code: 'badSignature', reason: `the signature of ${req.reqId} does not verify` });

  try {
    return store.transaction(() => {
      const result = answer(ctx, req, { ok: true, code: 'ok', ...applyRule(ledger, req, ctx, publicKey) });
      store.putResult(req.from, req.reqId, { fingerprint, result });
      return result;
    });
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    // A rule's refusal is stored, so its code must not be one a sender reads as "not stored, resend".
    const code = UNSTORED_REFUSAL_CODES.has(error.code) ? `rule:${error.code}` : error.code;
    const result = answer(ctx, req, { ok: false, code, reason: error.message, ...figuresAfterRefusal(ledger, req) });
    store.transaction(() => store.putResult(req.from, req.reqId, { fingerprint, result }));
    return result;
  }
}

/** Runs the request's rule; throws a DomainError to refuse (the caller's transaction then rolls back). */
function applyRule(ledger: Ledger, req: ServerRequest, ctx: ServerContext, senderKey: string): Outcome {
  const requestId = `${req.from}/${req.reqId}`;
  switch (req.kind) {
    case 'auth':
    case 'debit': {
      // The request's own signature covers the claim's fields, so only its sender and counter are left to check.
      const claim = req.claim;
      checkSender(claim, req.from);
      useCounter(ledger, claim);
      const payment = { txId: claim.txId, meansId: claim.meansId, payee: claim.payee, amountMinor: claim.amountMinor };
      // A txId the proxy voided (its release overtook this request) is refused with `voided` by the ledger.
      if (req.kind === 'auth') ledger.hold({ ...payment, proxyId: claim.proxyId });
      else ledger.debit({ ...payment, requestId, proxyId: claim.proxyId });
      // [INV-5] SD's signed receipt of exactly this payment goes into the proxy's proof.
      const receiptSig = signServerReceipt(ctx.serverKey, claim, req.kind === 'auth' ? 'authorised' : 'debited');
      return { txId: claim.txId, balances: [ledger.balanceOf(claim.meansId)], receiptSig };
    }
    case 'capture': {
      const hold = ledger.holdOf(req.txId);
      if (!hold) throw new DomainError('unknownHold', `no authorisation ${req.txId}`, req.txId);
      if (hold.proxyId !== req.from) throw new DomainError('senderMismatch', `${req.from} did not authorise ${req.txId}`, req.from);
      ledger.capture({ txId: req.txId, amountMinor: req.amountMinor, requestId });
      return { txId: req.txId, balances: [ledger.balanceOf(hold.meansId)] };
    }
    case 'release': {
      // Only the proxy that made the payment may undo it; the ledger checks that against the hold or posting.
      const outcome = ledger.reverse({ txId: req.txId, proxyId: req.from, requestId });
      return { code: outcome.code, txId: req.txId, balances: outcome.meansId === undefined ? undefined : [ledger.balanceOf(outcome.meansId)] };
    }
    case 'sync':
      return { balances: [ledger.balanceOf(req.meansId)] };
    case 'reload':
      // The request's signature covers every field; the ledger checks the purse is the sender's, funded by that means.
      ledger.fundPurse({ transferId: `lv:${requestId}`, proxyId: req.from, purseMeansId: req.purseMeansId, fundingMeansId: req.fundingMeansId, amountMinor: req.amountMinor, leftoverMinor: req.leftoverMinor, granted: req.granted });
      return { balances: [ledger.balanceOf(req.fundingMeansId)] };
    case 'remit':
      if (req.mode === 'grouped') {
        return postProofs(ledger, ctx, req.transactions, requestId, 'remit', (tx) => {
          checkSender(tx, req.from);
          return senderKey;
        });
      }
      return postAggregates(ledger, req.aggregates, requestId, req.from);
    case 'settle':
      // Proofs come from any proxy; each verifies against the key of the proxy that signed it (none: refused alone).
      return postProofs(ledger, ctx, req.proofs, requestId, 'settle', (proof) => ctx.publicKeyOf(proof.proxyId));
  }
}

/**
 * Grouped remittance or settlement: each signed claim is posted unless it is on the ledger already. A proof whose
 * own signature does not verify (or whose proxy is not registered) is refused alone and listed in `refused`: the
 * request's signature verified, so the batch is its sender's, and posting the good proofs while naming the bad one
 * is what a store-and-forward batch upload does with a rejected item (ISO 8583 advice items are answered one by
 * one) — refusing the whole batch would make the POS rebuild it with the same bad proof for ever. A proof
 * that appears twice in one batch (a POS that got the same proof for two sales before it remembered txIds, a
 * proxy that remitted a resent transaction twice) is posted once and the copy is reported as already posted:
 * refusing the whole batch for it would make its sender rebuild the same batch for ever and jam the shard's
 * settlement, as a store-and-forward terminal's batch upload drops duplicate items instead of the batch.
 */
function postProofs(
  ledger: Ledger,
  ctx: ServerContext,
  proofs: readonly Proof[],
  requestId: string,
  via: 'remit' | 'settle',
  keyFor: (proof: Proof) => string | undefined,
): Outcome {
  const seen = new Set<string>();
  const posted: string[] = [];
  const alreadyPosted: string[] = [];
  const refused: string[] = [];
  const touched = new Set<string>();
  for (const proof of proofs) {
    if (seen.has(proof.txId)) {
      alreadyPosted.push(proof.txId);
      continue;
    }
    seen.add(proof.txId);
    const key = keyFor(proof);
    // [INV-6 signatures] an altered amount, payee or means breaks the proxy's signature over the claim: that proof
    // is refused (and stored so, with the request's answer), the others of the batch are posted.
    if (key === undefined || !verifyClaim(ctx.scheme, key, claimOf(proof), proof.sig)) {
      refused.push(proof.txId);
      continue;
    }
    useCounter(ledger, proof);
    const outcome = ledger.postPayment({ txId: proof.txId, meansId: proof.meansId, payee: proof.payee, amountMinor: proof.amountMinor, requestId, proxyId: proof.proxyId }, via);
    // [INV-4 nothing twice] a transaction found on the ledger is reported, never posted again.
    (outcome.alreadyPosted ? alreadyPosted : posted).push(proof.txId);
    touched.add(proof.meansId);
  }
  return { posted, alreadyPosted, refused: refused.length > 0 ? refused : undefined, balances: figures(ledger, touched) };
}

/**
 * Aggregate remittance: each entry's sum is posted against the transactions it names. The request's signature
 * covers the entries with their counters; each counter is recorded against its txId, so an aggregate that
 * reuses a counter of another transaction (a replay under new ids, an overlap with an earlier aggregate) is
 * refused as a grouped remittance would be [INV-6 replay].
 */
function postAggregates(ledger: Ledger, entries: Extract<ServerRequest, { mode: 'aggregate' }>['aggregates'], requestId: string, proxyId: string): Outcome {
  const seen = new Set<string>();
  for (const entry of entries) {
    for (const [i, txId] of entry.txIds.entries()) {
      if (seen.has(txId)) throw new DomainError('badRequest', `transaction ${txId} appears twice`, txId);
      seen.add(txId);
      useCounter(ledger, { proxyId, counter: entry.counters[i]!, txId });
    }
  }
  const posted: string[] = [];
  const alreadyPosted: string[] = [];
  const touched = new Set<string>();
  entries.forEach((entry, index) => {
    const outcome = ledger.postAggregate({ id: `${requestId}#${index}`, ...entry, requestId });
    posted.push(...outcome.posted);
    alreadyPosted.push(...outcome.alreadyPosted);
    touched.add(entry.meansId);
  });
  return { posted, alreadyPosted, balances: figures(ledger, touched) };
}

function checkSender(claim: PaymentClaim, from: string): void {
  if (claim.proxyId !== from) throw new DomainError('senderMismatch', `transaction ${claim.txId} is signed for ${claim.proxyId}, sent by ${from}`, claim.proxyId);
}

/** [INV-6 replay] a proxy's counter belongs to one transaction; the same counter on another is a replay. */
function useCounter(ledger: Ledger, claim: Pick<PaymentClaim, 'proxyId' | 'counter' | 'txId'>): void {
  const usedBy = ledger.store.getCounterUse(claim.proxyId, claim.counter);
  if (usedBy === undefined) ledger.store.putCounterUse(claim.proxyId, claim.counter, claim.txId);
  else if (usedBy !== claim.txId) {
    throw new DomainError('replayedCounter', `counter ${claim.counter} of ${claim.proxyId} was used by ${usedBy}`, { proxyId: claim.proxyId, counter: claim.counter, txId: claim.txId });
  }
}

function claimOf(p: Proof): PaymentClaim {
  return { txId: p.txId, amountMinor: p.amountMinor, payee: p.payee, timeMs: p.timeMs, counter: p.counter, proxyId: p.proxyId, meansId: p.meansId, orderId: p.orderId, posId: p.posId, nonce: p.nonce, path: p.path };
}

function figures(ledger: Ledger, meansIds: Iterable<string>): BalanceFigure[] {
  return [...meansIds].map((meansId) => ledger.balanceOf(meansId));
}

/** After a refusal, the current figure of the means the request names, when there is one (it helps SL sync). */
function figuresAfterRefusal(ledger: Ledger, req: ServerRequest): Outcome {
  let meansId: string | undefined;
  if (req.kind === 'auth' || req.kind === 'debit') meansId = req.claim.meansId;
  else if (req.kind === 'sync') meansId = req.meansId;
  else if (req.kind === 'capture' || req.kind === 'release') meansId = ledger.holdOf(req.txId)?.meansId ?? ledger.postingOf(req.txId)?.meansId;
  if (meansId === undefined || !ledger.accountOf(`means:${meansId}`)) return {};
  return { balances: [ledger.balanceOf(meansId)] };
}

function answer(ctx: ServerContext, req: ServerRequest, fields: Omit<ServerResult, 'kind' | 'reqId' | 'to' | 'requestKind' | 'serverSig'>): ServerResult {
  // A malformed request may lack any of these, or not be an object at all; the answer must still be well formed.
  const r: Partial<ServerRequest> = typeof req === 'object' && req !== null ? req : {};
  const unsigned: Omit<ServerResult, 'serverSig'> = {
    kind: 'result',
    reqId: typeof r.reqId === 'string' ? r.reqId : '',
    to: typeof r.from === 'string' ? r.from : '',
    requestKind: r.kind ?? ('' as ServerRequest['kind']),
    ...withoutUndefined(fields),
  };
  return signResult(ctx.serverKey, unsigned);
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ------------------------------------------------------------------ shape checks (messages come off the wire)

const PATHS: ReadonlySet<string> = new Set(['internal', 'localOffline', 'localBelowThreshold', 'remote']);
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function claimProblem(c: unknown, what: string): string | undefined {
  if (typeof c !== 'object' || c === null) return `${what} is missing`;
  const claim = c as Record<string, unknown>;
  for (const field of ['txId', 'payee', 'proxyId', 'meansId']) if (!isId(claim[field])) return `${what}.${field} must be a non-empty string`;
  if (!isMinor(claim.amountMinor)) return `${what}.amountMinor must be a non-negative integer, got ${JSON.stringify(claim.amountMinor)}`;
  if (!isInt(claim.timeMs)) return `${what}.timeMs must be an integer`;
  if (!isInt(claim.counter) || claim.counter < 0) return `${what}.counter must be a non-negative integer`;
  for (const field of ['orderId', 'posId', 'nonce']) if (claim[field] !== undefined && !isId(claim[field])) return `${what}.${field} must be a non-empty string when given`;
  if (claim.path !== undefined && !PATHS.has(claim.path as string)) return `${what}.path must be one of ${[...PATHS].join(', ')} when given, got ${JSON.stringify(claim.path)}`;
  return undefined;
}

function proofsProblem(list: unknown, what: string): string | undefined {
  if (!Array.isArray(list)) return `${what} must be an array`;
  for (const [i, p] of list.entries()) {
    const problem = claimProblem(p, `${what}[${i}]`) ?? (typeof (p as { sig?: unknown }).sig === 'string' ? undefined : `${what}[${i}].sig must be a string`);
    if (problem) return problem;
  }
  return undefined;
}

/** Why a request is malformed, or undefined when its shape is right (signatures are checked later). */
export function shapeProblemOf(req: ServerRequest): string | undefined {
  if (typeof req !== 'object' || req === null) return 'the request is not an object';
  // The request came off the wire: its fields are read as unknown until checked.
  const field = (name: string): unknown => Reflect.get(req, name);
  if (!isId(field('reqId')) || !isId(field('from'))) return 'reqId and from must be non-empty strings';
  if (typeof field('sig') !== 'string') return 'sig must be a string';
  switch (req.kind) {
    case 'auth':
    case 'debit':
      return claimProblem(req.claim, 'claim');
    case 'capture':
      return isId(req.txId) && isMinor(req.amountMinor) ? undefined : 'capture needs a txId and a non-negative integer amountMinor';
    case 'release':
      return isId(req.txId) ? undefined : 'release needs a txId';
    case 'sync':
      return isId(req.meansId) ? undefined : 'sync needs a meansId';
    case 'reload':
      if (!isId(req.purseMeansId) || !isId(req.fundingMeansId)) return 'reload needs a purseMeansId and a fundingMeansId';
      if (!isMinor(req.amountMinor) || !isMinor(req.leftoverMinor)) return 'reload needs non-negative integer amountMinor and leftoverMinor';
      return typeof req.granted === 'boolean' ? undefined : 'reload needs a boolean granted';
    case 'settle':
      return proofsProblem(req.proofs, 'proofs');
    case 'remit':
      if (req.mode === 'grouped') return proofsProblem(req.transactions, 'transactions');
      if (req.mode !== 'aggregate' || !Array.isArray(req.aggregates)) return 'remit needs mode grouped or aggregate';
      for (const [i, a] of req.aggregates.entries()) {
        if (typeof a !== 'object' || a === null || !isId(a.meansId) || !isId(a.payee) || !isMinor(a.sumMinor)) return `aggregates[${i}] needs meansId, payee and an integer sumMinor`;
        if (!Array.isArray(a.txIds) || a.txIds.length === 0 || !a.txIds.every(isId)) return `aggregates[${i}].txIds must be a non-empty list of non-empty strings`;
        const counters: unknown = a.counters;
        if (!Array.isArray(counters) || counters.length !== a.txIds.length || !counters.every((c, j) => isInt(c) && c >= 0 && (j === 0 || c > counters[j - 1]))) {
          return `aggregates[${i}].counters must be ${a.txIds.length} strictly increasing non-negative integers, one per txId`;
        }
      }
      return undefined;
    default:
      return `unknown request kind ${JSON.stringify(field('kind'))}`;
  }
}
