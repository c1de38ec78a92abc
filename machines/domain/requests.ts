// Goal: what each protocol message's signature covers, written once for the signer and the verifier.
// Method: a canonical field list per message kind. Everything that moves money or names a transaction is in
// the list, so altering any of it (the amount above all) breaks the signature [INV-6 signatures].

import type { ServerRequest, ServerResult } from '../messages.ts';
import { paymentClaimFields, signFields, verifyFields, type SignatureScheme, type SignedFields, type SigningKey } from './signature.ts';

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
    case 'settle':
      return ['settle', req.from, req.reqId, ...req.proofs.flatMap((p) => [p.txId, p.sig])];
    case 'remit':
      return req.mode === 'grouped'
        ? ['remit', req.from, req.reqId, 'grouped', ...req.transactions.flatMap((t) => [t.txId, t.sig])]
        : // Each aggregate carries its count of txIds, so the flat list splits back into aggregates one way only.
          ['remit', req.from, req.reqId, 'aggregate', ...req.aggregates.flatMap((a) => [a.meansId, a.payee, a.sumMinor, a.txIds.length, ...a.txIds])];
  }
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
    'result', r.reqId, r.to, r.requestKind, r.ok, r.code, r.txId ?? '',
    ...(r.balances ?? []).flatMap((b) => [b.meansId, b.availableMinor, b.version]),
    '|', ...(r.posted ?? []), '|', ...(r.alreadyPosted ?? []),
  ];
}

export function signResult(key: SigningKey, unsigned: Omit<ServerResult, 'serverSig'>): ServerResult {
  return { ...unsigned, serverSig: signFields(key, resultFields(unsigned)) };
}

export function verifyResult(scheme: SignatureScheme, publicKey: string, result: ServerResult): boolean {
  return verifyFields(scheme, publicKey, resultFields(result), result.serverSig);
}
