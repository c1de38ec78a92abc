// Goal: a signature covers every field that moves money or names a transaction: changing any one of them, in a
// proof, a request of any kind or a server result, makes verification fail; another key's signature and
// garbage never verify and never throw [INV-5], [INV-6].
// Method: random messages signed with real Ed25519 or 'sim' keys, then one random field changed to a different
// value of the same type; for grouped remittances and settlements "verifies" means the request and every proof
// inside it (the amounts are covered by each proof's own signature).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { signClaim, verifyClaim, verifyFields, type PaymentClaim, type SignatureScheme } from '../machines/domain/signature.ts';
import { signProof, signRequest, signResult, type Unsigned, verifyRequest, verifyResult } from '../machines/domain/requests.ts';
import type { Proof, ServerRequest, ServerResult } from '../machines/messages.ts';
import { keyFor, schemeArb } from './arbitraries.ts';
import { runProperty } from './fc.ts';

const idArb = fc.stringMatching(/^[a-z0-9:._-]{1,12}$/);
const claimArb: fc.Arbitrary<PaymentClaim> = fc.record({
  txId: idArb,
  amountMinor: fc.integer({ min: 0, max: 1_000_000 }),
  payee: idArb,
  timeMs: fc.integer({ min: 0, max: 2 ** 40 }),
  counter: fc.integer({ min: 0, max: 1_000_000 }),
  proxyId: fc.constant('p1'),
  meansId: idArb,
  orderId: idArb,
  posId: idArb,
  nonce: idArb,
});

type Field = string | number | boolean;

/** A different value of the same type (strings change by one character or get longer, numbers by ±1 or more). */
function altered(value: Field, nudge: number): Field {
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'number') {
    const d = (nudge % 5) + 1;
    return value - d >= 0 && nudge % 2 === 0 ? value - d : value + d;
  }
  if (value.length === 0 || nudge % 3 === 0) return value + 'x';
  const i = nudge % value.length;
  return value.slice(0, i) + (value[i] === 'a' ? 'b' : 'a') + value.slice(i + 1);
}

function setPath(target: unknown, path: readonly (string | number)[], value: unknown): void {
  let node = target as Record<string | number, unknown>;
  for (const step of path.slice(0, -1)) node = node[step] as Record<string | number, unknown>;
  node[path.at(-1)!] = value;
}

function getPath(target: unknown, path: readonly (string | number)[]): Field {
  let node = target as Record<string | number, unknown>;
  for (const step of path) node = node[step] as Record<string | number, unknown>;
  return node as unknown as Field;
}

const claimFields = ['txId', 'amountMinor', 'payee', 'timeMs', 'counter', 'proxyId', 'meansId', 'orderId', 'posId', 'nonce'] as const;
/** A proof inside a request: its whole claim, its signature and its path are under the request's signature. */
const proofFields = [...claimFields, 'sig', 'path'] as const;

/** Paths of every field a request's signatures are meant to cover, directly or through an embedded proof. */
function signedPaths(req: ServerRequest): (string | number)[][] {
  const base: (string | number)[][] = [['reqId'], ['from']];
  switch (req.kind) {
    case 'auth':
    case 'debit':
      return [...base, ...claimFields.map((f) => ['claim', f])];
    case 'capture':
      return [...base, ['txId'], ['amountMinor']];
    case 'release':
      return [...base, ['txId']];
    case 'sync':
      return [...base, ['meansId']];
    case 'reload':
      return [...base, ['purseMeansId'], ['fundingMeansId'], ['amountMinor'], ['leftoverMinor'], ['granted']];
    case 'settle':
      return [...base, ...req.proofs.flatMap((_, i) => proofFields.map((f) => ['proofs', i, f]))];
    case 'remit':
      if (req.mode === 'grouped') return [...base, ...req.transactions.flatMap((_, i) => proofFields.map((f) => ['transactions', i, f]))];
      return [
        ...base,
        ...req.aggregates.flatMap((a, i) => [
          ['aggregates', i, 'meansId'],
          ['aggregates', i, 'payee'],
          ['aggregates', i, 'sumMinor'],
          ...a.txIds.map((_, j) => ['aggregates', i, 'txIds', j]),
          ...a.counters.map((_, j) => ['aggregates', i, 'counters', j]),
        ]),
      ];
  }
}

function proofsOf(req: ServerRequest): Proof[] {
  if (req.kind === 'settle') return req.proofs;
  if (req.kind === 'remit' && req.mode === 'grouped') return req.transactions;
  return [];
}

/** The request's signature and the signature of every proof it carries. */
function verifiesFully(scheme: SignatureScheme, publicKey: string, req: ServerRequest): boolean {
  return verifyRequest(scheme, publicKey, req) && proofsOf(req).every((p) => verifyClaim(scheme, publicKey, p, p.sig));
}

describe('signatures: proofs of payment', () => {
  it('verifies a signed claim, and refuses it once any field is changed [INV-5, INV-6]', () => {
    runProperty(
      fc.property(schemeArb, claimArb, fc.constantFrom(...claimFields), fc.nat(), (scheme, claim, field, nudge) => {
        const key = keyFor('proxy:p1', scheme);
        const sig = signClaim(key, claim);
        expect(verifyClaim(scheme, key.publicKey, claim, sig)).toBe(true);
        const changed = { ...claim, [field]: altered(claim[field]!, nudge) };
        expect(verifyClaim(scheme, key.publicKey, changed, sig), `changed ${field}`).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses another key’s signature, and never throws on garbage [INV-6]', () => {
    runProperty(
      fc.property(schemeArb, claimArb, fc.anything(), (scheme, claim, garbage) => {
        const key = keyFor('proxy:p1', scheme);
        const other = keyFor('proxy:p2', scheme);
        expect(verifyClaim(scheme, key.publicKey, claim, signClaim(other, claim))).toBe(false);
        expect(verifyClaim(scheme, key.publicKey, claim, garbage)).toBe(false);
        expect(verifyFields(scheme, key.publicKey, ['x'], garbage)).toBe(false);
      }),
      { numRuns: 150 },
    );
  });
});

const proofArb = (scheme: SignatureScheme) =>
  claimArb.map((claim): Proof => (signProof(keyFor('proxy:p1', scheme), claim, 'localOffline')));

function requestArb(scheme: SignatureScheme): fc.Arbitrary<Unsigned<ServerRequest>> {
  const head = { reqId: idArb, from: fc.constant('p1') };
  return fc.oneof(
    fc.record({ kind: fc.constantFrom('auth' as const, 'debit' as const), ...head, claim: claimArb }),
    fc.record({ kind: fc.constant('capture' as const), ...head, txId: idArb, amountMinor: fc.nat() }),
    fc.record({ kind: fc.constant('release' as const), ...head, txId: idArb }),
    fc.record({ kind: fc.constant('sync' as const), ...head, meansId: idArb }),
    fc.record({ kind: fc.constant('reload' as const), ...head, purseMeansId: idArb, fundingMeansId: idArb, amountMinor: fc.nat(), leftoverMinor: fc.nat(), granted: fc.boolean() }),
    fc.record({ kind: fc.constant('settle' as const), ...head, proofs: fc.array(proofArb(scheme), { minLength: 1, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('remit' as const), mode: fc.constant('grouped' as const), ...head, transactions: fc.array(proofArb(scheme), { minLength: 1, maxLength: 3 }) }),
    fc.record({
      kind: fc.constant('remit' as const),
      mode: fc.constant('aggregate' as const),
      ...head,
      aggregates: fc.array(
        fc
          .record({ meansId: idArb, payee: idArb, sumMinor: fc.nat(), txIds: fc.uniqueArray(idArb, { minLength: 1, maxLength: 4 }), firstCounter: fc.nat({ max: 1_000_000 }) })
          .map(({ firstCounter, ...entry }) => ({ ...entry, counters: entry.txIds.map((_, i) => firstCounter + i) })),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  ) as fc.Arbitrary<Unsigned<ServerRequest>>;
}

describe('signatures: requests to SD', () => {
  it('refuses a request of any kind once any signed field is changed, in the request or a proof it carries [INV-6]', () => {
    runProperty(
      fc.property(
        schemeArb.chain((scheme) => fc.tuple(fc.constant(scheme), requestArb(scheme))),
        fc.nat(),
        fc.nat(),
        ([scheme, unsigned], pick, nudge) => {
          const key = keyFor('proxy:p1', scheme);
          const req = signRequest(key, unsigned);
          expect(verifiesFully(scheme, key.publicKey, req)).toBe(true);
          const paths = signedPaths(req);
          const path = paths[pick % paths.length]!;
          const forged = structuredClone(req);
          setPath(forged, path, altered(getPath(req, path), nudge));
          expect(verifiesFully(scheme, key.publicKey, forged), `changed ${path.join('.')}`).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses an aggregate remittance whose ids were moved from one aggregate to the next [INV-6]', () => {
    runProperty(
      fc.property(schemeArb, fc.uniqueArray(idArb, { minLength: 3, maxLength: 6 }), fc.integer({ min: 1, max: 2 }), (scheme, ids, cut) => {
        const key = keyFor('proxy:p1', scheme);
        const split = (at: number) => [
          { meansId: 'm1', payee: 'shop', sumMinor: 100, txIds: ids.slice(0, at), counters: ids.slice(0, at).map((_, i) => i + 1) },
          { meansId: 'm1', payee: 'shop', sumMinor: 100, txIds: ids.slice(at), counters: ids.slice(at).map((_, i) => at + i + 1) },
        ];
        const req = signRequest(key, { kind: 'remit', mode: 'aggregate', reqId: 'r1', from: 'p1', aggregates: split(cut) });
        const moved = { ...req, aggregates: split(cut + 1) };
        expect(verifyRequest(scheme, key.publicKey, moved)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });
});

describe('signatures: server results', () => {
  it('refuses a result once its outcome, figures or posted ids are changed [INV-6]', () => {
    const resultArb = fc.record({
      kind: fc.constant('result' as const),
      reqId: idArb,
      to: idArb,
      requestKind: fc.constantFrom('auth' as const, 'debit' as const, 'remit' as const, 'sync' as const),
      ok: fc.boolean(),
      code: idArb,
      txId: idArb,
      balances: fc.array(fc.record({ meansId: idArb, availableMinor: fc.nat(), version: fc.nat() }), { minLength: 1, maxLength: 2 }),
      posted: fc.array(idArb, { minLength: 1, maxLength: 3 }),
      alreadyPosted: fc.array(idArb, { minLength: 1, maxLength: 3 }),
    });
    runProperty(
      fc.property(schemeArb, resultArb, fc.nat(), fc.nat(), (scheme, unsigned, pick, nudge) => {
        const key = keyFor('server', scheme);
        const result: ServerResult = signResult(key, unsigned);
        expect(verifyResult(scheme, key.publicKey, result)).toBe(true);
        const paths: (string | number)[][] = [
          ['reqId'], ['to'], ['ok'], ['code'], ['txId'],
          ...result.balances!.flatMap((_, i) => [['balances', i, 'meansId'], ['balances', i, 'availableMinor'], ['balances', i, 'version']]),
          ...result.posted!.map((_, i) => ['posted', i]),
          ...result.alreadyPosted!.map((_, i) => ['alreadyPosted', i]),
        ];
        const path = paths[pick % paths.length]!;
        const forged = structuredClone(result);
        setPath(forged, path, altered(getPath(result, path), nudge));
        expect(verifyResult(scheme, key.publicKey, forged), `changed ${path.join('.')}`).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
