// Goal: what each protocol message's signature covers, written once for the signer and the verifier.
// Method: a canonical field list per message kind. Everything that moves money or names a transaction is in
// the list, so altering any of it (the amount above all) breaks the signature [INV-6 signatures]. A grouped
// remittance or a settlement covers every field of every proof it carries, not only txId and signature: SD's
// fingerprint of a request is this same list, so an alteration in flight fails at the request level, before
// anything is stored under the honest request id, and the honest copy that follows is still handled (as an
// ISO 8583 batch upload is MACed as a whole, not item by item).

import type { Proof, RemitNow, ServerRequest, ServerResult } from '../messages.ts';
import { paymentClaimFields, signClaim, signFields, verifyFields, type PaymentClaim, type SignatureScheme, type SignedFields, type SigningKey } from './signature.ts';

export function requestFields(req: ServerRequest): SignedFields {
  switch (req.kind) {
    case 'auth':
    case 'debit':
      return [req.kind, req.from, req.reqId, ...paymentClaimFields(req.claim)];
    case 'capture':
      return ['capture', req.from, req.reqId, req.txId, req.amountMinor];
    case 'release':
      return ['release', req.from, req.reqId, req.txId];
    case 'sync':
      return ['sync', req.from, req.reqId, req.meansId];
    case 'reload':
      return ['reload', req.from, req.reqId, req.purseMeansId, req.fundingMeansId, req.amountMinor, req.leftoverMinor, req.granted];
    case 'settle':
      return ['settle', req.from, req.reqId, ...req.proofs.flatMap(proofFields)];
    case 'remit':
      return req.mode === 'grouped'
        ? ['remit', req.from, req.reqId, 'grouped', ...req.transactions.flatMap(proofFields)]
        : // Each aggregate carries its count of txIds, so the flat list splits back into aggregates one way only;
          // the counters follow their txIds, as many, so they cannot shift from one aggregate to the next.
          ['remit', req.from, req.reqId, 'aggregate', ...req.aggregates.flatMap((a) => [a.meansId, a.payee, a.sumMinor, a.txIds.length, ...a.txIds, ...a.counters])];
  }
}

/**
 * The refusals SD answers without storing anything under the request id: the request was malformed, its sender
 * unknown, its signature did not cover these exact fields, or its id was taken by another payload. None of them
 * says anything about the honest request under that id — an alteration in flight earns one of them — so a
 * sender keeps its request and resends it as it was. Every other refusal is stored by SD and comes back the same
 * for ever. serverRules.handleRequest stores exactly the answers whose code is not in this list.
 */
export const UNSTORED_REFUSAL_CODES: ReadonlySet<string> = new Set(['malformed', 'unknownSender', 'badSignature', 'idConflict']);

/** Every field of a proof inside a request: its whole signed claim, the proxy's signature, the path and SD's signature. */
function proofFields(p: Proof): SignedFields {
  return [...paymentClaimFields(p), p.sig, p.path, p.serverOutcome ?? '', p.serverSig ?? ''];
}

/** A request before signing; distributes over unions so each variant keeps its own fields. */
export type Unsigned<R> = R extends unknown ? Omit<R, 'sig'> : never;

/** Signs a request built without its signature; the request comes back as the kind it was built as. */
export function signRequest<R extends ServerRequest>(key: SigningKey, unsigned: Unsigned<R>): R;
export function signRequest(key: SigningKey, unsigned: Unsigned<ServerRequest>): ServerRequest {
  const req: ServerRequest = { ...unsigned, sig: '' };
  req.sig = signFields(key, requestFields(req));
  return req;
}

export function verifyRequest(scheme: SignatureScheme, publicKey: string, req: ServerRequest): boolean {
  return verifyFields(scheme, publicKey, requestFields(req), req.sig);
}

export function resultFields(r: Omit<ServerResult, 'serverSig'>): SignedFields {
  return [
    'result', r.reqId, r.to, r.requestKind, r.ok, r.code, r.txId ?? '', r.receiptSig ?? '',
    ...(r.balances ?? []).flatMap((b) => [b.meansId, b.availableMinor, b.version]),
    '|', ...(r.posted ?? []), '|', ...(r.alreadyPosted ?? []), '|', ...(r.refused ?? []),
  ];
}

export function signResult(key: SigningKey, unsigned: Omit<ServerResult, 'serverSig'>): ServerResult {
  return { ...unsigned, serverSig: signFields(key, resultFields(unsigned)) };
}

export function verifyResult(scheme: SignatureScheme, publicKey: string, result: ServerResult): boolean {
  return verifyFields(scheme, publicKey, resultFields(result), result.serverSig);
}

/** What SD signs in an explicit remittance request: who asks, whom, when, under which id. */
export function remitNowFields(r: Omit<RemitNow, 'sig'>): SignedFields {
  return ['remitNow', r.reqId, r.from, r.to, r.issuedAtMs];
}

export function signRemitNow(key: SigningKey, unsigned: Omit<RemitNow, 'kind' | 'sig'>): RemitNow {
  const request: Omit<RemitNow, 'sig'> = { kind: 'remitNow', ...unsigned };
  return { ...request, sig: signFields(key, remitNowFields(request)) };
}

/** [INV-6 signatures] an explicit remittance request counts only if SD signed exactly these fields. */
export function verifyRemitNow(scheme: SignatureScheme, publicKey: string, request: RemitNow): boolean {
  return typeof request.issuedAtMs === 'number' && verifyFields(scheme, publicKey, remitNowFields(request), request.sig);
}

/** A proof of a payment decided on `path`: the claim with its path, signed by the proxy (the path is under the signature). */
export function signProof(key: SigningKey, claim: PaymentClaim, path: Proof['path']): Proof {
  const withPath: PaymentClaim = { ...claim, path };
  return { ...withPath, sig: signClaim(key, withPath), path };
}
