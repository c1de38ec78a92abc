// Goal: the end checks of both modes on a real ledger driven by SD's own rules: a clean drain passes every check,
// and each way a run can go wrong is reported under its invariant — a lost payment [INV-4], a declined remote
// payment whose reversal did not take [INV-4], a transaction posted by two requests [INV-4], a proof with no
// credit [INV-5], a terminal still down, a journal not empty or an app order never answered [INV-7] — and a payment still held in a journal is
// pending (INV-7), never lost.
// Method: SD's `handleRequest` on a MemoryLedgerStore; every answer goes through `AnswersOfSd` as a run's would.

import { describe, it, expect } from 'vitest';
import { InvariantBook, RecentEvents } from './invariantBook.ts';
import { checkAtEnd, type EndCheckInput } from './endChecks.ts';
import { AnswersOfSd } from './inv4NothingLostNothingTwice.ts';
import { EMPTY_JOURNAL } from './inv7Liveness.ts';
import { Ledger } from '../../machines/domain/ledger.ts';
import { MemoryLedgerStore } from '../../machines/domain/ledgerStore.ts';
import { keyFromSeed, signClaim, type PaymentClaim } from '../../machines/domain/signature.ts';
import { signProof, signRequest } from '../../machines/domain/requests.ts';
import { handleRequest, type ServerContext } from '../../machines/domain/serverRules.ts';
import type { Proof, ServerRequest, ServerResult } from '../../machines/messages.ts';
import type { OutboxItem } from '../../machines/domain/remittance.ts';

const seed = (n: number) => new Uint8Array(32).fill(n);

function run() {
  const key = keyFromSeed('sim', seed(1));
  const ctx: ServerContext = { scheme: 'sim', serverKey: keyFromSeed('sim', seed(9)), publicKeyOf: (id) => (id === 'p1' ? key.publicKey : undefined), nowMs: 0 };
  const ledger = new Ledger(new MemoryLedgerStore());
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 10_000, creditLimitMinor: 0 });
  const book = new InvariantBook(7, () => 0, new RecentEvents(), false);
  const answers = new AnswersOfSd(book);
  let counter = 0;
  const claim = (amountMinor: number): PaymentClaim => {
    counter++;
    return { txId: `p1:t${counter}`, amountMinor, payee: 'shop', timeMs: counter, counter, proxyId: 'p1', meansId: 'm1' };
  };
  const proof = (c: PaymentClaim, path: Proof['path'] = 'localOffline'): Proof => (signProof(key, c, path));
  const send = (unsigned: Record<string, unknown>): ServerResult => {
    const request = signRequest(key, { ...unsigned, from: 'p1' } as never) as ServerRequest;
    const result = handleRequest(ledger, request, ctx);
    answers.seeAnswer(request.from, request.reqId, result);
    return result;
  };
  const approved = new Map<string, { proof: Proof }>();
  const approve = (p: Proof) => approved.set(p.txId, { proof: p });
  const input = (over: Partial<EndCheckInput> = {}): EndCheckInput => ({
    book,
    ledgers: [{ label: 'shard 0', ledger }],
    approved,
    posProofs: [],
    reversed: answers.reversed,
    terminals: [{ terminalId: 't0', up: true, journal: EMPTY_JOURNAL }],
    pos: [{ posId: 'pos0', unsettled: 0 }],
    publicKeyOf: ctx.publicKeyOf,
    serverPublicKey: ctx.serverKey.publicKey,
    scheme: 'sim',
    duplicatedPostings: answers.duplicatedPostings,
    ...over,
  });
  const violationsOf = (id: string) => book.violations.filter((v) => v.invariant === id).map((v) => v.detail);
  return { ledger, book, answers, claim, proof, send, approve, approved, input, violationsOf };
}

describe('checkAtEnd', () => {
  it('passes a clean drain — remitted, debited, and a timed-out debit reversed — and sums the ledger figures', () => {
    const r = run();
    const local = [r.proof(r.claim(100)), r.proof(r.claim(200))];
    local.forEach(r.approve);
    expect(r.send({ kind: 'remit', mode: 'grouped', reqId: 'r1', transactions: local }).ok).toBe(true);
    const debit = { ...r.claim(500), path: 'remote' as const };
    const debited = r.send({ kind: 'debit', reqId: 'q1', claim: debit });
    // The proxy's proof of a remote payment carries SD's signed receipt [INV-5].
    r.approve({ ...r.proof(debit, 'remote'), serverOutcome: 'debited', serverSig: debited.receiptSig! });
    const timedOut = r.claim(900);
    r.send({ kind: 'debit', reqId: 'q2', claim: timedOut });
    expect(r.send({ kind: 'release', reqId: 'v1', txId: timedOut.txId }).ok).toBe(true);
    expect([...r.answers.reversed]).toEqual([timedOut.txId]);

    const figures = checkAtEnd(r.input());
    expect(r.book.violations.map((v) => v.detail)).toEqual([]);
    expect(figures).toEqual({ approvedAmountMinor: 800, postedAmountMinor: 800, lost: 0, heldInJournals: 0, duplicated: 0, unexpected: 0, sumOfBalancesMinor: 0 });
    const checks = Object.fromEntries(r.book.summary().map((c) => [c.id, c.checks]));
    // One per ledger [INV-3]; per approved payment and reversal, plus one per transaction an answer reported
    // posted (the remittance's two; a debit's answer names none) [INV-4]; per proof [INV-5]; per terminal and POS
    // unit, plus one for the orders still unanswered [INV-7].
    expect(checks).toMatchObject({ 'INV-3': 1, 'INV-4': 3 + 1 + 2, 'INV-5': 3, 'INV-7': 2 + 1 });
  });

  it('reports an approved payment the ledger never got, under INV-4 and INV-5', () => {
    const r = run();
    const lost = r.proof(r.claim(40));
    r.approve(lost);
    const figures = checkAtEnd(r.input());
    expect(figures.lost).toBe(1);
    expect(r.violationsOf('INV-4')).toEqual([expect.stringContaining(`${lost.txId} (40 to shop, approved by p1) is not on the ledger`)]);
    expect(r.violationsOf('INV-5')).toEqual([expect.stringContaining('no credit on the ledger')]);
  });

  it('reports a payment declined to its app and reversed whose hold is still active (the domain check, stricter than the old one)', () => {
    const r = run();
    const held = r.claim(300);
    r.send({ kind: 'auth', reqId: 'q1', claim: held });
    // SD reported the reversal, but the ledger still holds the money (a lost release, as a bug would do).
    r.answers.reversed.add(held.txId);
    checkAtEnd(r.input());
    expect(r.violationsOf('INV-4')).toEqual([expect.stringContaining(`${held.txId} was declined to its app but its hold is still active`)]);
  });

  it('counts a transaction SD reports posted by two different requests', () => {
    const r = run();
    const p = r.proof(r.claim(100));
    r.approve(p);
    const result = r.send({ kind: 'remit', mode: 'grouped', reqId: 'r1', transactions: [p] });
    // The same answer again (a resend) is not a second posting; another request naming it as posted is.
    r.answers.seeAnswer('p1', 'r1', result);
    expect(r.answers.duplicatedPostings).toBe(0);
    r.answers.seeAnswer('p1', 'r2', { ...result, reqId: 'r2' });
    expect(r.answers.duplicatedPostings).toBe(1);
    expect(checkAtEnd(r.input({ duplicatedPostings: r.answers.duplicatedPostings })).duplicated).toBe(1);
    expect(r.violationsOf('INV-4')).toEqual([`transaction ${p.txId} posted twice: by p1/r1 and again by p1/r2`]);
  });

  it('reports a terminal still down, a journal not empty and receipts not settled [INV-7]', () => {
    const r = run();
    const waiting = r.proof(r.claim(10));
    const journal = { pending: [waiting], outbox: [] };
    checkAtEnd(r.input({ terminals: [{ terminalId: 't0', up: false, journal: EMPTY_JOURNAL }, { terminalId: 't1', up: true, journal }], pos: [{ posId: 'pos0', unsettled: 2 }] }));
    expect(r.violationsOf('INV-7')).toEqual(['t0: still down after the drain time', 't1: 1 transactions not remitted, 0 requests not acknowledged', 'pos0: 2 receipts not settled after the drain time']);
  });

  it('reports app orders still waiting for their answer after the drain time [INV-7], and passes when there are none', () => {
    const clean = run();
    checkAtEnd(clean.input({ unansweredOrders: [] }));
    expect(clean.violationsOf('INV-7')).toEqual([]);
    const r = run();
    checkAtEnd(r.input({ unansweredOrders: ['t0:o1', 't0:o2'] }));
    expect(r.violationsOf('INV-7')).toEqual(['2 orders still waiting for their answer after the drain time (t0:o1, t0:o2)']);
  });

  it('does not count a payment still held in a journal or a POS unit\'s receipts as lost: it is pending, and INV-7 flags it', () => {
    const r = run();
    const pending = r.proof(r.claim(10));
    const inOutbox = r.proof(r.claim(20));
    const atPos = r.proof(r.claim(30));
    const gone = r.proof(r.claim(40));
    [pending, inOutbox, atPos, gone].forEach(r.approve);
    const outboxItem = { reqId: 'r9', request: { kind: 'remit' } as OutboxItem['request'], txs: [inOutbox], notBeforeMs: 0, attempts: 3, nextAttemptAtMs: 0, createdAtMs: 0 } as OutboxItem;
    const figures = checkAtEnd(
      r.input({
        posProofs: [atPos],
        terminals: [{ terminalId: 't1', up: true, journal: { pending: [pending], outbox: [outboxItem] } }],
        pos: [{ posId: 'pos0', unsettled: 1, unsettledTxIds: [atPos.txId] }],
      }),
    );
    // Held three ways (pending, sent and not acknowledged, a POS receipt not settled): none lost, none harmed yet.
    expect(figures.heldInJournals).toBe(3);
    // Approved and in no journal or ledger: that one is lost, under INV-4 and INV-5 as before.
    expect(figures.lost).toBe(1);
    expect(r.violationsOf('INV-4')).toEqual([expect.stringContaining(`${gone.txId} (40 to shop, approved by p1) is not on the ledger`)]);
    expect(r.violationsOf('INV-5')).toEqual([expect.stringContaining(`proof ${gone.txId}`)]);
    expect(r.violationsOf('INV-7')).toEqual([expect.stringContaining('t1: 1 transactions not remitted, 1 requests not acknowledged'), 'pos0: 1 receipts not settled after the drain time']);
  });

  it('counts a remote payment SD posted but whose proxy still waits for the answer as pending, not unexpected: INV-7 flags it unresolved', () => {
    const r = run();
    const inFlight = r.claim(70);
    // SD posted the debit; its answer never reached the proxy before the run ended (the broker or the proxy went down).
    expect(r.send({ kind: 'debit', reqId: 'q1', claim: { ...inFlight, path: 'remote' } }).ok).toBe(true);
    const stillWaiting = checkAtEnd(r.input({ terminals: [{ terminalId: 't0', up: true, journal: EMPTY_JOURNAL, remoteInFlight: inFlight.txId }] }));
    expect(stillWaiting.unexpected, JSON.stringify(r.book.violations)).toBe(0);
    expect(r.violationsOf('INV-4')).toEqual([]);
    expect(r.violationsOf('INV-7')).toEqual([`t0: remote payment ${inFlight.txId} sent to SD and still unresolved after the drain time`]);
    // The same posting with no proxy waiting for it: approved by nobody.
    const again = run();
    const orphan = again.claim(70);
    again.send({ kind: 'debit', reqId: 'q1', claim: { ...orphan, path: 'remote' } });
    // Flagged as posted by nobody's approval (and, once more, as the payee's credit nobody approved).
    expect(checkAtEnd(again.input()).unexpected).toBeGreaterThan(0);
    expect(again.violationsOf('INV-4')).toContainEqual(expect.stringContaining(`${orphan.txId} is posted (`));
  });
});
