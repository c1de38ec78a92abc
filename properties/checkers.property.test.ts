// Goal: the run's own checkers have teeth — the end-of-run checks (sim/check/endChecks.ts) and the order oracle
// (sim/check/oracle.ts) report the bugs they exist for, so a green run means something.
// Method: a real ledger driven through SD's rules (handleRequest) with honest traffic, then one bug planted in
// what the checkers read — a payment lost, a proof altered, a backlog left — and the checkers must name it;
// the clean run must pass. The oracle gets random orders with approvals that break one rule of the policy
// each (amount, payee, means, path, M0, the offline cap) and must flag every one, and pass the honest answers.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Ledger } from '../machines/domain/ledger.ts';
import { MemoryLedgerStore } from '../machines/domain/ledgerStore.ts';
import { handleRequest, type ServerContext } from '../machines/domain/serverRules.ts';
import { signClaim, type PaymentClaim, type SignatureScheme } from '../machines/domain/signature.ts';
import { signProof, signRequest } from '../machines/domain/requests.ts';
import { defaultDiscriminationPolicy, discriminate } from '../machines/domain/discriminate.ts';
import { defaultConfirmationPolicy } from '../machines/domain/confirmation.ts';
import { defaultRemittancePolicy } from '../machines/domain/remittance.ts';
import type { ProxyPolicy } from '../machines/domain/proxyRules.ts';
import type { PaymentOrder, Proof, ServerRequest } from '../machines/messages.ts';
import { InvariantBook, RecentEvents } from '../sim/check/invariantBook.ts';
import { checkAtEnd, type EndCheckInput } from '../sim/check/endChecks.ts';
import { AnswersOfSd } from '../sim/check/inv4NothingLostNothingTwice.ts';
import { oracleProblem } from '../sim/check/oracle.ts';
import { keyFor, schemeArb } from './arbitraries.ts';
import { runProperty } from './fc.ts';

/** A shard's worth of honest traffic: local payments remitted grouped, one settled by a POS. */
function honestRun(scheme: SignatureScheme, amounts: readonly number[]) {
  const proxyKey = keyFor('checkers:p1', scheme);
  const posKey = keyFor('checkers:pos1', scheme);
  const keys = new Map([
    ['p1', proxyKey.publicKey],
    ['pos1', posKey.publicKey],
  ]);
  const ctx: ServerContext = { scheme, serverKey: keyFor('checkers:server', scheme), publicKeyOf: (id) => keys.get(id), nowMs: 0 };
  const ledger = new Ledger(new MemoryLedgerStore());
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1_000_000, creditLimitMinor: 0 });
  const proofs: Proof[] = amounts.map((amountMinor, i) => {
    const claim: PaymentClaim = { txId: `p1:t${i + 1}`, amountMinor, payee: i % 2 === 0 ? 'shop' : 'cafe', timeMs: i, counter: i + 1, proxyId: 'p1', meansId: 'm1', orderId: `o${i}` };
    return signProof(proxyKey, claim, 'localOffline');
  });
  const [settled, ...remitted] = proofs;
  const send = (request: ServerRequest) => expect(handleRequest(ledger, request, ctx)).toMatchObject({ ok: true });
  if (settled) send(signRequest(posKey, { kind: 'settle', reqId: 'pos1:s1', from: 'pos1', proofs: [settled] }));
  if (remitted.length > 0) send(signRequest(proxyKey, { kind: 'remit', mode: 'grouped', reqId: 'p1:r1', from: 'p1', transactions: remitted }));
  return { ledger, proofs, publicKeyOf: (id: string) => keys.get(id), scheme };
}

type Run = ReturnType<typeof honestRun>;

/** The end checks over `run`, with `plant` changing their input first; returns the invariants that failed. */
function endViolations(run: Run, plant: (input: EndCheckInput) => EndCheckInput = (i) => i): string[] {
  const book = new InvariantBook(1, () => 0, new RecentEvents(), false);
  const input: EndCheckInput = {
    book,
    ledgers: [{ label: 'shard 0', ledger: run.ledger }],
    approved: new Map(run.proofs.map((proof) => [proof.txId, { proof }])),
    posProofs: run.proofs.slice(0, 1),
    reversed: [],
    terminals: [{ terminalId: 'p1', up: true, journal: { pending: [], outbox: [] } }],
    pos: [{ posId: 'pos1', unsettled: 0 }],
    publicKeyOf: run.publicKeyOf,
    serverPublicKey: keyFor('checkers:server', run.scheme).publicKey,
    scheme: run.scheme,
    duplicatedPostings: 0,
  };
  checkAtEnd(plant(input));
  return [...new Set(book.violations.map((v) => String(v.invariant)))];
}

const amountsArb = fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 2, maxLength: 6 });

describe('the end-of-run checkers catch what they exist for', () => {
  it('pass an honest, drained run', () => {
    runProperty(
      fc.property(schemeArb, amountsArb, (scheme, amounts) => {
        expect(endViolations(honestRun(scheme, amounts))).toEqual([]);
      }),
      { numRuns: 20 },
    );
  });

  it('report an approved payment missing from the ledger [INV-4]', () => {
    runProperty(
      fc.property(schemeArb, amountsArb, fc.nat(), (scheme, amounts, pick) => {
        const run = honestRun(scheme, amounts);
        const lost = run.proofs[pick % run.proofs.length]!;
        const claim: PaymentClaim = { ...lost, txId: `${lost.txId}-never-remitted` };
        const missing: Proof = signProof(keyFor('checkers:p1', scheme), claim, 'localOffline');
        expect(endViolations(run, (input) => ({ ...input, approved: new Map([...input.approved, [missing.txId, { proof: missing }]]) }))).toContain('INV-4');
      }),
      { numRuns: 20 },
    );
  });

  it('report a proof whose signature does not verify, though it is credited [INV-5]', () => {
    runProperty(
      fc.property(schemeArb, amountsArb, (scheme, amounts) => {
        const run = honestRun(scheme, amounts);
        const held = run.proofs[0]!;
        expect(endViolations(run, (input) => ({ ...input, posProofs: [{ ...held, sig: signClaim(keyFor('checkers:mallory', scheme), held) }] }))).toEqual(['INV-5']);
      }),
      { numRuns: 20 },
    );
  });

  it('report a remittance SD refused and stored, even though its proxy\'s outbox emptied [INV-7]', () => {
    runProperty(
      fc.property(schemeArb, amountsArb, fc.nat(), (scheme, amounts, pick) => {
        const run = honestRun(scheme, amounts);
        const proxyKey = keyFor('checkers:p1', scheme);
        // A transaction reusing the counter of one already posted: SD refuses the remittance (replayedCounter) and stores it.
        const reused = run.proofs[pick % run.proofs.length]!;
        const claim: PaymentClaim = { ...reused, txId: `${reused.txId}-again`, path: undefined };
        const request = signRequest(proxyKey, { kind: 'remit', mode: 'grouped', reqId: 'p1:r2', from: 'p1', transactions: [signProof(proxyKey, claim, 'localOffline')] });
        const ctx: ServerContext = { scheme, serverKey: keyFor('checkers:server', scheme), publicKeyOf: run.publicKeyOf, nowMs: 0 };
        const result = handleRequest(run.ledger, request, ctx);
        expect(result).toMatchObject({ ok: false, code: 'replayedCounter' });
        const answers = new AnswersOfSd(new InvariantBook(1, () => 0, new RecentEvents(), false));
        answers.seeAnswer('p1', 'p1:r2', result);
        // An altered copy's refusal is not stored: it is no refusal of the honest remittance.
        answers.seeAnswer('p1', 'p1:r3', { ...result, reqId: 'p1:r3', code: 'badSignature' });
        expect(answers.remitRefusals).toHaveLength(1);
        expect(endViolations(run, (input) => ({ ...input, remitRefusals: answers.remitRefusals }))).toEqual(['INV-7']);
      }),
      { numRuns: 10 },
    );
  });

  it('report a backlog left after the drain, on a terminal or a POS [INV-7]', () => {
    const run = honestRun('sim', [100, 200, 300]);
    expect(endViolations(run, (input) => ({ ...input, terminals: [{ terminalId: 'p1', up: true, journal: { pending: [run.proofs[0]!], outbox: [] } }] }))).toEqual(['INV-7']);
    expect(endViolations(run, (input) => ({ ...input, terminals: [{ terminalId: 'p1', up: false, journal: { pending: [], outbox: [] } }] }))).toEqual(['INV-7']);
    expect(endViolations(run, (input) => ({ ...input, pos: [{ posId: 'pos1', unsettled: 2 }] }))).toEqual(['INV-7']);
  });
});

const policy: ProxyPolicy = { discrimination: defaultDiscriminationPolicy, confirmation: defaultConfirmationPolicy, remittance: defaultRemittancePolicy, remoteTimeoutMs: 30_000 };
const { thresholdMinor, offline } = defaultDiscriminationPolicy;

const orderArb: fc.Arbitrary<PaymentOrder> = fc.record({
  orderId: fc.constantFrom('o1', 'o2'),
  source: fc.constant({ kind: 'app' as const, appId: 'shop' }),
  type: fc.constantFrom('telepayment' as const, 'proximity' as const),
  meansId: fc.constantFrom('m1', 'm2'),
  amountMinor: fc.integer({ min: 1, max: offline.perPaymentCapMinor }),
  payee: fc.constantFrom('shop', 'cafe'),
});

function approval(order: PaymentOrder, path: Proof['path'], change: Partial<Proof> = {}) {
  const proof: Proof = { txId: 't1', amountMinor: order.amountMinor, payee: order.payee, timeMs: 0, counter: 1, proxyId: 'p1', meansId: order.meansId, sig: 's', path, ...change };
  return { orderId: order.orderId, ok: true as const, proof };
}

describe('the order oracle flags every answer the policy does not allow [ORACLE]', () => {
  it('passes honest answers and flags an approval that differs from the order in amount, payee or means', () => {
    runProperty(
      fc.property(orderArb, fc.integer({ min: 1, max: 100 }), (order, delta) => {
        const path = order.amountMinor <= thresholdMinor ? 'localBelowThreshold' : 'remote';
        expect(oracleProblem(policy, order, approval(order, path))).toBeUndefined();
        expect(oracleProblem(policy, order, { orderId: order.orderId, ok: false, reason: 'userDeclined' })).toBeUndefined();
        expect(oracleProblem(policy, order, approval(order, path, { amountMinor: order.amountMinor + delta }))).toMatch(/^approved/);
        expect(oracleProblem(policy, order, approval(order, path, { payee: `${order.payee}-other` }))).toMatch(/^approved/);
        expect(oracleProblem(policy, order, approval(order, path, { meansId: `${order.meansId}-other` }))).toMatch(/^approved/);
        expect(oracleProblem(policy, order, { orderId: 'elsewhere', ok: false, reason: 'x' })).toMatch(/given to/);
      }),
      { numRuns: 100 },
    );
  });

  it('flags a local approval over M0 in coverage, over the offline cap, or on the wrong internal path', () => {
    runProperty(
      fc.property(orderArb, fc.integer({ min: 1, max: 10_000 }), (order, over) => {
        const big = { ...order, amountMinor: thresholdMinor + over };
        expect(oracleProblem(policy, big, approval(big, 'localBelowThreshold'))).toMatch(/over M0/);
        const huge = { ...order, amountMinor: offline.perPaymentCapMinor + over };
        expect(oracleProblem(policy, huge, approval(huge, 'localOffline'))).toMatch(/per-payment cap/);
        expect(oracleProblem(policy, order, approval(order, 'internal'))).toMatch(/approved as internal/);
        const internal = { ...order, type: 'internal' as const };
        expect(oracleProblem(policy, internal, approval(internal, 'localOffline'))).toMatch(/internal order approved on path/);
        expect(oracleProblem(policy, internal, approval(internal, 'internal'))).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });

  it('derives the route again from what the proxy saw: flags a decline or a path the policy does not give (B2, the offline caps)', () => {
    const contextArb = fc.record({ inCoverage: fc.boolean(), pendingCount: fc.integer({ min: 0, max: offline.maxPendingCount + 2 }), pendingAmountMinor: fc.integer({ min: 0, max: offline.maxPendingAmountMinor + 100 }) });
    const amountArb = fc.integer({ min: 1, max: offline.perPaymentCapMinor + 1_000 });
    runProperty(
      fc.property(orderArb, amountArb, contextArb, (base, amountMinor, seen) => {
        const order = { ...base, amountMinor };
        const route = discriminate({ type: order.type, amountMinor, ...seen }, policy.discrimination);
        if (route.route === 'decline') {
          expect(oracleProblem(policy, order, { orderId: order.orderId, ok: false, reason: route.reason }, seen)).toBeUndefined();
          // Approved anyway (on whatever path), or declined for another route reason: flagged.
          expect(oracleProblem(policy, order, approval(order, 'localOffline'), seen)).toMatch(/the policy declines it/);
          const other = route.reason === 'offlinePendingCount' ? 'offlinePendingAmount' : 'offlinePendingCount';
          expect(oracleProblem(policy, order, { orderId: order.orderId, ok: false, reason: other }, seen)).toMatch(/the policy declines it/);
        } else {
          expect(oracleProblem(policy, order, approval(order, route.path), seen)).toBeUndefined();
          // A means-level refusal (SL, the ceiling) is the means' business; a route refusal is not allowed here.
          expect(oracleProblem(policy, order, { orderId: order.orderId, ok: false, reason: 'insufficientLocalBalance' }, seen)).toBeUndefined();
          expect(oracleProblem(policy, order, { orderId: order.orderId, ok: false, reason: 'offlinePendingCount' }, seen)).toMatch(/though the policy routes it/);
          // B2: a payment routed by coverage must not be approved on the other side of it.
          const wrongPath = route.path === 'localOffline' ? 'localBelowThreshold' : route.path === 'remote' ? 'localOffline' : route.path === 'localBelowThreshold' ? 'localOffline' : null;
          if (wrongPath) expect(oracleProblem(policy, order, approval(order, wrongPath), seen)).toBeDefined();
        }
      }),
      { numRuns: 200 },
    );
  });
});
