// Goal: the payment servers' interface I for other points of issue (web shops, app servers, merchants) — the
// patent's shared payment means are spent from outside the terminals too: authorise (hold), capture or release
// a hold, debit at once, and verify a proof of payment — over the same ledger and with the same idempotency
// rules as the proxies' requests.
// Method: transport-free handlers (`ApiRequest` → `ApiResponse`), so the rules are tested without sockets and
// the HTTP layer (server.ts) only moves bytes. Every money request names its point of issue (`issuer`) and
// carries an `Idempotency-Key`; the answer is stored in the ledger's own result table under
// (`http:{issuer}`, key), in the same store transaction as the money it moved, so the same key with the same
// payload gets the same answer (even after a restart on SQLite), and with another payload `409 idConflict`.
// Money moves only through Ledger operations that keep the books double-entry [INV-3 conservation]: a debit is
// `spendElsewhere`; an authorisation is a `hold` owned by `http:{issuer}`; its capture releases the hold and
// spends the captured amount elsewhere, in one transaction — so it never becomes a proxy's posting, which the
// end checks audit against the proxies' approvals [INV-4]. Every ok answer carries a receipt signed with SD's
// key, which `POST /v1/proofs/verify` checks along with the proxies' own proofs [INV-5, INV-6].

import { DomainError, isMinor } from '../../machines/domain/money.ts';
import { canonicalEncoding, signFields, verifyClaim, verifyFields, verifyServerReceipt, type PaymentClaim, type SignatureScheme, type SigningKey } from '../../machines/domain/signature.ts';
import type { PaymentPath } from '../../machines/domain/discriminate.ts';
const PAYMENT_PATHS: readonly PaymentPath[] = ['internal', 'localOffline', 'localBelowThreshold', 'remote'];
import { signResult } from '../../machines/domain/requests.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import type { ServerResult } from '../../machines/messages.ts';

export interface PaymentApiOptions {
  /** The ledger of the shard that serves a means. */
  ledgerOfMeans(meansId: string): Ledger;
  shards: number;
  /** 'memory', 'sqlite' or 'postgres', for /v1/health. */
  storeKind: string;
  scheme: SignatureScheme;
  serverKey: SigningKey;
  /** Registered public keys of proxies and POS units, to verify their proofs. */
  publicKeyOf(id: string): string | undefined;
}

export interface ApiRequest {
  method: string;
  /** The path, without the query string. */
  path: string;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  /** The parsed JSON body (undefined for none). */
  body: unknown;
}

export interface ApiResponse {
  status: number;
  body: unknown;
  /** The route's template, for metrics (`/v1/means/{id}/debits`). */
  route: string;
  /** True when the answer was a stored one (same idempotency key and payload). */
  replayed?: boolean;
  /** The refusal code, for metrics. */
  code?: string;
}

/** A refusal before anything is stored: bad input, a conflicting key, an unknown route. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly value?: unknown,
  ) {
    super(message);
  }
}

export const RECEIPT_VERSION = 'receipt.v1';

/** SD's signed receipt for a payment made through this interface: the proof a web shop keeps. */
export interface Receipt {
  v: typeof RECEIPT_VERSION;
  kind: 'authorization' | 'debit' | 'capture';
  txId: string;
  meansId: string;
  payee: string;
  amountMinor: number;
  issuer: string;
  serverSig: string;
}

export function receiptFields(r: Omit<Receipt, 'serverSig'>): readonly (string | number)[] {
  return [RECEIPT_VERSION, r.kind, r.txId, r.meansId, r.payee, r.amountMinor, r.issuer];
}

const ISSUER = /^[A-Za-z0-9._-]{1,64}$/;
const KEY = /^[\x21-\x7e]{1,128}$/;
const ID = /^[^\s/]{1,200}$/;
const MAX_AMOUNT_MINOR = Number.MAX_SAFE_INTEGER;

/** HTTP status of each refusal code of the ledger (others: 422). */
const STATUS_OF_CODE: Record<string, number> = {
  ok: 200,
  badRequest: 400,
  insufficientFunds: 402,
  senderMismatch: 403,
  unknownMeans: 404,
  unknownHold: 404,
  idConflict: 409,
  holdReleased: 409,
  holdCaptured: 409,
};

/** The request field a refusal is about, named in the error body. */
const FIELD_OF_CODE: Record<string, string> = {
  insufficientFunds: 'amountMinor',
  captureExceedsHold: 'amountMinor',
  unknownMeans: 'meansId',
  unknownHold: 'txId',
  holdReleased: 'txId',
  holdCaptured: 'txId',
  senderMismatch: 'issuer',
  idConflict: 'Idempotency-Key',
};

type MoneyKind = 'authorization' | 'debit' | 'capture' | 'release';

interface MoneyRequest {
  kind: MoneyKind;
  route: string;
  meansId: string;
  issuer: string;
  key: string;
  payee: string;
  amountMinor: number;
  /** capture and release: the authorisation's txId. */
  txId: string;
}

export class PaymentApi {
  constructor(readonly options: PaymentApiOptions) {}

  handle(request: ApiRequest): ApiResponse {
    const route = routeOf(request.method, request.path);
    try {
      if (!route) throw new ApiError(404, 'notFound', `no route ${request.method} ${request.path}`, 'path', request.path);
      if (route.method !== request.method) throw new ApiError(405, 'methodNotAllowed', `${request.method} is not allowed on ${route.template}; use ${route.method}`, 'method', request.method);
      switch (route.name) {
        case 'health':
          return { status: 200, route: route.template, body: { status: 'ok', shards: this.options.shards, store: this.options.storeKind, scheme: this.options.scheme } };
        case 'means':
          return this.meansFigure(route.template, route.params.meansId!);
        case 'verify':
          return { status: 200, route: route.template, body: this.verify(request.body) };
        default:
          return this.money(moneyRequest(route.name as MoneyKind, route.template, route.params, request));
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const body = { error: { code: error.code, message: error.message, ...(error.field !== undefined ? { field: error.field } : {}), ...(error.value !== undefined ? { value: error.value } : {}) } };
      return { status: error.status, route: route?.template ?? 'other', body, code: error.code };
    }
  }

  private meansFigure(route: string, meansId: string): ApiResponse {
    try {
      return { status: 200, route, body: this.options.ledgerOfMeans(meansId).balanceOf(meansId) };
    } catch (error) {
      if (error instanceof DomainError) throw new ApiError(404, error.code, error.message, 'meansId', meansId);
      throw error;
    }
  }

  // ------------------------------------------------------------------ money

  private money(req: MoneyRequest): ApiResponse {
    const ledger = this.options.ledgerOfMeans(req.meansId);
    const store = ledger.store;
    const from = `http:${req.issuer}`;
    const fingerprint = canonicalEncoding(['http.v1', req.kind, req.meansId, req.txId, req.payee, req.amountMinor]);
    const stored = store.getResult(from, req.key);
    if (stored) {
      if (stored.fingerprint !== fingerprint) {
        throw new ApiError(409, 'idConflict', `Idempotency-Key ${req.key} of ${req.issuer} was used with another request`, 'Idempotency-Key', req.key);
      }
      return { ...this.respond(req, stored.result), replayed: true };
    }
    let result: ServerResult;
    try {
      result = store.transaction(() => {
        const outcome = this.apply(ledger, req);
        const ok = this.result(req, { ok: true, code: 'ok', txId: outcome.txId, balances: [ledger.balanceOf(req.meansId)] });
        store.putResult(from, req.key, { fingerprint, result: ok });
        return ok;
      });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      // A refusal is stored too, so a retry with the same key gets the same refusal (as serverRules does).
      const balances = safeBalance(ledger, req.meansId);
      result = this.result(req, { ok: false, code: error.code, reason: error.message, txId: req.txId || undefined, balances });
      const refusal = result;
      store.transaction(() => store.putResult(from, req.key, { fingerprint, result: refusal }));
    }
    return this.respond(req, result);
  }

  /** Moves the money of one request; throws a DomainError to refuse (the transaction then rolls back). */
  private apply(ledger: Ledger, req: MoneyRequest): { txId: string } {
    const owner = `http:${req.issuer}`;
    switch (req.kind) {
      case 'debit': {
        const txId = `${owner}:${req.key}`;
        ledger.spendElsewhere({ transferId: txId, meansId: req.meansId, payee: req.payee, amountMinor: req.amountMinor });
        return { txId };
      }
      case 'authorization': {
        const txId = `${owner}:${req.key}`;
        ledger.hold({ txId, meansId: req.meansId, payee: req.payee, amountMinor: req.amountMinor, proxyId: owner });
        return { txId };
      }
      case 'capture':
      case 'release': {
        const hold = ledger.holdOf(req.txId);
        if (!hold || hold.meansId !== req.meansId) throw new DomainError('unknownHold', `no authorisation ${req.txId} on means ${req.meansId}`, req.txId);
        if (hold.proxyId !== owner) throw new DomainError('senderMismatch', `${req.issuer} did not authorise ${req.txId}`, req.issuer);
        const captured = ledger.store.getTransfer(`ext:${captureTransferId(req.txId)}`);
        if (req.kind === 'release') {
          if (captured) throw new DomainError('holdCaptured', `authorisation ${req.txId} was captured`, req.txId);
          ledger.release({ txId: req.txId });
          return { txId: req.txId };
        }
        if (captured) {
          if (captured.amountMinor !== req.amountMinor) throw new DomainError('idConflict', `authorisation ${req.txId} was captured for ${captured.amountMinor}`, req.amountMinor);
          return { txId: req.txId };
        }
        if (hold.state !== 'held') throw new DomainError('holdReleased', `authorisation ${req.txId} was released`, req.txId);
        if (req.amountMinor > hold.amountMinor) throw new DomainError('captureExceedsHold', `capture of ${req.amountMinor} exceeds the hold of ${hold.amountMinor}`, req.amountMinor);
        ledger.release({ txId: req.txId });
        ledger.spendElsewhere({ transferId: captureTransferId(req.txId), meansId: hold.meansId, payee: hold.payee, amountMinor: req.amountMinor });
        return { txId: req.txId };
      }
    }
  }

  private result(req: MoneyRequest, fields: Pick<ServerResult, 'ok' | 'code' | 'reason' | 'txId' | 'balances'>): ServerResult {
    const requestKind = req.kind === 'authorization' ? 'auth' : req.kind;
    return signResult(this.options.serverKey, { kind: 'result', reqId: req.key, to: req.issuer, requestKind, ...fields });
  }

  /** The HTTP answer of a stored result; the receipt is rebuilt from the request, which a replay repeats exactly. */
  private respond(req: MoneyRequest, result: ServerResult): ApiResponse {
    const availableMinor = result.balances?.[0]?.availableMinor;
    if (!result.ok) {
      const field = FIELD_OF_CODE[result.code];
      const status = STATUS_OF_CODE[result.code] ?? 422;
      return { status, route: req.route, code: result.code, body: { error: { code: result.code, message: result.reason ?? result.code, ...(field ? { field } : {}) }, ...(availableMinor !== undefined ? { availableMinor } : {}) } };
    }
    const txId = result.txId ?? req.txId;
    const body: Record<string, unknown> = { ok: true, kind: req.kind, txId, meansId: req.meansId, availableMinor };
    if (req.kind !== 'release') {
      const hold = req.kind === 'capture' ? this.options.ledgerOfMeans(req.meansId).holdOf(txId) : undefined;
      const payee = hold?.payee ?? req.payee;
      body.amountMinor = req.amountMinor;
      body.payee = payee;
      body.receipt = this.receipt({ v: RECEIPT_VERSION, kind: req.kind, txId, meansId: req.meansId, payee, amountMinor: req.amountMinor, issuer: req.issuer });
    }
    return { status: req.kind === 'authorization' || req.kind === 'debit' ? 201 : 200, route: req.route, body };
  }

  private receipt(unsigned: Omit<Receipt, 'serverSig'>): Receipt {
    return { ...unsigned, serverSig: signFields(this.options.serverKey, receiptFields(unsigned)) };
  }

  // ------------------------------------------------------------------ proofs

  /**
   * Checks a proof of payment: SD's receipt from this interface, or a proxy's signed proof (an app's or a POS's).
   * `valid`: the signature verifies; `ledger`: what SD's books show for it now.
   */
  private verify(body: unknown): Record<string, unknown> {
    const proof = objectField(body, 'proof');
    if (proof.v === RECEIPT_VERSION) return this.verifyReceipt(proof);
    const claim: PaymentClaim = {
      txId: stringField(proof, 'txId', 'proof.txId'),
      amountMinor: amountField(proof, 'amountMinor', 'proof.amountMinor'),
      payee: stringField(proof, 'payee', 'proof.payee'),
      timeMs: integerField(proof, 'timeMs', 'proof.timeMs'),
      counter: integerField(proof, 'counter', 'proof.counter'),
      proxyId: stringField(proof, 'proxyId', 'proof.proxyId'),
      meansId: stringField(proof, 'meansId', 'proof.meansId'),
    };
    // The sale a proxy's proof is bound to (see PaymentClaim) and its path are under its signature when present.
    for (const name of ['orderId', 'posId', 'nonce'] as const) {
      if (proof[name] !== undefined) claim[name] = stringField(proof, name, `proof.${name}`);
    }
    const path = proof.path === undefined ? undefined : stringField(proof, 'path', 'proof.path');
    if (path !== undefined && !PAYMENT_PATHS.includes(path as PaymentPath)) throw new ApiError(400, 'badRequest', `expected one of ${PAYMENT_PATHS.join(', ')}`, 'proof.path', path);
    if (path !== undefined) claim.path = path as PaymentPath;
    const publicKey = this.options.publicKeyOf(claim.proxyId);
    const proxySignature = publicKey === undefined ? 'unknownSigner' : verifyClaim(this.options.scheme, publicKey, claim, stringField(proof, 'sig', 'proof.sig')) ? 'ok' : 'bad';
    // [INV-5] A remote payment's proof carries SD's signed receipt (txId, means, payee, amount, outcome); a local one none.
    const hasReceipt = proof.serverSig !== undefined || proof.serverOutcome !== undefined;
    const serverSignature = !hasReceipt ? 'absent' : verifyServerReceipt(this.options.scheme, this.options.serverKey.publicKey, { ...claim, serverOutcome: proof.serverOutcome, serverSig: proof.serverSig }) ? 'ok' : 'bad';
    const receiptOk = claim.path === 'remote' ? serverSignature === 'ok' : serverSignature === 'absent';
    const signature = proxySignature !== 'ok' ? proxySignature : receiptOk ? 'ok' : serverSignature === 'absent' ? 'noServerReceipt' : 'badServerReceipt';
    let ledger = 'notFound';
    const book = this.ledgerOrUndefined(claim.meansId);
    const posting = book?.postingOf(claim.txId);
    const hold = book?.holdOf(claim.txId);
    if (posting) {
      const same = posting.meansId === claim.meansId && posting.payee === claim.payee && (posting.amountMinor === null || posting.amountMinor === claim.amountMinor);
      ledger = !same ? 'mismatch' : posting.reversedBy !== undefined ? 'reversed' : 'credited';
    } else if (hold) {
      ledger = hold.amountMinor !== claim.amountMinor || hold.payee !== claim.payee ? 'mismatch' : hold.state;
    }
    return { valid: signature === 'ok', kind: 'proof', txId: claim.txId, signature, serverSignature, ledger };
  }

  private verifyReceipt(proof: Record<string, unknown>): Record<string, unknown> {
    const kind = stringField(proof, 'kind', 'proof.kind');
    if (kind !== 'authorization' && kind !== 'debit' && kind !== 'capture') throw new ApiError(400, 'badRequest', 'expected "authorization", "debit" or "capture"', 'proof.kind', kind);
    const receipt: Omit<Receipt, 'serverSig'> = {
      v: RECEIPT_VERSION,
      kind,
      txId: stringField(proof, 'txId', 'proof.txId'),
      meansId: stringField(proof, 'meansId', 'proof.meansId'),
      payee: stringField(proof, 'payee', 'proof.payee'),
      amountMinor: amountField(proof, 'amountMinor', 'proof.amountMinor'),
      issuer: stringField(proof, 'issuer', 'proof.issuer'),
    };
    const serverSig = stringField(proof, 'serverSig', 'proof.serverSig');
    const valid = verifyFields(this.options.scheme, this.options.serverKey.publicKey, receiptFields(receipt), serverSig);
    const book = this.ledgerOrUndefined(receipt.meansId);
    let ledger = 'notFound';
    if (book) {
      const transferId = kind === 'debit' ? `ext:${receipt.txId}` : `ext:${captureTransferId(receipt.txId)}`;
      const transfer = kind === 'authorization' ? undefined : book.store.getTransfer(transferId);
      const hold = kind === 'authorization' ? book.holdOf(receipt.txId) : undefined;
      if (transfer) ledger = transfer.amountMinor === receipt.amountMinor && transfer.creditAccount === `payee:${receipt.payee}` ? (kind === 'debit' ? 'debited' : 'captured') : 'mismatch';
      else if (hold) ledger = hold.amountMinor !== receipt.amountMinor || hold.payee !== receipt.payee ? 'mismatch' : book.store.getTransfer(`ext:${captureTransferId(receipt.txId)}`) ? 'captured' : hold.state;
    }
    return { valid, kind: 'receipt', txId: receipt.txId, signature: valid ? 'ok' : 'bad', ledger };
  }

  private ledgerOrUndefined(meansId: string): Ledger | undefined {
    try {
      const ledger = this.options.ledgerOfMeans(meansId);
      ledger.balanceOf(meansId);
      return ledger;
    } catch (error) {
      if (error instanceof DomainError) return undefined;
      throw error;
    }
  }
}

function captureTransferId(txId: string): string {
  return `capture:${txId}`;
}

function safeBalance(ledger: Ledger, meansId: string): ServerResult['balances'] {
  try {
    return [ledger.balanceOf(meansId)];
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ routes and input

interface Route {
  name: 'health' | 'means' | 'verify' | MoneyKind;
  method: 'GET' | 'POST';
  template: string;
  params: Record<string, string>;
}

const ROUTES: Array<{ name: Route['name']; method: Route['method']; template: string; pattern: RegExp; params: string[] }> = [
  { name: 'health', method: 'GET', template: '/v1/health', pattern: /^\/v1\/health$/, params: [] },
  { name: 'verify', method: 'POST', template: '/v1/proofs/verify', pattern: /^\/v1\/proofs\/verify$/, params: [] },
  { name: 'means', method: 'GET', template: '/v1/means/{id}', pattern: /^\/v1\/means\/([^/]+)$/, params: ['meansId'] },
  { name: 'authorization', method: 'POST', template: '/v1/means/{id}/authorizations', pattern: /^\/v1\/means\/([^/]+)\/authorizations$/, params: ['meansId'] },
  { name: 'capture', method: 'POST', template: '/v1/means/{id}/authorizations/{txId}/capture', pattern: /^\/v1\/means\/([^/]+)\/authorizations\/([^/]+)\/capture$/, params: ['meansId', 'txId'] },
  { name: 'release', method: 'POST', template: '/v1/means/{id}/authorizations/{txId}/release', pattern: /^\/v1\/means\/([^/]+)\/authorizations\/([^/]+)\/release$/, params: ['meansId', 'txId'] },
  { name: 'debit', method: 'POST', template: '/v1/means/{id}/debits', pattern: /^\/v1\/means\/([^/]+)\/debits$/, params: ['meansId'] },
];

/** The route of a path; a path of a route under another method still finds it (for 405). */
export function routeOf(method: string, path: string): Route | undefined {
  let found: Route | undefined;
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const params: Record<string, string> = {};
    route.params.forEach((name, i) => {
      params[name] = decodeParam(match[i + 1]!, name);
    });
    const candidate: Route = { name: route.name, method: route.method, template: route.template, params };
    if (route.method === method) return candidate;
    found ??= candidate;
  }
  return found;
}

function decodeParam(raw: string, name: string): string {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, 'badRequest', `the ${name} in the path is not valid percent-encoding`, name, raw);
  }
  if (!ID.test(value)) throw new ApiError(400, 'badRequest', `expected a ${name} of 1 to 200 characters without spaces or "/"`, name, value);
  return value;
}

function moneyRequest(kind: MoneyKind, route: string, params: Record<string, string>, request: ApiRequest): MoneyRequest {
  const key = request.headers['idempotency-key'];
  if (key === undefined || !KEY.test(key)) throw new ApiError(400, 'badRequest', 'expected an Idempotency-Key header of 1 to 128 printable ASCII characters', 'Idempotency-Key', key ?? null);
  const body = request.body === undefined ? {} : request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'badRequest', 'expected a JSON object', 'body', null);
  const fields = body as Record<string, unknown>;
  const issuer = stringField(fields, 'issuer', 'issuer');
  if (!ISSUER.test(issuer)) throw new ApiError(400, 'badRequest', 'expected an issuer of 1 to 64 letters, digits, ".", "_" or "-"', 'issuer', issuer);
  const allowed = kind === 'release' ? ['issuer'] : kind === 'capture' ? ['issuer', 'amountMinor'] : ['issuer', 'amountMinor', 'payee'];
  for (const name of Object.keys(fields)) {
    if (!allowed.includes(name)) throw new ApiError(400, 'badRequest', `unknown field; expected ${allowed.join(', ')}`, name, fields[name]);
  }
  const amountMinor = kind === 'release' ? 0 : amountField(fields, 'amountMinor', 'amountMinor', true);
  const payee = kind === 'authorization' || kind === 'debit' ? stringField(fields, 'payee', 'payee') : '';
  return { kind, route, meansId: params.meansId!, issuer, key, payee, amountMinor, txId: params.txId ?? '' };
}

function objectField(body: unknown, name: string): Record<string, unknown> {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiError(400, 'badRequest', `expected an object "${name}"`, name, value ?? null);
  return value as Record<string, unknown>;
}

function stringField(fields: Record<string, unknown>, name: string, path: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) throw new ApiError(400, 'badRequest', 'expected a string of 1 to 200 characters', path, value ?? null);
  return value;
}

function integerField(fields: Record<string, unknown>, name: string, path: string): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new ApiError(400, 'badRequest', 'expected an integer', path, value ?? null);
  return value;
}

/** Money is integer minor units, never a float [house rule]. */
function amountField(fields: Record<string, unknown>, name: string, path: string, positive = false): number {
  const value = fields[name];
  if (!isMinor(value) || value > MAX_AMOUNT_MINOR || (positive && value === 0)) {
    throw new ApiError(400, 'badRequest', `expected ${positive ? 'a positive' : 'a non-negative'} integer amount of minor units`, path, value ?? null);
  }
  return value;
}
