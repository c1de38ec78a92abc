// Goal: the payment proxy (PP) told as small stories: an order goes in, the user confirms, the proxy
// discriminates, pays locally or at SD, and later remits; each story checks the receipt, the proxy's state and
// the server's ledger, including conservation [INV-3].
// Method: a World (one SD over an in-memory ledger, terminals on a TestBus, one SimulatedClock) drives the real
// machines; faults are bus filters (drop, duplicate) and injected messages (forgeries, replays).

import { describe, expect, it } from 'vitest';
import { keyOf, policyWith, walletMeans, World, type TerminalSpec } from './testing/world.ts';
import { signRemitNow, signRequest, signResult } from './domain/requests.ts';
import type { ProxyPolicy } from './domain/proxyRules.ts';
import { refusalFields, verifyFields } from './domain/signature.ts';
import type { RemitRequest, ServerRequest, ServerResult } from './messages.ts';

function oneTerminal(options: { policy?: ProxyPolicy; inCoverage?: boolean; means?: TerminalSpec['means'] } = {}): World {
  return new World({
    terminals: [{ id: 't1', means: options.means ?? [walletMeans('m1', 10_000)], inCoverage: options.inCoverage ?? true }],
    policy: options.policy,
  });
}

/** [INV-3 conservation] the server's ledger sums to zero. */
function expectConserved(world: World): void {
  expect(world.ledger.sumOfBalancesMinor()).toBe(0);
}

/** SD's answers to debits are lost on the way back: SD paid, the proxy never hears of it. */
function dropDebitResults(world: World): void {
  world.bus.filter = (m) => (m.message.kind === 'result' && m.message.requestKind === 'debit' ? 'drop' : 'deliver');
}

/** The 2 500 debit of m1 was undone at SD: the release acknowledged, the means whole again, the payee unpaid. */
function expectDebitReversed(world: World): void {
  expect(world.handled('release').at(-1)?.result).toMatchObject({ ok: true });
  expect(world.meansBalanceMinor('m1')).toBe(10_000);
  expect(world.payeeBalanceMinor('merchant:shop')).toBe(0);
  expect(world.proxyState('t1').journal.outbox).toEqual([]);
  expectConserved(world);
}

describe('proxy: internal payments', () => {
  it('pays an internal payment locally in coverage, without asking SD', () => {
    const world = oneTerminal({ policy: policyWith({ remittance: { triggers: { onPayment: false } } }) });
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 500 });
    expect(world.proofOf('o1').path).toBe('internal');
    // Small enough to need no answer: the user is only informed.
    expect(world.promptFor('o1')).toBeUndefined();
    expect(world.proxyEvents).toContainEqual({ type: 'proxy.inform', orderId: 'o1', amountMinor: 500, payee: 'merchant:shop' });
    expect(world.proxyState('t1').journal.pending.map((tx) => tx.amountMinor)).toEqual([500]);
    expect(world.handled('debit')).toHaveLength(0);
    expect(world.handled('auth')).toHaveLength(0);
  });

  it('pays an internal payment offline too, and remits it once coverage is back', () => {
    const world = oneTerminal({ inCoverage: false });
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 500 });
    const proof = world.proofOf('o1');
    expect(proof.path).toBe('internal');
    expect(world.ledger.postingOf(proof.txId)).toBeUndefined();

    world.setCoverage('t1', true);
    world.advance(1_000);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: 500, via: 'remit' });
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(500);
    expectConserved(world);
  });
});

describe('proxy: telepayments', () => {
  it('sends a telepayment over the threshold to SD as an authorisation, then captures it after delivery', () => {
    const world = oneTerminal();
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500, remoteMode: 'authCapture', captureAfterMs: 30_000 });
    const proof = world.proofOf('o1');
    expect(proof.path).toBe('remote');
    expect(proof.serverSig).toBeTruthy();
    // Authorised: the money is held, not yet paid.
    expect(world.ledger.holdOf(proof.txId)?.state).toBe('held');
    expect(world.ledger.postingOf(proof.txId)).toBeUndefined();
    expect(world.ledger.balanceOf('m1').availableMinor).toBe(7_500);
    expect(world.proxyState('t1').journal.outbox.map((i) => i.request.kind)).toEqual(['capture']);

    world.advance(29_000);
    expect(world.ledger.postingOf(proof.txId)).toBeUndefined();
    world.advance(2_000);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: 2_500, via: 'capture' });
    expect(world.ledger.holdOf(proof.txId)?.state).toBe('captured');
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(2_500);
    expect(world.proxyState('t1').journal.outbox).toEqual([]);
    expect(world.proxyEvents).toContainEqual(expect.objectContaining({ type: 'proxy.acknowledged', requestKind: 'capture' }));
    expectConserved(world);
  });

  it('debits a telepayment over the threshold at once when no confirmation is deferred', () => {
    const world = oneTerminal();
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    const proof = world.proofOf('o1');
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: 2_500, via: 'debit' });
    // SL follows SD's figure after the debit.
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 7_500, localSpentMinor: 0 });
    expectConserved(world);
  });

  it('pays a telepayment under the threshold locally in coverage and remits it when SD asks', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 500 });
    const proof = world.proofOf('o1');
    expect(proof.path).toBe('localBelowThreshold');
    expect(world.handled('debit')).toHaveLength(0);
    expect(world.proxyState('t1').means.m1!.localSpentMinor).toBe(500);

    world.requestRemittance('t1');
    world.advance(500);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: 500, via: 'remit' });
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 9_500, localSpentMinor: 0 });
    expectConserved(world);
  });

  it('declines a telepayment SD refuses, and reports SD’s reason', () => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)], openingBalanceMinor: 2_000 }] });
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    expect(world.declineOf('o1')).toBe('server:insufficientFunds');
    expect(world.ledger.postings()).toEqual([]);
    // The sync at start-up already brought SL from 10,000 down to SD's 2,000, and the refusal repeats that figure.
    expect(world.proxyState('t1').means.m1!.localBalanceMinor).toBe(2_000);
  });

  it('declines an order for a means it does not hold, or with an amount that is not a positive integer', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'nope', amountMinor: 100 });
    world.pay('t1', { orderId: 'o2', type: 'internal', meansId: 'm1', amountMinor: 0 });
    world.pay('t1', { orderId: 'o3', type: 'internal', meansId: 'm1', amountMinor: 12.5 });
    expect(['o1', 'o2', 'o3'].map((id) => world.declineOf(id))).toEqual(['unknownMeans', 'badAmount', 'badAmount']);
    expect(world.proxyState('t1').journal.pending).toEqual([]);
  });
});

describe('proxy: offline payments under stricter caps', () => {
  const capped = (overThreshold: 'decline' | 'approveUnderCaps') =>
    policyWith({ discrimination: { thresholdMinor: 2_000, offline: { perPaymentCapMinor: 3_000, maxPendingCount: 3, maxPendingAmountMinor: 4_000, overThreshold } } });

  it('approves offline payments up to the per-payment, count and amount caps, then remits them when coverage returns', () => {
    const world = oneTerminal({ policy: capped('approveUnderCaps'), inCoverage: false });
    const pay = (orderId: string, amountMinor: number) => world.payConfirmed('t1', { orderId, type: 'telepayment', meansId: 'm1', amountMinor });
    pay('o1', 3_500);
    expect(world.declineOf('o1')).toBe('offlinePerPaymentCap');
    pay('o2', 2_500); // over the threshold, approved locally under the caps
    expect(world.proofOf('o2').path).toBe('localOffline');
    pay('o3', 1_000);
    pay('o4', 600); // 2,500 + 1,000 + 600 > 4,000
    expect(world.declineOf('o4')).toBe('offlinePendingAmount');
    pay('o5', 400);
    pay('o6', 100); // a fourth pending transaction
    expect(world.declineOf('o6')).toBe('offlinePendingCount');
    const approved = ['o2', 'o3', 'o5'].map((id) => world.proofOf(id));
    expect(world.proxyState('t1').journal.pending).toHaveLength(3);
    expect(world.proxyState('t1').means.m1!.localSpentMinor).toBe(3_900);

    world.setCoverage('t1', true);
    world.advance(1_000);
    for (const proof of approved) expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: proof.amountMinor, via: 'remit' });
    expect(world.ledger.postings()).toHaveLength(3);
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 6_100, localSpentMinor: 0 });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(3_900);
    expect(world.meansBalanceMinor('m1')).toBe(6_100);
    expectConserved(world);
  });

  it('declines an offline payment over the threshold when the policy says so, but still pays small ones', () => {
    const world = oneTerminal({ policy: capped('decline'), inCoverage: false });
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    expect(world.declineOf('o1')).toBe('offlineOverThreshold');
    world.payConfirmed('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 1_500 });
    expect(world.proofOf('o2').path).toBe('localOffline');
  });

  it('refuses a local payment that would bring MTDL up to SL [INV-1]', () => {
    const world = oneTerminal({ inCoverage: false, means: [walletMeans('m1', 1_000)] });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 600 });
    world.pay('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 400 });
    expect(world.declineOf('o2')).toBe('localBalanceExceeded');
    world.pay('t1', { orderId: 'o3', type: 'telepayment', meansId: 'm1', amountMinor: 399 });
    expect(world.proofOf('o3').path).toBe('localOffline');
    const means = world.proxyState('t1').means.m1!;
    expect(means.localSpentMinor).toBeLessThan(means.localBalanceMinor);
  });
});

describe('proxy: confirmation and PIN', () => {
  it('declines when the user says no, and pays nothing', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    expect(world.promptFor('o1')?.kind).toBe('approve');
    expect(world.receiptFor('o1')).toBeUndefined();
    world.answer('t1', 'o1', false);
    expect(world.declineOf('o1')).toBe('userDeclined');
    expect(world.handled('debit')).toHaveLength(0);
    expect(world.proxyState('t1').journal.pending).toEqual([]);
  });

  it('declines a wrong PIN and spends one try; a right PIN restores the tries', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 6_000 });
    expect(world.promptFor('o1')?.kind).toBe('pin');
    world.answer('t1', 'o1', true, '0000');
    expect(world.declineOf('o1')).toBe('wrongPin');
    expect(world.proxyState('t1').pin.triesLeft).toBe(2);

    world.pay('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 6_000 });
    world.answer('t1', 'o2', true, world.pin);
    expect(world.proofOf('o2').path).toBe('remote');
    expect(world.proxyState('t1').pin.triesLeft).toBe(3);
  });

  it('blocks the PIN after three wrong tries; then even the right PIN cannot pay', () => {
    const world = oneTerminal();
    for (const orderId of ['o1', 'o2', 'o3']) {
      world.pay('t1', { orderId, type: 'telepayment', meansId: 'm1', amountMinor: 6_000 });
      world.answer('t1', orderId, true, '9999');
    }
    expect(['o1', 'o2', 'o3'].map((id) => world.declineOf(id))).toEqual(['wrongPin', 'wrongPin', 'pinBlocked']);
    expect(world.proxyState('t1').pin.triesLeft).toBe(0);

    world.pay('t1', { orderId: 'o4', type: 'telepayment', meansId: 'm1', amountMinor: 6_000 });
    world.answer('t1', 'o4', true, world.pin);
    expect(world.declineOf('o4')).toBe('pinBlocked');
    expect(world.promptFor('o4')).toBeUndefined();
    expect(world.handled('debit')).toHaveLength(0);
  });

  it('declines an order the user never answers', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.advance(60_000);
    expect(world.declineOf('o1')).toBe('confirmationTimeout');
    // The next order is served.
    world.pay('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 500 });
    expect(world.proofOf('o2').path).toBe('localBelowThreshold');
  });
});

describe('proxy: local payment sources', () => {
  it('makes a fixed amount unusable at the end of its period', () => {
    const means = walletMeans('m1', 10_000, { fixedAmount: { initialMinor: 3_000, remainingMinor: 3_000, validFromMs: 0, periodMs: 60_000 } });
    const world = oneTerminal({ means: [means] });
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 500 });
    expect(world.proofOf('o1').path).toBe('internal');
    expect(world.proxyState('t1').means.m1!.fixedAmount!.remainingMinor).toBe(2_500);
    world.advance(59_900);
    world.pay('t1', { orderId: 'o2', type: 'internal', meansId: 'm1', amountMinor: 500 });
    expect(world.proofOf('o2').path).toBe('internal');
    world.advance(100);
    world.pay('t1', { orderId: 'o3', type: 'internal', meansId: 'm1', amountMinor: 500 });
    expect(world.declineOf('o3')).toBe('fixedAmountExpired');
    expect(world.proxyState('t1').means.m1!.fixedAmount!.remainingMinor).toBe(2_000);
  });

  it('resets a recurring amount exactly at the period boundary', () => {
    const means = walletMeans('m1', 10_000, { recurring: { amountMinor: 1_000, remainingMinor: 1_000, originMs: 0, periodMs: 60_000, periodIndex: 0 } });
    const world = oneTerminal({ means: [means] });
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 600 });
    world.pay('t1', { orderId: 'o2', type: 'internal', meansId: 'm1', amountMinor: 600 });
    expect(world.declineOf('o2')).toBe('recurringInsufficient');
    world.advance(59_900);
    world.pay('t1', { orderId: 'o3', type: 'internal', meansId: 'm1', amountMinor: 600 });
    expect(world.declineOf('o3')).toBe('recurringInsufficient');
    world.advance(100);
    world.pay('t1', { orderId: 'o4', type: 'internal', meansId: 'm1', amountMinor: 600 });
    expect(world.proofOf('o4').path).toBe('internal');
    expect(world.proxyState('t1').means.m1!.recurring).toMatchObject({ periodIndex: 1, remainingMinor: 400 });
  });

  it('keeps period spending under the ceiling, remote payments included [INV-2]', () => {
    const ceiling = { ceilingMinor: 4_000, originMs: 0, periodMs: 60_000, periodIndex: 0, periodSpentMinor: 0 };
    const world = oneTerminal({ means: [walletMeans('m1', 10_000, { ceiling })] });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 1_000 });
    world.payConfirmed('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    expect(world.proofOf('o2').path).toBe('remote');
    world.pay('t1', { orderId: 'o3', type: 'telepayment', meansId: 'm1', amountMinor: 600 });
    expect(world.declineOf('o3')).toBe('ceilingExceeded');
    world.pay('t1', { orderId: 'o4', type: 'telepayment', meansId: 'm1', amountMinor: 500 });
    expect(world.proxyState('t1').means.m1!.ceiling!.periodSpentMinor).toBe(4_000);
    world.advance(60_000, 1_000);
    world.pay('t1', { orderId: 'o5', type: 'telepayment', meansId: 'm1', amountMinor: 600 });
    expect(world.proofOf('o5').path).toBe('localBelowThreshold');
  });

  it('syncs SL and MTDL of a shared means from SD, counting spending elsewhere', () => {
    const world = oneTerminal({ inCoverage: false, means: [walletMeans('m1', 10_000, { dedicated: false })] });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 800 });
    world.pay('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 700 });
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 10_000, localSpentMinor: 1_500 });
    // Another point of issue spends from the same means at SD meanwhile.
    world.ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'merchant:elsewhere', amountMinor: 3_000 });

    world.setCoverage('t1', true);
    // The sync answers before the remittance is posted: SL is SD's figure less what SD has not seen yet.
    expect(world.handled('sync').length).toBeGreaterThan(0);
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 5_500, localSpentMinor: 0 });
    world.advance(1_000);
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 5_500, localSpentMinor: 0 });
    expect(world.ledger.balanceOf('m1').availableMinor).toBe(5_500);
    expectConserved(world);
  });
});

describe('proxy: remittance (K2)', () => {
  const offlinePayments = (world: World, payments: Array<[string, number, string]>) => {
    for (const [orderId, amountMinor, payee] of payments) world.pay('t1', { orderId, type: 'telepayment', meansId: 'm1', amountMinor, payee });
    return payments.map(([orderId]) => world.proofOf(orderId));
  };

  it('remits grouped, at most maxBatchSize transactions per request, each posted with its own amount', () => {
    const world = oneTerminal({ inCoverage: false, policy: policyWith({ remittance: { mode: 'grouped', maxBatchSize: 2 } }) });
    const proofs = offlinePayments(world, [['o1', 300, 'merchant:a'], ['o2', 200, 'merchant:a'], ['o3', 400, 'merchant:b']]);
    world.setCoverage('t1', true);
    world.advance(1_000);
    const remits = world.handled('remit').map((h) => h.request as RemitRequest);
    expect(remits.map((r) => r.mode === 'grouped' && r.transactions.length)).toEqual([2, 1]);
    for (const proof of proofs) expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: proof.amountMinor, via: 'remit' });
    expect(world.payeeBalanceMinor('merchant:a')).toBe(500);
    expect(world.payeeBalanceMinor('merchant:b')).toBe(400);
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expectConserved(world);
  });

  it('remits aggregate sums per payee, and SD marks every covered transaction posted', () => {
    const world = oneTerminal({ inCoverage: false, policy: policyWith({ remittance: { mode: 'aggregate' } }) });
    const proofs = offlinePayments(world, [['o1', 300, 'merchant:a'], ['o2', 200, 'merchant:a'], ['o3', 400, 'merchant:b']]);
    world.setCoverage('t1', true);
    world.advance(1_000);
    const [remit, ...more] = world.handled('remit');
    expect(more).toEqual([]);
    expect(remit?.request).toMatchObject({ mode: 'aggregate' });
    expect(world.ledger.aggregates().map((a) => [a.payee, a.sumMinor, a.txIds.length])).toEqual([
      ['merchant:a', 500, 2],
      ['merchant:b', 400, 1],
    ]);
    for (const proof of proofs) expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'aggregate', amountMinor: null });
    expect(world.payeeBalanceMinor('merchant:a')).toBe(500);
    expect(world.payeeBalanceMinor('merchant:b')).toBe(400);
    expect(world.proxyEvents.filter((e) => e.type === 'proxy.remitted').flatMap((e) => (e.type === 'proxy.remitted' ? e.txs : []))).toHaveLength(3);
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expectConserved(world);
  });

  it('remits on the backlog trigger in coverage', () => {
    const world = oneTerminal({ policy: policyWith({ remittance: { triggers: { backlogCount: 3, onPayment: false } } }) });
    offlinePayments(world, [['o1', 100, 'merchant:a'], ['o2', 100, 'merchant:a']]);
    world.advance(1_000);
    expect(world.handled('remit')).toHaveLength(0);
    offlinePayments(world, [['o3', 100, 'merchant:a']]);
    world.advance(1_000);
    expect(world.handled('remit')).toHaveLength(1);
    expect(world.ledger.postings()).toHaveLength(3);
  });

  it('remits a local payment made in coverage at once when the policy triggers on any payment', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    const proof = world.proofOf('o1');
    expect(proof.path).toBe('localBelowThreshold');
    world.advance(500);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: 300, via: 'remit' });
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
  });

  it('keeps a local payment made in coverage when the policy does not trigger on payments', () => {
    const world = oneTerminal({ policy: policyWith({ remittance: { triggers: { onPayment: false } } }) });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    world.advance(500);
    expect(world.handled('remit')).toHaveLength(0);
    expect(world.proxyState('t1').journal.pending).toHaveLength(1);
  });

  it('acts only on a remittance request SD signed for this proxy, once per request id', () => {
    const world = oneTerminal({ policy: policyWith({ remittance: { triggers: { onPayment: false } } }) });
    const pay = (orderId: string) => world.pay('t1', { orderId, type: 'telepayment', meansId: 'm1', amountMinor: 100 });
    const refusals = () => world.proxyEvents.filter((e) => e.type === 'proxy.refused').map((e) => (e.type === 'proxy.refused' ? e.reason : ''));
    pay('o1');
    const mallory = keyOf('mallory', world.scheme);
    // Signed by someone else, or by SD for another proxy: nothing is remitted.
    world.terminals.get('t1')!.send({ type: 'remit.now', request: signRemitNow(mallory, { reqId: 'x:1', from: 'sd-0', to: 't1', issuedAtMs: world.now() }) });
    const forOther = signRemitNow(world.serverKey, { reqId: 'x:2', from: 'sd-0', to: 't2', issuedAtMs: world.now() });
    world.terminals.get('t1')!.send({ type: 'remit.now', request: forOther });
    // Unsigned, as the old message was, over the link: refused too.
    world.bus.inject({ from: 'server', to: 't1', message: { kind: 'remitNow', reqId: 'x:3', from: 'sd-0', to: 't1', issuedAtMs: world.now(), sig: '' } });
    world.advance(500);
    expect(world.handled('remit')).toHaveLength(0);
    expect(refusals()).toEqual(['badRemitRequestSignature', 'remitRequestNotForMe', 'badRemitRequestSignature']);
    // SD's own request over the link is acted on.
    const genuine = signRemitNow(world.serverKey, { reqId: 'sd:n7', from: 'sd-0', to: 't1', issuedAtMs: world.now() });
    world.bus.inject({ from: 'server', to: 't1', message: genuine });
    world.advance(500);
    expect(world.handled('remit')).toHaveLength(1);
    // Replayed later, with a new payment waiting: refused, the payment waits for its own trigger.
    pay('o2');
    world.bus.inject({ from: 'server', to: 't1', message: genuine });
    world.advance(500);
    expect(world.handled('remit')).toHaveLength(1);
    expect(refusals().at(-1)).toBe('replayedRemitRequest');
  });

  it('answers a repeated order from its means\' durable record even after a burst of 40 other orders, and signs refusals', () => {
    const world = oneTerminal({ policy: policyWith({ remittance: { triggers: { onPayment: false } } }) });
    world.pay('t1', { orderId: 'first', type: 'telepayment', meansId: 'm1', amountMinor: 100 });
    const proof = world.proofOf('first');
    for (let i = 0; i < 40; i++) world.pay('t1', { orderId: `o${i}`, type: 'internal', meansId: 'm1', amountMinor: 1 });
    world.pay('t1', { orderId: 'first', type: 'telepayment', meansId: 'm1', amountMinor: 100 });
    const answers = world.terminalEvents.filter((e) => e.type === 'terminal.receipt' && e.order.orderId === 'first');
    expect(answers).toHaveLength(2);
    expect(answers.map((e) => (e.type === 'terminal.receipt' && e.response.ok ? e.response.proof.txId : undefined))).toEqual([proof.txId, proof.txId]);
    expect(world.proxyState('t1').history.m1!.map((h) => h.orderId)).toContain('first');
    // A refusal carries the proxy's signature over its id, the order and the reason.
    world.pay('t1', { orderId: 'unknown', type: 'telepayment', meansId: 'm9', amountMinor: 100 });
    const refusal = world.receiptFor('unknown')!.response;
    expect(refusal).toMatchObject({ ok: false, reason: 'unknownMeans', proxyId: 't1' });
    if (refusal.ok) throw new Error('approved');
    expect(verifyFields(world.scheme, world.proxyKeys.get('t1')!.publicKey, refusalFields({ proxyId: 't1', orderId: 'unknown', reason: 'unknownMeans' }), refusal.sig)).toBe(true);
    expect(verifyFields(world.scheme, world.proxyKeys.get('t1')!.publicKey, refusalFields({ proxyId: 't1', orderId: 'unknown', reason: 'userDeclined' }), refusal.sig)).toBe(false);
  });

  it('remits when SD asks for it (remitNow)', () => {
    const world = oneTerminal();
    const [proof] = offlinePayments(world, [['o1', 100, 'merchant:a']]);
    world.server.send({ type: 'server.remitNow', proxyId: 't1' });
    world.advance(500);
    expect(world.ledger.postingOf(proof!.txId)).toMatchObject({ via: 'remit' });
  });

  it('remits on the date trigger within everyMs of the first pending payment, even while payments keep coming', () => {
    const world = oneTerminal({ policy: policyWith({ remittance: { triggers: { everyMs: 60_000, backlogCount: 100, onPayment: false } } }) });
    for (let i = 1; i <= 6; i++) {
      world.pay('t1', { orderId: `o${i}`, type: 'telepayment', meansId: 'm1', amountMinor: 100 });
      world.advance(20_000);
    }
    const [first] = world.handled('remit');
    expect(first).toBeDefined();
    expect(first!.atMs).toBeLessThanOrEqual(60_100);
  });

  it('posts once when the network delivers a remittance twice', () => {
    const world = oneTerminal({ inCoverage: false });
    const proofs = offlinePayments(world, [['o1', 300, 'merchant:a'], ['o2', 200, 'merchant:a']]);
    world.bus.filter = (m) => (m.message.kind === 'remit' ? 'duplicate' : 'deliver');
    world.setCoverage('t1', true);
    world.advance(1_000);
    const remits = world.handled('remit');
    expect(remits).toHaveLength(2);
    expect(remits[1]!.result).toEqual(remits[0]!.result);
    expect(world.ledger.postings().map((p) => p.txId).sort()).toEqual(proofs.map((p) => p.txId).sort());
    expect(world.payeeBalanceMinor('merchant:a')).toBe(500);
    expect(world.proxyEvents.filter((e) => e.type === 'proxy.remitted')).toHaveLength(1);
    expectConserved(world);
  });

  it('changes nothing when a remittance is replayed later, as it was or re-signed under a new request id', () => {
    const world = oneTerminal({ inCoverage: false });
    offlinePayments(world, [['o1', 300, 'merchant:a'], ['o2', 200, 'merchant:a']]);
    world.setCoverage('t1', true);
    world.advance(1_000);
    const original = world.bus.delivered.find((m) => m.message.kind === 'remit')!;
    const before = world.accountBalances();

    world.advance(3_600_000, 600_000);
    world.bus.inject({ ...original, message: structuredClone(original.message) });
    world.settle();
    expect(world.handled('remit')).toHaveLength(2);
    expect(world.handled('remit')[1]!.result).toEqual(world.handled('remit')[0]!.result);

    // The same transactions under a fresh request id, validly signed: SD finds them posted already.
    const request = original.message as RemitRequest;
    const resigned = signRequest<RemitRequest>(world.proxyKeys.get('t1')!, { ...request, reqId: 't1:r-again' });
    world.bus.inject({ from: 't1', to: 'sd/0', message: resigned });
    world.settle();
    const again = world.handled('remit')[2]!.result;
    expect(again).toMatchObject({ ok: true, posted: [], alreadyPosted: request.mode === 'grouped' ? request.transactions.map((t) => t.txId) : [] });

    expect(world.accountBalances()).toEqual(before);
    expect(world.proxyEvents.filter((e) => e.type === 'proxy.remitted')).toHaveLength(1);
    expectConserved(world);
  });

  it('resends a remittance whose acknowledgement was lost, with growing backoff, and SD posts it once', () => {
    const world = oneTerminal({ inCoverage: false });
    const [proof] = offlinePayments(world, [['o1', 300, 'merchant:a']]);
    let acksToLose = 2;
    world.bus.filter = (m) => (m.message.kind === 'result' && m.message.requestKind === 'remit' && acksToLose-- > 0 ? 'drop' : 'deliver');
    world.setCoverage('t1', true);
    world.advance(10_000, 10);
    const sends = world.handled('remit');
    expect(sends).toHaveLength(3);
    expect(new Set(sends.map((s) => s.request.reqId)).size).toBe(1);
    const { initialMs } = world.policy.remittance.retry;
    const gaps = [sends[1]!.atMs - sends[0]!.atMs, sends[2]!.atMs - sends[1]!.atMs];
    // Jitter keeps each delay within [½, 1] of the doubled step.
    expect(gaps[0]).toBeGreaterThanOrEqual(initialMs / 2);
    expect(gaps[0]).toBeLessThanOrEqual(initialMs + 10);
    expect(gaps[1]).toBeGreaterThanOrEqual(initialMs);
    expect(gaps[1]).toBeLessThanOrEqual(2 * initialMs + 10);
    expect(world.ledger.postingOf(proof!.txId)).toMatchObject({ amountMinor: 300 });
    expect(world.payeeBalanceMinor('merchant:a')).toBe(300);
    expect(world.proxyState('t1').journal.outbox).toEqual([]);
    expectConserved(world);
  });
});

describe('proxy: a network that delivers everything twice', () => {
  it('pays, captures and remits each transaction once', () => {
    const world = oneTerminal({ inCoverage: false });
    world.bus.filter = () => 'duplicate';
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    world.pay('t1', { orderId: 'o2', type: 'internal', meansId: 'm1', amountMinor: 200 });
    world.setCoverage('t1', true);
    world.payConfirmed('t1', { orderId: 'o3', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.payConfirmed('t1', { orderId: 'o4', type: 'telepayment', meansId: 'm1', amountMinor: 3_000, remoteMode: 'authCapture', captureAfterMs: 5_000 });
    world.advance(10_000);
    const proofs = ['o1', 'o2', 'o3', 'o4'].map((id) => world.proofOf(id));
    expect(world.ledger.postings().map((p) => p.txId).sort()).toEqual(proofs.map((p) => p.txId).sort());
    for (const proof of proofs) expect(world.ledger.postingOf(proof.txId)?.amountMinor).toBe(proof.amountMinor);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(6_000);
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 4_000, localSpentMinor: 0 });
    expectConserved(world);
  });
});

describe('proxy: forged messages [INV-6]', () => {
  function forgedResult(world: World, fields: Omit<ServerResult, 'kind' | 'serverSig' | 'to'>, sig: 'garbage' | 'wrongKey'): ServerResult {
    const unsigned = { kind: 'result' as const, to: 't1', ...fields };
    return sig === 'garbage' ? { ...unsigned, serverSig: 'forged' } : signResult(keyOf('mallory', world.scheme), unsigned);
  }

  it('refuses an acknowledgement that SD did not sign, and keeps the remittance until the real one', () => {
    const world = oneTerminal({ inCoverage: false });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    world.setCoverage('t1', true);
    const [item] = world.proxyState('t1').journal.outbox;
    expect(item?.request.kind).toBe('remit');
    for (const sig of ['garbage', 'wrongKey'] as const) {
      world.bus.inject({ from: 'sd/0', to: 't1', message: forgedResult(world, { reqId: item!.reqId, requestKind: 'remit', ok: true, code: 'ok', posted: [] }, sig) });
      world.settle();
    }
    expect(world.proxyEvents.filter((e) => e.type === 'proxy.refused')).toEqual([
      { type: 'proxy.refused', reason: 'badServerSignature' },
      { type: 'proxy.refused', reason: 'badServerSignature' },
    ]);
    expect(world.proxyState('t1').journal.outbox.map((i) => i.reqId)).toEqual([item!.reqId]);

    world.advance(1_000);
    expect(world.ledger.postings()).toHaveLength(1);
    expect(world.proxyState('t1').journal.outbox).toEqual([]);
  });

  it('does not approve a remote payment on a forged result', () => {
    const world = oneTerminal();
    world.bus.filter = (m) => (m.message.kind === 'debit' ? 'drop' : 'deliver');
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    const reqId = world.proxyOf('t1').getSnapshot().context.remote.request.reqId as string;
    world.bus.inject({ from: 'sd/0', to: 't1', message: forgedResult(world, { reqId, requestKind: 'debit', ok: true, code: 'ok', txId: 't1:t1' }, 'wrongKey') });
    world.settle();
    expect(world.receiptFor('o1')).toBeUndefined();
    expect(world.proxyEvents).toContainEqual({ type: 'proxy.refused', reason: 'badServerSignature' });
    world.advance(10_000);
    expect(world.declineOf('o1')).toBe('remoteTimeout');
  });
});

describe('proxy: crash and restore', () => {
  it('loses no pending transaction: a restored proxy remits what it approved before the crash', () => {
    const world = oneTerminal({ inCoverage: false });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    world.pay('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 200 });
    const proofs = [world.proofOf('o1'), world.proofOf('o2')];
    const state = world.crash('t1');
    world.advance(5_000);
    world.startTerminal('t1', { state: structuredClone(state), inCoverage: true });
    world.advance(1_000);
    for (const proof of proofs) expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: proof.amountMinor });
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    // The signature counter goes on from where it was: no transaction id is reused.
    world.pay('t1', { orderId: 'o3', type: 'telepayment', meansId: 'm1', amountMinor: 100 });
    expect(world.proofOf('o3').counter).toBe(3);
    expect(world.receiptFor('o1')?.response).toEqual(world.receiptsFor('o1')[0]?.response);
    expectConserved(world);
  });

  it('syncs afresh after a restore, so SL counts what was spent elsewhere while the terminal was down', () => {
    const world = oneTerminal({ means: [walletMeans('m1', 10_000, { dedicated: false })] });
    world.setCoverage('t1', false);
    world.setCoverage('t1', true);
    const state = world.crash('t1');
    world.ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'merchant:elsewhere', amountMinor: 3_000 });
    world.startTerminal('t1', { state: structuredClone(state) });
    world.advance(1_000);
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 7_000, localSpentMinor: 0 });
    // Every sync SD answered was a new request, not the replay of one made before the crash.
    const syncIds = world.handled('sync').map((h) => h.request.reqId);
    expect(new Set(syncIds).size).toBe(syncIds.length);
  });

  it('re-arms the deferred capture from the persisted outbox after a restore', () => {
    const world = oneTerminal();
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500, remoteMode: 'authCapture', captureAfterMs: 60_000 });
    const proof = world.proofOf('o1');
    world.advance(10_000);
    const state = world.crash('t1');
    world.startTerminal('t1', { state: structuredClone(state) });
    world.advance(45_000);
    expect(world.ledger.holdOf(proof.txId)?.state).toBe('held');
    world.advance(6_000);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: 2_500, via: 'capture' });
    expect(world.proxyState('t1').journal.outbox).toEqual([]);
    expectConserved(world);
  });

  it('releases at SD an authorisation that was in flight at the crash', () => {
    const world = oneTerminal();
    world.bus.filter = (m) => (m.message.kind === 'result' && m.message.requestKind === 'auth' ? 'drop' : 'deliver');
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500, remoteMode: 'authCapture', captureAfterMs: 1_000 });
    const state = world.crash('t1');
    const txId = state.remoteInFlight!.txId;
    expect(world.ledger.holdOf(txId)?.state).toBe('held');
    world.bus.filter = () => 'deliver';
    world.startTerminal('t1', { state: structuredClone(state) });
    world.advance(1_000);
    expect(world.ledger.holdOf(txId)?.state).toBe('released');
    expect(world.ledger.balanceOf('m1').availableMinor).toBe(10_000);
    expect(world.ledger.postingOf(txId)).toBeUndefined();
    expect(world.proxyState('t1').remoteInFlight).toBeUndefined();
    expect(world.proxyState('t1').journal.outbox).toEqual([]);
    expectConserved(world);
  });

  it('reverses at SD a debit that was in flight at the crash', () => {
    const world = oneTerminal();
    dropDebitResults(world);
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    const state = world.crash('t1');
    const txId = state.remoteInFlight!.txId;
    expect(world.ledger.postingOf(txId)).toBeDefined();
    world.bus.filter = () => 'deliver';
    world.startTerminal('t1', { state: structuredClone(state) });
    world.advance(1_000);
    expectDebitReversed(world);
  });
});

describe('proxy: repeated orders and remote timeouts', () => {
  it('answers a repeated order id with the first answer and pays once', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    world.payConfirmed('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.pay('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    for (const orderId of ['o1', 'o2']) {
      const receipts = world.receiptsFor(orderId);
      expect(receipts).toHaveLength(2);
      expect(receipts[1]!.response).toEqual(receipts[0]!.response);
    }
    expect(world.terminalEvents.filter((e) => e.type === 'terminal.confirm' && e.orderId === 'o2')).toHaveLength(1);
    expect(world.handled('debit')).toHaveLength(1);
    expect(world.proxyState('t1').counter).toBe(2);
    // The remote payment took the local one along to SD ("triggered by another payment"): each is posted once.
    world.advance(1_000);
    expect(world.ledger.postings().map((p) => [p.txId, p.amountMinor])).toEqual([
      ['t1:t2', 2_500],
      ['t1:t1', 300],
    ]);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(2_800);
    expectConserved(world);
  });

  it('ignores a repeat of an order that is still waiting for the user', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.answer('t1', 'o1', true);
    world.advance(1_000);
    expect(world.receiptsFor('o1')).toHaveLength(1);
    expect(world.handled('debit')).toHaveLength(1);
  });

  it('keeps resending a lost remote request after a coverage gap, and is answered before the timeout', () => {
    const world = oneTerminal();
    let lose = 1;
    world.bus.filter = (m) => (m.message.kind === 'debit' && lose-- > 0 ? 'drop' : 'deliver');
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.advance(1_000);
    world.setCoverage('t1', false);
    world.advance(2_000); // the first resend falls in the gap
    world.setCoverage('t1', true);
    world.advance(5_000);
    expect(world.proofOf('o1').path).toBe('remote');
    expect(world.ledger.postings()).toHaveLength(1);
  });

  it('declines a remote payment SD never answers, and queues its reversal until SD acknowledges it', () => {
    const world = oneTerminal();
    // SD is unreachable for payments and reversals alike, at first.
    world.bus.filter = (m) => (m.message.kind === 'debit' || m.message.kind === 'release' ? 'drop' : 'deliver');
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.advance(9_900);
    expect(world.receiptFor('o1')).toBeUndefined();
    // It was resent while waiting.
    expect(world.bus.dropped.filter((m) => m.message.kind === 'debit').length).toBeGreaterThan(1);
    world.advance(100);
    expect(world.declineOf('o1')).toBe('remoteTimeout');
    expect(world.proxyState('t1').remoteInFlight).toBeUndefined();
    expect(world.proxyState('t1').journal.outbox.map((i) => i.request.kind)).toEqual(['release']);
    world.advance(10_000);
    expect(world.proxyState('t1').journal.outbox.map((i) => i.request.kind)).toEqual(['release']);

    world.bus.filter = () => 'deliver';
    world.advance(20_000);
    expect(world.handled('release')).toHaveLength(1);
    expect(world.proxyEvents).toContainEqual(expect.objectContaining({ type: 'proxy.acknowledged', requestKind: 'release' }));
    expect(world.proxyState('t1').journal.outbox).toEqual([]);
    expect(world.ledger.postings()).toEqual([]);
    expectConserved(world);
  });

  it('voids at SD a remote payment it never received, so a late copy cannot pay', () => {
    const world = oneTerminal();
    let lost: ServerRequest | undefined;
    world.bus.filter = (m) => {
      if (m.message.kind !== 'debit') return 'deliver';
      lost = m.message;
      return 'drop';
    };
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.advance(10_000);
    expect(world.declineOf('o1')).toBe('remoteTimeout');
    world.advance(1_000);
    expect(world.handled('release').at(-1)?.result).toMatchObject({ ok: true });
    expect(world.proxyState('t1').journal.outbox).toEqual([]);
    // The debit arrives after all: SD refuses it, because the transaction was voided.
    world.bus.filter = () => 'deliver';
    world.bus.inject({ from: 't1', to: 'sd/0', message: lost! });
    world.settle();
    expect(world.handled('debit').at(-1)?.result.ok).toBe(false);
    expect(world.ledger.postings()).toEqual([]);
    expectConserved(world);
  });

  it('reverses at SD a debit whose answer was lost until the timeout', () => {
    const world = oneTerminal();
    dropDebitResults(world);
    world.payConfirmed('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    world.advance(10_000);
    expect(world.declineOf('o1')).toBe('remoteTimeout');
    world.advance(1_000);
    expectDebitReversed(world);
  });
});

describe('proxy: orders queued behind the one in hand', () => {
  it('takes queued orders in arrival order once the one in hand is answered, and refuses orders past the queue as busy', () => {
    const world = oneTerminal();
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 2_000 }); // the user must approve
    world.pay('t1', { orderId: 'o2', type: 'internal', meansId: 'm1', amountMinor: 500 }); // only shown to the user
    world.pay('t1', { orderId: 'o3', type: 'internal', meansId: 'm1', amountMinor: 1_500 }); // the user must approve
    for (let i = 4; i <= 17; i++) world.pay('t1', { orderId: `o${i}`, type: 'internal', meansId: 'm1', amountMinor: 100 });
    // o2…o17 fill the queue of 16; o18 finds it full.
    world.pay('t1', { orderId: 'o18', type: 'internal', meansId: 'm1', amountMinor: 100 });
    const answered = () => world.terminalEvents.flatMap((e) => (e.type === 'terminal.receipt' ? [e.order.orderId] : []));
    expect(answered()).toEqual(['o18']);
    expect(world.receiptFor('o18')!.response).toMatchObject({ orderId: 'o18', ok: false, reason: 'busy' });

    world.answer('t1', 'o1', true);
    expect(answered()).toEqual(['o18', 'o1', 'o2']);
    expect(world.promptFor('o3')).toBeDefined();

    world.answer('t1', 'o3', true);
    expect(answered()).toEqual(['o18', 'o1', 'o2', 'o3', ...Array.from({ length: 14 }, (_, i) => `o${i + 4}`)]);
    for (let i = 1; i <= 17; i++) expect(world.proofOf(`o${i}`).path).toBe('internal');
  });
});
