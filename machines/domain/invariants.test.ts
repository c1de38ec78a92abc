import { describe, it, expect } from 'vitest';
import {
  checkConservation,
  checkDrained,
  checkLocalBalance,
  checkMeansTransition,
  checkNothingLostNothingTwice,
  checkProofs,
  checkRefusedUnchanged,
  INVARIANTS,
  invariantName,
  ledgerFingerprint,
  type Violation,
} from './invariants.ts';
import { Ledger, payeeAccount } from './ledger.ts';
import { MemoryLedgerStore } from './ledgerStore.ts';
import { applyTransfer } from './ledgerAccounts.ts';
import { applySync, createMeans, localApproval, recordRemoteSpend, type MeansState } from './means.ts';
import { emptyJournal, formRemittances, queueReversal, recordLocal, defaultRemittancePolicy } from './remittance.ts';
import { keyFromSeed, signClaim, signServerReceipt, type PaymentClaim, type SignatureScheme } from './signature.ts';
import { signProof, signRequest } from './requests.ts';
import { handleRequest, type ServerContext } from './serverRules.ts';
import type { DebitRequest, Proof, ServerRequest } from '../messages.ts';

const ids = (violations: readonly Violation[]) => violations.map((v) => v.invariant);

/** Approves locally and returns the means after; fails the test if the rules refuse. */
function pay(means: MeansState, amountMinor: number, nowMs: number): MeansState {
  const approval = localApproval(means, amountMinor, nowMs);
  if (!approval.ok) throw new Error(`refused: ${approval.reason}`);
  return approval.means;
}

describe('INVARIANTS', () => {
  it('lists the seven invariants and the order oracle, each once, with the names summary.json uses', () => {
    expect(INVARIANTS.map((i) => i.id)).toEqual(['INV-1', 'INV-2', 'INV-3', 'INV-4', 'INV-5', 'INV-6', 'INV-7', 'ORACLE']);
    expect(new Set(INVARIANTS.map((i) => i.name)).size).toBe(INVARIANTS.length);
    expect(INVARIANTS[0]).toEqual({ id: 'INV-1', name: 'MTDL < SL' });
    expect(invariantName('INV-7')).toBe('liveness: every backlog drains');
  });
});

describe('checkLocalBalance [INV-1]', () => {
  const means = (localSpentMinor: number, localBalanceMinor = 100) => createMeans({ meansId: 'm1', kind: 'virtualWallet', dedicated: true, localBalanceMinor, localSpentMinor });

  it('holds for MTDL = 0 (even with SL = 0) and MTDL < SL', () => {
    expect(checkLocalBalance('p1', means(0, 0))).toEqual([]);
    expect(checkLocalBalance('p1', means(99))).toEqual([]);
  });

  it('reports MTDL = SL and MTDL > SL, naming the proxy', () => {
    expect(checkLocalBalance('p1', means(100))).toEqual([{ invariant: 'INV-1', subject: 'p1', message: 'p1/m1: MTDL 100 is not below SL 100' }]);
    expect(ids(checkLocalBalance('p1', means(150)))).toEqual(['INV-1']);
    expect(ids(checkLocalBalance('p1', { ...means(0), localSpentMinor: -5 }))).toEqual(['INV-1']);
  });
});

describe('checkMeansTransition [INV-2]', () => {
  const HOUR = 3_600_000;
  const base = { meansId: 'm1', kind: 'virtualWallet' as const, dedicated: true, localBalanceMinor: 100_000 };
  const withCeiling = createMeans({ ...base, ceiling: { ceilingMinor: 1_000, originMs: 0, periodMs: HOUR, periodIndex: 0, periodSpentMinor: 0 } });
  const withRecurring = createMeans({ ...base, recurring: { amountMinor: 500, remainingMinor: 500, originMs: 0, periodMs: HOUR, periodIndex: 0 } });
  const withFixed = createMeans({ ...base, fixedAmount: { initialMinor: 800, remainingMinor: 800, validFromMs: 1_000, periodMs: HOUR } });
  const withWallet = createMeans({ ...base, wallet: { balanceMinor: 300 } });

  it('holds along real transitions: local payments, a period boundary hit exactly, a remote payment, a sync', () => {
    const everything = createMeans({
      ...base,
      wallet: { balanceMinor: 5_000 },
      ceiling: { ceilingMinor: 1_000, originMs: 0, periodMs: HOUR, periodIndex: 0, periodSpentMinor: 0 },
      recurring: { amountMinor: 600, remainingMinor: 600, originMs: 0, periodMs: HOUR, periodIndex: 0 },
      fixedAmount: { initialMinor: 2_000, remainingMinor: 2_000, validFromMs: 0, periodMs: 3 * HOUR },
    });
    const steps: Array<[MeansState, { amountMinor: number; nowMs: number } | null]> = [];
    let m = everything;
    const local = (amountMinor: number, nowMs: number) => {
      const next = pay(m, amountMinor, nowMs);
      steps.push([next, { amountMinor, nowMs }]);
      m = next;
    };
    const other = (next: MeansState) => {
      steps.push([next, null]);
      m = next;
    };
    local(400, 10);
    local(200, HOUR - 1);
    local(300, HOUR); // exactly on the boundary: a new period, recurring back to S0, MTD from 0
    other(recordRemoteSpend(m, 250, HOUR + 5));
    other(applySync(m, 9_000, 7, 0));
    other(recordRemoteSpend(m, 10, 2 * HOUR + 1)); // a remote payment rolls the periods too
    local(100, 2 * HOUR + 2);
    let before = everything;
    for (const [after, payment] of steps) {
      expect(checkMeansTransition(before, after, payment)).toEqual([]);
      before = after;
    }
    expect(m.recurring).toMatchObject({ periodIndex: 2, remainingMinor: 500 });
  });

  it('reports MTD above PD, and MTD falling within a period', () => {
    const over = { ...withCeiling, ceiling: { ...withCeiling.ceiling!, periodSpentMinor: 1_001 } };
    expect(ids(checkMeansTransition(withCeiling, over, null))).toEqual(['INV-2']);
    const spent = pay(withCeiling, 600, 10);
    const fell = { ...spent, ceiling: { ...spent.ceiling!, periodSpentMinor: 100 } };
    expect(checkMeansTransition(spent, fell, null)[0]?.message).toContain('MTD went from 600');
  });

  it('reports a local payment not counted in MTD, and MTD not reset at the boundary', () => {
    const spent = pay(withCeiling, 600, 10);
    expect(ids(checkMeansTransition(spent, spent, { amountMinor: 50, nowMs: 20 }))).toEqual(['INV-2']);
    // A payment exactly at the boundary counted in the old period.
    const late = { ...spent, ceiling: { ...spent.ceiling!, periodSpentMinor: 650 } };
    expect(checkMeansTransition(spent, late, { amountMinor: 50, nowMs: HOUR }).map((v) => v.message).join()).toContain('for a payment at 3600000 in period 1');
  });

  it('reports negative wallet, fixed and recurring balances', () => {
    expect(ids(checkMeansTransition(withWallet, { ...withWallet, wallet: { balanceMinor: -1 } }, null))).toEqual(['INV-2']);
    expect(checkMeansTransition(withFixed, { ...withFixed, fixedAmount: { ...withFixed.fixedAmount!, remainingMinor: -1 } }, null).map((v) => v.message)).toContain('m1: fixed amount -1 is negative');
    expect(checkMeansTransition(withRecurring, { ...withRecurring, recurring: { ...withRecurring.recurring!, remainingMinor: -1 } }, null).map((v) => v.message)).toContain('m1: recurring amount -1 is negative');
  });

  it('reports a fixed amount spent before or after its period, and one changed without a payment', () => {
    const inside = pay(withFixed, 100, 1_000);
    expect(checkMeansTransition(withFixed, inside, { amountMinor: 100, nowMs: 1_000 })).toEqual([]);
    const spentAfter = { ...withFixed, fixedAmount: { ...withFixed.fixedAmount!, remainingMinor: 700 } };
    expect(ids(checkMeansTransition(withFixed, spentAfter, { amountMinor: 100, nowMs: 1_000 + HOUR }))).toEqual(['INV-2']);
    expect(ids(checkMeansTransition(withFixed, spentAfter, { amountMinor: 100, nowMs: 999 }))).toEqual(['INV-2']);
    expect(ids(checkMeansTransition(withFixed, spentAfter, null))).toEqual(['INV-2']);
  });

  it('reports a recurring amount not reset at a new period, or reset within one', () => {
    const spent = pay(withRecurring, 400, 10);
    // Next period, but the 100 left was carried over instead of reset to S0.
    const carried = { ...spent, recurring: { ...spent.recurring!, periodIndex: 1, remainingMinor: 100 - 50 } };
    expect(checkMeansTransition(spent, carried, { amountMinor: 50, nowMs: HOUR + 1 })[0]?.message).toContain('expected 450');
    // Same period, topped back up.
    const toppedUp = { ...spent, recurring: { ...spent.recurring!, remainingMinor: 500 } };
    expect(ids(checkMeansTransition(spent, toppedUp, null))).toEqual(['INV-2']);
    // Reset one period late: the payment at the boundary still used the old period's remainder.
    const late = { ...spent, recurring: { ...spent.recurring!, remainingMinor: 50 } };
    expect(checkMeansTransition(spent, late, { amountMinor: 50, nowMs: HOUR }).map((v) => v.message).join()).toContain('for a payment at 3600000 in period 1');
  });
});

describe('checkConservation [INV-3]', () => {
  it('holds on a real ledger after payments, and reports a balance changed without its counterpart', () => {
    const store = new MemoryLedgerStore();
    const ledger = new Ledger(store);
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1_000, creditLimitMinor: 0 });
    ledger.postPayment({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 1_500, requestId: 'p1/r1' }, 'remit');
    expect(checkConservation(ledger)).toEqual([]);
    const shop = store.getAccount(payeeAccount('shop'))!;
    store.putAccount({ ...shop, balanceMinor: shop.balanceMinor + 7 });
    expect(checkConservation(ledger, 'shard 3')).toEqual([{ invariant: 'INV-3', subject: 'shard 3', message: 'shard 3: the balances sum to 7, not 0' }]);
  });

  it('takes any source of the sum, such as a running total', () => {
    expect(checkConservation({ sumOfBalancesMinor: () => 0 })).toEqual([]);
    expect(ids(checkConservation({ sumOfBalancesMinor: () => -1 }))).toEqual(['INV-3']);
  });
});

// ------------------------------------------------------------------ a real server for INV-4, INV-5, INV-6

const seed = (n: number) => new Uint8Array(32).fill(n);

function server(scheme: SignatureScheme = 'sim') {
  const keys = { p1: keyFromSeed(scheme, seed(1)), p2: keyFromSeed(scheme, seed(2)) };
  const ctx: ServerContext = { scheme, serverKey: keyFromSeed(scheme, seed(9)), publicKeyOf: (id) => keys[id as keyof typeof keys]?.publicKey, nowMs: 0 };
  const store = new MemoryLedgerStore();
  const ledger = new Ledger(store);
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 10_000, creditLimitMinor: 0 });
  let counter = 0;
  const claim = (amountMinor: number, payee = 'shop', proxyId: 'p1' | 'p2' = 'p1'): PaymentClaim => {
    counter++;
    return { txId: `${proxyId}:t${counter}`, amountMinor, payee, timeMs: counter, counter, proxyId, meansId: 'm1' };
  };
  const proof = (c: PaymentClaim, path: Proof['path'] = 'localOffline'): Proof => (signProof(keys[c.proxyId as 'p1'], c, path));
  const send = (unsigned: Record<string, unknown>, from: 'p1' | 'p2' = 'p1') => handleRequest(ledger, signRequest(keys[from], { ...unsigned, from } as never) as ServerRequest, ctx);
  return { keys, ctx, store, ledger, claim, proof, send, scheme };
}

describe('checkNothingLostNothingTwice [INV-4]', () => {
  /** A run's worth of traffic, all well behaved: local payments remitted grouped and as aggregates, remote ones. */
  function drainedRun() {
    const s = server();
    const grouped = [s.proof(s.claim(100)), s.proof(s.claim(200))];
    const aggregated = [s.proof(s.claim(30)), s.proof(s.claim(70)), s.proof(s.claim(40, 'cafe'))];
    s.send({ kind: 'remit', mode: 'grouped', reqId: 'r1', transactions: grouped });
    // One aggregated transaction was also settled singly by a POS first.
    s.send({ kind: 'settle', reqId: 's1', proofs: [aggregated[0]] }, 'p2');
    s.send({ kind: 'remit', mode: 'aggregate', reqId: 'r2', aggregates: [
      { meansId: 'm1', payee: 'shop', sumMinor: 100, txIds: [aggregated[0]!.txId, aggregated[1]!.txId], counters: [aggregated[0]!.counter, aggregated[1]!.counter] },
      { meansId: 'm1', payee: 'cafe', sumMinor: 40, txIds: [aggregated[2]!.txId], counters: [aggregated[2]!.counter] },
    ] });
    const debit = s.claim(500);
    s.send({ kind: 'debit', reqId: 'q1', claim: debit });
    const auth = s.claim(300);
    s.send({ kind: 'auth', reqId: 'q2', claim: auth });
    s.send({ kind: 'capture', reqId: 'c1', txId: auth.txId, amountMinor: 300 });
    // Two remote payments declined to the app after a timeout: one SD had debited, one it never saw.
    const timedOut = s.claim(900);
    s.send({ kind: 'debit', reqId: 'q3', claim: timedOut });
    s.send({ kind: 'release', reqId: 'v1', txId: timedOut.txId });
    const neverSeen = s.claim(50);
    s.send({ kind: 'release', reqId: 'v2', txId: neverSeen.txId });
    const approved: Proof[] = [...grouped, ...aggregated, s.proof(debit, 'remote'), s.proof(auth, 'remote')];
    return { s, approved, reversed: [timedOut.txId, neverSeen.txId] };
  }

  it('holds after a clean drain, and sums what was approved and posted', () => {
    const { s, approved, reversed } = drainedRun();
    const report = checkNothingLostNothingTwice({ approved, reversed, ledger: s.ledger });
    expect(report.violations).toEqual([]);
    expect(report.counts).toEqual({ lost: 0, duplicated: 0, unexpected: 0, amountMismatch: 0 });
    expect(report.approvedAmountMinor).toBe(1_240);
    expect(report.postedAmountMinor).toBe(1_240);
    // The same with the shard list form and a given source of amounts.
    const source = new Map(approved.map((p) => [p.txId, p.amountMinor]));
    expect(checkNothingLostNothingTwice({ approved, reversed, ledger: [new Ledger(new MemoryLedgerStore()), s.ledger], aggregatesSource: source }).violations).toEqual([]);
  });

  it('reports an approved payment that never reached the ledger, and one that was reversed', () => {
    const { s, approved, reversed } = drainedRun();
    const missing = s.proof(s.claim(5));
    const report = checkNothingLostNothingTwice({ approved: [...approved, missing], reversed, ledger: s.ledger });
    expect(report.counts).toMatchObject({ lost: 1 });
    expect(report.violations).toEqual([expect.objectContaining({ invariant: 'INV-4', subject: missing.txId })]);
    // An authorisation whose capture never came is lost too.
    const held = s.claim(10);
    s.send({ kind: 'auth', reqId: 'q9', claim: held });
    expect(checkNothingLostNothingTwice({ approved: [...approved, s.proof(held, 'remote')], reversed, ledger: s.ledger }).counts.lost).toBe(1);
    // A payment the proxy approved and then reversed: lost to its payee.
    const reversedDebit = reversed[0]!;
    const asApproved = { txId: reversedDebit, meansId: 'm1', payee: 'shop', amountMinor: 900, proxyId: 'p1' };
    const both = checkNothingLostNothingTwice({ approved: [...approved, asApproved], reversed: [], ledger: s.ledger });
    expect(both.counts.lost).toBe(1);
    expect(both.violations[0]?.message).toContain('was reversed by p1/v1');
  });

  it('reports a posting nobody approved, and a declined payment still paid or held', () => {
    const { s, approved, reversed } = drainedRun();
    const dropped = approved.slice(1);
    expect(checkNothingLostNothingTwice({ approved: dropped, reversed, ledger: s.ledger }).counts).toMatchObject({ unexpected: 1 });
    // A declined debit whose reversal never reached SD, and a declined auth whose hold stays active.
    const paid = s.claim(20);
    s.send({ kind: 'debit', reqId: 'q7', claim: paid });
    const held = s.claim(30);
    s.send({ kind: 'auth', reqId: 'q8', claim: held });
    const report = checkNothingLostNothingTwice({ approved, reversed: [...reversed, paid.txId, held.txId], ledger: s.ledger });
    expect(report.counts.unexpected).toBe(2);
    expect(report.violations.map((v) => v.message).join('\n')).toMatch(/declined to its app and its reversal did not take[\s\S]*hold is still active|hold is still active[\s\S]*reversal did not take/);
  });

  it('reports a posted amount that differs from the approved one, and an aggregate that does not add up', () => {
    const { s, approved, reversed } = drainedRun();
    const changed = approved.map((p, i) => (i === 0 ? { ...p, amountMinor: p.amountMinor + 1 } : p));
    // Once for the transaction, once for its payee's reconciliation (the shop holds what was posted, not the claim).
    expect(checkNothingLostNothingTwice({ approved: changed, reversed, ledger: s.ledger }).counts).toMatchObject({ amountMismatch: 2 });
    // The proxy claimed 100 for the shop aggregate; planted: the approved amounts say 30 + 71.
    const aggregatedShop = approved[3]!;
    const source = new Map(approved.map((p) => [p.txId, p.txId === aggregatedShop.txId ? 71 : p.amountMinor]));
    const report = checkNothingLostNothingTwice({ approved, reversed, ledger: s.ledger, aggregatesSource: source });
    expect(report.counts.amountMismatch).toBe(1);
    expect(report.violations[0]?.message).toContain('sums 100, the approved transactions it covers 101');
  });

  it('reports an aggregate that moved a transaction already on the ledger again', () => {
    const { s, approved, reversed } = drainedRun();
    const [shopAggregate] = s.ledger.aggregates();
    // Planted: the aggregate paid the whole sum, though one of its transactions had been settled singly.
    s.store.putAggregate({ ...shopAggregate!, postedMinor: shopAggregate!.sumMinor });
    const report = checkNothingLostNothingTwice({ approved, reversed, ledger: s.ledger });
    expect(report.counts).toMatchObject({ duplicated: 1 });
    expect(report.violations[0]?.message).toContain('30 more than');
  });

  it('reports a transaction in two accepted aggregates that overlap', () => {
    const { s, approved, reversed } = drainedRun();
    const [shopAggregate] = s.ledger.aggregates();
    const member = shopAggregate!.txIds[1]!;
    const extra = s.proof(s.claim(5));
    s.store.putAggregate({ id: 'planted', meansId: 'm1', payee: 'shop', sumMinor: 75, txIds: [member, extra.txId], postedMinor: 5 });
    s.store.putPosting({ txId: extra.txId, meansId: 'm1', payee: 'shop', amountMinor: null, via: 'aggregate', requestId: 'p1/x', aggregateId: 'planted' });
    const overlap = checkNothingLostNothingTwice({ approved: [...approved, extra], reversed, ledger: s.ledger });
    expect(overlap.counts).toMatchObject({ duplicated: 1, lost: 0, unexpected: 0 });
    expect(overlap.violations[0]?.message).toContain('in two accepted aggregates');
  });

  it('reports a transaction posted on two shards', () => {
    const { s, approved, reversed } = drainedRun();
    const first = approved[0]!;
    const otherShard = new Ledger(new MemoryLedgerStore());
    otherShard.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1_000, creditLimitMinor: 0 });
    otherShard.postPayment({ txId: first.txId, meansId: 'm1', payee: 'shop', amountMinor: first.amountMinor, requestId: 'p1/r1' }, 'remit');
    const twice = checkNothingLostNothingTwice({ approved, reversed, ledger: [s.ledger, otherShard] });
    // The shop also holds the payment twice across the ledgers: its reconciliation fails too.
    expect(twice.counts).toEqual({ lost: 0, duplicated: 1, unexpected: 0, amountMismatch: 1 });
    expect(twice.violations[0]?.message).toBe(`${first.txId} is posted on two ledgers (the second on ledger 1)`);
  });

  it('reconciles every payee: what it holds is its approved payments on the ledger plus its external credits', () => {
    const { s, approved, reversed } = drainedRun();
    expect(checkNothingLostNothingTwice({ approved, reversed, ledger: s.ledger }).violations).toEqual([]);
    // Spending through another point of issue is an external credit, not a discrepancy.
    s.ledger.spendElsewhere({ transferId: 'web1', meansId: 'm1', payee: 'shop', amountMinor: 3 });
    expect(checkNothingLostNothingTwice({ approved, reversed, ledger: s.ledger }).violations).toEqual([]);
    // Planted: money moved to the shop's account with every posting right (a transfer to the wrong account).
    applyTransfer(s.store, 'planted', 'float', payeeAccount('shop'), 7, 'planted');
    const report = checkNothingLostNothingTwice({ approved, reversed, ledger: s.ledger });
    expect(report.counts).toEqual({ lost: 0, duplicated: 0, unexpected: 0, amountMismatch: 1 });
    expect(report.violations[0]?.message).toMatch(/^payee shop holds \d+ on the ledger; .* sum to \d+$/);
  });
});

describe('checkProofs [INV-5]', () => {
  function settled(scheme: SignatureScheme) {
    const s = server(scheme);
    const local = s.proof(s.claim(100));
    const aggregated = s.proof(s.claim(60));
    s.send({ kind: 'remit', mode: 'grouped', reqId: 'r1', transactions: [local] });
    s.send({ kind: 'remit', mode: 'aggregate', reqId: 'r2', aggregates: [{ meansId: 'm1', payee: 'shop', sumMinor: 60, txIds: [aggregated.txId], counters: [aggregated.counter] }] });
    const input = (proofs: Proof[]) => ({ proofs, scheme: s.scheme, publicKeyOf: s.ctx.publicKeyOf, serverPublicKey: s.ctx.serverKey.publicKey, ledger: s.ledger });
    return { s, local, aggregated, input };
  }

  it('holds for proofs that verify and are credited, held by both the app and the POS', () => {
    const { local, aggregated, input } = settled('ed25519');
    expect(checkProofs(input([local, aggregated, local]))).toEqual([]);
  });

  it('reports an altered proof, a proof by an unregistered proxy, and one with no credit', () => {
    const { s, local, input } = settled('sim');
    const altered = { ...local, amountMinor: 1 };
    expect(checkProofs(input([altered])).map((v) => v.message).join()).toContain('the signature does not verify');
    const stranger = { ...local, proxyId: 'ghost' };
    expect(checkProofs(input([stranger]))[0]?.message).toContain('ghost is not registered');
    const unpaid = s.proof(s.claim(5));
    expect(checkProofs(input([unpaid]))).toEqual([expect.objectContaining({ invariant: 'INV-5', subject: unpaid.txId, message: expect.stringContaining('no credit') })]);
  });

  it("checks SD's receipt in a remote payment's proof: present, for exactly that payment, and signed by SD", () => {
    const { s, input } = settled('ed25519');
    const claim = s.claim(40);
    const result = s.send({ kind: 'debit', reqId: 'd1', claim: { ...claim, path: 'remote' } });
    expect(result).toMatchObject({ ok: true });
    const remote: Proof = { ...s.proof(claim, 'remote'), serverOutcome: 'debited', serverSig: result.receiptSig! };
    expect(checkProofs(input([remote]))).toEqual([]);
    const { serverSig: _dropped, ...withoutReceipt } = remote;
    expect(checkProofs(input([withoutReceipt]))[0]?.message).toContain("SD's receipt (debited) does not verify");
    expect(checkProofs(input([{ ...remote, serverOutcome: 'authorised' }]))[0]?.message).toContain("SD's receipt (authorised) does not verify");
    expect(checkProofs(input([{ ...remote, serverSig: signServerReceipt(s.keys.p1, remote, 'debited') }]))[0]?.message).toContain("SD's receipt");
  });

  it('reports a proof whose credit went to another payee or was reversed', () => {
    const { s, local, input } = settled('sim');
    const posting = s.ledger.postingOf(local.txId)!;
    s.store.putPosting({ ...posting, payee: 'thief' });
    expect(checkProofs(input([local]))[0]?.message).toContain('to thief instead');
    s.store.putPosting({ ...posting, reversedBy: 'p1/v9' });
    expect(checkProofs(input([local]))[0]?.message).toContain('reversed by p1/v9');
    s.store.putPosting({ ...posting, amountMinor: 99 });
    expect(checkProofs(input([local]))[0]?.message).toContain('credited 99 instead');
  });
});

describe('ledgerFingerprint and checkRefusedUnchanged [INV-6]', () => {
  it('changes the fingerprint with every kind of change to the ledger, voids included', () => {
    const s = server();
    const prints = [ledgerFingerprint(s.ledger)];
    const step = () => prints.push(ledgerFingerprint(s.ledger));
    const held = s.claim(10);
    s.send({ kind: 'auth', reqId: 'a', claim: held });
    step();
    s.send({ kind: 'debit', reqId: 'd', claim: s.claim(10) });
    step();
    s.send({ kind: 'remit', mode: 'aggregate', reqId: 'g', aggregates: [{ meansId: 'm1', payee: 'shop', sumMinor: 5, txIds: ['x'], counters: [9_999] }] });
    step();
    s.send({ kind: 'release', reqId: 'v', txId: 'never-seen' });
    step();
    expect(new Set(prints).size).toBe(prints.length);
    // Answering a sync moves no money, but SD stores its answer: the fingerprint sees that too.
    s.send({ kind: 'sync', reqId: 's', meansId: 'm1' });
    step();
    expect(new Set(prints).size).toBe(prints.length);
  });

  it('sees a stored answer or a recorded counter that moved no money [INV-6]', () => {
    const s = server();
    const before = ledgerFingerprint(s.ledger);
    // Planted: an adversarial message that took a request id (its answer stored) or a counter, and nothing else.
    s.ledger.store.putResult('p1', 'taken', { fingerprint: 'x', result: { kind: 'result', reqId: 'taken', to: 'p1', requestKind: 'sync', ok: false, code: 'x', serverSig: '' } });
    const afterResult = ledgerFingerprint(s.ledger);
    expect(afterResult).not.toBe(before);
    s.ledger.store.putCounterUse('p1', 77, 'stolen');
    expect(ledgerFingerprint(s.ledger)).not.toBe(afterResult);
  });

  it('holds for a forged debit refused by SD, and for an exact replay given its stored answer', () => {
    const s = server('ed25519');
    const forger = keyFromSeed('ed25519', seed(66));
    const forged = signRequest<DebitRequest>(forger, { kind: 'debit', reqId: 'f1', from: 'p1', claim: s.claim(100) });
    let before = ledgerFingerprint(s.ledger);
    let result = handleRequest(s.ledger, forged, s.ctx);
    expect(checkRefusedUnchanged(before, ledgerFingerprint(s.ledger), result)).toEqual([]);

    const genuine = signRequest<DebitRequest>(s.keys.p1, { kind: 'debit', reqId: 'd1', from: 'p1', claim: s.claim(100) });
    handleRequest(s.ledger, genuine, s.ctx);
    before = ledgerFingerprint(s.ledger);
    result = handleRequest(s.ledger, genuine, s.ctx);
    expect(result.ok).toBe(true);
    expect(checkRefusedUnchanged(before, ledgerFingerprint(s.ledger), result, { exactReplay: true })).toEqual([]);
    // Not announced as a replay, an ok answer to an adversarial message is a violation.
    expect(ids(checkRefusedUnchanged(before, ledgerFingerprint(s.ledger), result))).toEqual(['INV-6']);
  });

  it('reports an adversarial message that changed the ledger, or was refused for another reason', () => {
    const s = server();
    const before = ledgerFingerprint(s.ledger);
    // Planted: a forged debit that got through.
    const result = s.send({ kind: 'debit', reqId: 'd1', claim: s.claim(100) });
    const violations = checkRefusedUnchanged(before, ledgerFingerprint(s.ledger), result);
    expect(violations.map((v) => v.message)).toEqual([
      expect.stringContaining('answered ok with code ok'),
      expect.stringContaining('changed the ledger'),
    ]);
    const short = s.send({ kind: 'debit', reqId: 'd2', claim: s.claim(1_000_000) });
    expect(short).toMatchObject({ ok: false, code: 'insufficientFunds' });
    expect(checkRefusedUnchanged(before, before, short)[0]?.message).toContain('refused with code insufficientFunds');
  });
});

describe('checkDrained [INV-7]', () => {
  const signer = { proxyId: 'p1', sign: <R,>(unsigned: unknown) => ({ ...(unsigned as object), sig: 's' }) as R };
  const tx: Proof = { txId: 'p1:t1', amountMinor: 10, payee: 'shop', timeMs: 0, counter: 1, proxyId: 'p1', meansId: 'm1', sig: 's', path: 'localOffline' };

  it('holds for an empty journal', () => {
    expect(checkDrained('p1', emptyJournal())).toEqual([]);
  });

  it('reports pending transactions and unacknowledged requests', () => {
    const pending = recordLocal(emptyJournal(), tx);
    expect(checkDrained('p1', pending)).toEqual([{ invariant: 'INV-7', subject: 'p1', message: 'p1: 1 transactions not remitted, 0 requests not acknowledged' }]);
    const sent = queueReversal(formRemittances(pending, defaultRemittancePolicy, signer, 0), signer, { txId: 'p1:t2', meansId: 'm1' }, 0);
    expect(checkDrained('p1', sent)[0]?.message).toBe('p1: 0 transactions not remitted, 2 requests not acknowledged: remit p1:r1 (0 attempts), release p1:v2 (0 attempts)');
  });
});
