// Goal: the point of sale (TP) told as small stories: a proximity sale over the near link, the customer's proof
// checked and kept, and the receipts settled with SD so the merchant is paid exactly once [INV-4, INV-5],
// whatever the terminal's coverage and whether or not the terminal also remits the same transaction.
// Method: a World with one terminal and one POS on a TestBus; the user is played by `answer`.

import { describe, expect, it } from 'vitest';
import { keyOf, policyWith, walletMeans, World } from './testing/world.ts';
import { isProofForSale, type PosEmitted } from './pos.ts';
import { signResult } from './domain/requests.ts';
import type { PaymentOrder, Proof, ProxyResponse, SettleRequest } from './messages.ts';

function shop(options: { terminalInCoverage?: boolean } = {}): World {
  return new World({
    terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)], inCoverage: options.terminalInCoverage ?? true }],
    pos: [{ id: 'p1', merchantId: 'merchant:shop' }],
    // The terminal keeps its local payments until asked, so the POS's settlement is what these stories watch.
    policy: policyWith({ remittance: { triggers: { onPayment: false } } }),
  });
}

function posEvents<T extends PosEmitted['type']>(world: World, type: T): Array<Extract<PosEmitted, { type: T }>> {
  return world.posEvents.filter((e): e is Extract<PosEmitted, { type: T }> => e.type === type);
}

/** Sells through the POS and lets the customer approve on the terminal; returns the proof the POS kept. */
function sell(world: World, amountMinor: number, meansId = 'm1'): Proof {
  const before = posEvents(world, 'pos.receipt').length;
  world.sale('p1', 't1', meansId, amountMinor);
  const orderId = world.pos.get('p1')!.getSnapshot().context.sale?.order.orderId;
  expect(world.promptFor(orderId!)?.kind).toBe('approve');
  world.answer('t1', orderId!, true);
  const receipt = posEvents(world, 'pos.receipt')[before];
  if (!receipt) throw new Error(`no POS receipt: ${JSON.stringify(posEvents(world, 'pos.declined'))}`);
  return receipt.proof;
}

describe('pos: proximity payments', () => {
  it('takes a proximity payment with a verified proof and settles it with SD', () => {
    const world = shop();
    const proof = sell(world, 800);
    expect(proof).toMatchObject({ amountMinor: 800, payee: 'merchant:shop', meansId: 'm1', path: 'localBelowThreshold', proxyId: 't1' });
    world.advance(500);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: 800, via: 'settle' });
    expect(posEvents(world, 'pos.settled')).toEqual([{ type: 'pos.settled', posId: 'p1', txIds: [proof.txId] }]);
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(800);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });

  it('credits the merchant once when the terminal remits the transaction the POS settled', () => {
    const world = shop();
    const proof = sell(world, 800);
    world.advance(500);
    world.requestRemittance('t1');
    world.advance(500);
    const remit = world.handled('remit').at(-1);
    expect(remit?.result).toMatchObject({ ok: true, posted: [], alreadyPosted: [proof.txId] });
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(800);
    expect(world.ledger.postings()).toHaveLength(1);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });

  it('works with the terminal out of coverage: the POS settles now, the terminal remits later, paid once', () => {
    const world = shop({ terminalInCoverage: false });
    const proof = sell(world, 1_500);
    expect(proof.path).toBe('localOffline');
    world.advance(500);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'settle' });

    world.setCoverage('t1', true);
    world.advance(500);
    expect(world.handled('remit').at(-1)?.result).toMatchObject({ ok: true, alreadyPosted: [proof.txId] });
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(1_500);
    expect(world.meansBalanceMinor('m1')).toBe(8_500);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });

  it('credits the merchant once when the terminal remits before the POS settles', () => {
    const world = shop();
    world.pos.get('p1')!.send({ type: 'coverage', inCoverage: false });
    const proof = sell(world, 800);
    world.requestRemittance('t1');
    world.advance(500);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'remit' });

    world.pos.get('p1')!.send({ type: 'coverage', inCoverage: true });
    world.advance(500);
    expect(world.handled('settle').at(-1)?.result).toMatchObject({ ok: true, posted: [], alreadyPosted: [proof.txId] });
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(800);
  });

  it('takes a proximity payment over the threshold through SD, and settling its proof pays nothing twice', () => {
    const world = shop();
    const proof = sell(world, 2_500);
    expect(proof.path).toBe('remote');
    expect(proof.serverSig).toBeTruthy();
    world.advance(500);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'debit', amountMinor: 2_500 });
    expect(world.handled('settle').at(-1)?.result).toMatchObject({ ok: true, posted: [], alreadyPosted: [proof.txId] });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(2_500);
  });

  it('credits the merchant once when an aggregate remittance covers a transaction the POS settled', () => {
    const world = new World({
      terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)], inCoverage: false }],
      pos: [{ id: 'p1', merchantId: 'merchant:shop' }],
      policy: policyWith({ remittance: { mode: 'aggregate' } }),
    });
    const settled = sell(world, 800);
    world.advance(500);
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300, payee: 'merchant:shop' });
    world.setCoverage('t1', true);
    world.advance(500);
    expect(world.handled('remit').at(-1)?.result).toMatchObject({ ok: true, posted: [world.proofOf('o1').txId], alreadyPosted: [settled.txId] });
    expect(world.ledger.aggregates()).toMatchObject([{ sumMinor: 1_100, postedMinor: 300 }]);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(1_100);
    expect(world.meansBalanceMinor('m1')).toBe(8_900);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });

  it('keeps the receipt while its own link is down and settles when it comes back', () => {
    const world = shop();
    world.pos.get('p1')!.send({ type: 'coverage', inCoverage: false });
    const proof = sell(world, 800);
    world.advance(10_000);
    expect(world.handled('settle')).toHaveLength(0);
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled.map((p) => p.txId)).toEqual([proof.txId]);
    world.pos.get('p1')!.send({ type: 'coverage', inCoverage: true });
    world.advance(500);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'settle' });
  });

  it('resends a settlement whose answer was lost, and SD posts it once', () => {
    const world = shop();
    let lose = 1;
    world.bus.filter = (m) => (m.message.kind === 'result' && m.message.requestKind === 'settle' && lose-- > 0 ? 'drop' : 'deliver');
    const proof = sell(world, 800);
    world.advance(5_000);
    const settles = world.handled('settle');
    expect(settles).toHaveLength(2);
    expect(settles[1]!.request.reqId).toBe(settles[0]!.request.reqId);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'settle' });
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(800);
  });
});

describe('pos: the settlement loop', () => {
  function setPosCoverage(world: World, inCoverage: boolean): void {
    world.pos.get('p1')!.send({ type: 'coverage', inCoverage });
    world.settle();
  }

  function settleRequests(world: World): Array<{ reqId: string; txIds: string[] }> {
    return world.handled('settle').map((h) => {
      const request = h.request as SettleRequest;
      return { reqId: request.reqId, txIds: request.proofs.map((p) => p.txId) };
    });
  }

  it('keeps a receipt taken while a settlement is in flight for the next batch', () => {
    const world = shop();
    let lose = 1;
    world.bus.filter = (m) => (m.message.kind === 'result' && m.message.requestKind === 'settle' && lose-- > 0 ? 'drop' : 'deliver');
    const first = sell(world, 800);
    const second = sell(world, 300);
    world.advance(10_000);
    // The resend is the same request with the same receipts; the second receipt waits for its own batch.
    expect(settleRequests(world)).toEqual([
      { reqId: 'p1:s1', txIds: [first.txId] },
      { reqId: 'p1:s1', txIds: [first.txId] },
      { reqId: 'p1:s2', txIds: [second.txId] },
    ]);
    expect(world.pos.get('p1')!.getSnapshot().context).toMatchObject({ unsettled: [], settledCount: 2, settlement: 'idle' });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(1_100);
  });

  it('resends the unanswered request, not a new batch, when its link comes back', () => {
    const world = shop();
    let lose = 1;
    world.bus.filter = (m) => (m.message.kind === 'result' && m.message.requestKind === 'settle' && lose-- > 0 ? 'drop' : 'deliver');
    const first = sell(world, 800);
    setPosCoverage(world, false);
    // The resend timer finds the link down: the loop goes idle and keeps the request.
    world.advance(10_000);
    expect(world.pos.get('p1')!.getSnapshot().context).toMatchObject({ settlement: 'idle', settling: { request: { reqId: 'p1:s1' } } });
    const second = sell(world, 300);
    world.advance(10_000);
    expect(settleRequests(world)).toEqual([{ reqId: 'p1:s1', txIds: [first.txId] }]);

    setPosCoverage(world, true);
    world.advance(1_000);
    expect(settleRequests(world)).toEqual([
      { reqId: 'p1:s1', txIds: [first.txId] },
      { reqId: 'p1:s1', txIds: [first.txId] },
      { reqId: 'p1:s2', txIds: [second.txId] },
    ]);
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(1_100);
  });

  it('settles the receipts of each shard in a batch of their own, one after another', () => {
    // With two shards, m1 is served by shard 1 and m2 by shard 0.
    const world = new World({
      terminals: [{ id: 't1', means: [walletMeans('m1', 10_000), walletMeans('m2', 10_000)] }],
      pos: [{ id: 'p1', merchantId: 'merchant:shop' }],
      shards: 2,
    });
    setPosCoverage(world, false);
    const a = sell(world, 800, 'm1');
    const b = sell(world, 300, 'm2');
    const c = sell(world, 500, 'm1');
    setPosCoverage(world, true);
    world.advance(1_000);
    expect(settleRequests(world)).toEqual([
      { reqId: 'p1:s1', txIds: [a.txId, c.txId] },
      { reqId: 'p1:s2', txIds: [b.txId] },
    ]);
    expect(world.pos.get('p1')!.getSnapshot().context).toMatchObject({ unsettled: [], settledCount: 3 });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(1_600);
  });
});

describe('pos: refusals', () => {
  it('reports the customer’s refusal', () => {
    const world = shop();
    world.sale('p1', 't1', 'm1', 800);
    world.answer('t1', 'p1:o1', false);
    expect(posEvents(world, 'pos.declined')).toMatchObject([{ reason: 'userDeclined' }]);
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
  });

  it('gives up on a sale no terminal answers', () => {
    const world = shop();
    world.sale('p1', 'nobody', 'm1', 800);
    world.advance(120_000, 1_000);
    expect(posEvents(world, 'pos.declined')).toMatchObject([{ reason: 'saleTimeout' }]);
    // It is ready for the next sale.
    sell(world, 300);
  });

  it('refuses a second sale while one is in progress', () => {
    const world = shop();
    world.sale('p1', 't1', 'm1', 800);
    world.sale('p1', 't1', 'm1', 300);
    expect(posEvents(world, 'pos.declined')).toMatchObject([{ reason: 'posBusy' }]);
  });

  /** Starts a sale no terminal answers, and hands the POS `proof` as if the customer's terminal had sent it. */
  function answerSaleWith(world: World, proof: (sale: PaymentOrder) => Proof): void {
    world.sale('p1', 'silent-terminal', 'm1', 800);
    const sale = world.pos.get('p1')!.getSnapshot().context.sale!.order as PaymentOrder;
    world.pos.get('p1')!.send({ type: 'near.response', from: 'silent-terminal', response: { orderId: sale.orderId, ok: true, proof: proof(sale) } });
  }

  it('rejects a proof that does not verify or does not match the sale [INV-5]', () => {
    const world = shop();
    const genuine = sell(world, 800);
    const forgeries: Array<(sale: PaymentOrder) => Proof> = [
      () => ({ ...genuine, sig: 'forged' }),
      () => ({ ...genuine, amountMinor: 8_000 }),
      () => ({ ...genuine, payee: 'merchant:other' }),
      () => ({ ...genuine, meansId: 'm2' }),
      () => ({ ...genuine, proxyId: 'unknown-proxy' }),
    ];
    for (const forgery of forgeries) answerSaleWith(world, forgery);
    expect(posEvents(world, 'pos.declined').map((e) => e.reason)).toEqual(forgeries.map(() => 'proofRejected'));
    world.advance(1_000);
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
    expect(world.ledger.postings().map((p) => p.txId)).toEqual([genuine.txId]);
  });

  // A proof is bound to its sale: the signed claim names the order, the POS and the POS's nonce, and the POS
  // remembers the txIds it received. An old genuine proof of the same amount, payee and means answering a new
  // sale is refused, so the merchant never hands over goods twice for one payment [INV-5].
  it('rejects a genuine proof replayed for a later sale of the same amount [INV-5]', () => {
    const world = shop();
    const genuine = sell(world, 800);
    world.advance(1_000);
    answerSaleWith(world, () => genuine);
    // Even relabelled with the new sale's order id, the old proof fails: the id is under the proxy's signature.
    answerSaleWith(world, (sale) => ({ ...genuine, orderId: sale.orderId, nonce: sale.nonce }));
    expect(posEvents(world, 'pos.declined').map((e) => e.reason)).toEqual(['proofRejected', 'proofRejected']);
    world.advance(5_000);
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
    expect(world.ledger.postings().map((p) => p.txId)).toEqual([genuine.txId]);
  });

  it('signs each sale with its own nonce, and keeps a proof only for the sale, the POS and the nonce it names', () => {
    const world = shop();
    const first = sell(world, 800);
    const firstOrder = posEvents(world, 'pos.receipt')[0]!.order;
    expect(first).toMatchObject({ orderId: firstOrder.orderId, posId: 'p1', nonce: firstOrder.nonce });
    expect(firstOrder.nonce).toMatch(/^[A-Za-z0-9._-]{8,}$/);
    world.advance(1_000);
    const second = sell(world, 800);
    const secondOrder = posEvents(world, 'pos.receipt')[1]!.order;
    expect(secondOrder.nonce).not.toBe(firstOrder.nonce);
    expect(second.txId).not.toBe(first.txId);
    const input = world.pos.get('p1')!.getSnapshot().context.input;
    const answer = { orderId: secondOrder.orderId, ok: true as const, proof: second };
    expect(isProofForSale(input, secondOrder, answer)).toBe(true);
    expect(isProofForSale(input, { ...secondOrder, nonce: firstOrder.nonce }, answer)).toBe(false);
    expect(isProofForSale({ ...input, posId: 'p2' }, secondOrder, answer)).toBe(false);
    // A txId the POS received before is refused even when everything else matches.
    expect(isProofForSale(input, secondOrder, answer, [second.txId])).toBe(false);
  });

  it("keeps a remote sale's proof only with SD's signed receipt of exactly that payment, and a proof only on the path its proxy signed", () => {
    const world = shop();
    const remote = sell(world, 2_500);
    expect(remote).toMatchObject({ path: 'remote', serverOutcome: 'debited' });
    const order = posEvents(world, 'pos.receipt')[0]!.order;
    const input = world.pos.get('p1')!.getSnapshot().context.input;
    const answer = (proof: Proof) => ({ orderId: order.orderId, ok: true as const, proof });
    expect(isProofForSale(input, order, answer(remote))).toBe(true);
    // Without SD's receipt, with another outcome, or with a receipt SD made for another payment: refused.
    const { serverSig, ...withoutReceipt } = remote;
    expect(serverSig).toBeDefined();
    expect(isProofForSale(input, order, answer(withoutReceipt))).toBe(false);
    expect(isProofForSale(input, order, answer({ ...remote, serverOutcome: 'authorised' }))).toBe(false);
    world.advance(1_000);
    const other = sell(world, 2_600);
    expect(isProofForSale(input, order, answer({ ...remote, serverSig: other.serverSig! }))).toBe(false);
    // The path is under the proxy's signature: a remote proof relabelled as local (to drop SD's receipt) fails.
    expect(isProofForSale(input, order, answer({ ...withoutReceipt, path: 'localBelowThreshold', serverOutcome: undefined }))).toBe(false);
  });

  it("reports a refusal its proxy did not sign as unsigned, and a signed one with its reason", () => {
    const world = shop();
    const refuseWith = (response: (sale: PaymentOrder) => ProxyResponse) => {
      world.sale('p1', 'silent-terminal', 'm1', 800);
      const sale = world.pos.get('p1')!.getSnapshot().context.sale!.order as PaymentOrder;
      world.pos.get('p1')!.send({ type: 'near.response', from: 'silent-terminal', response: response(sale) });
    };
    refuseWith((sale) => ({ orderId: sale.orderId, ok: false, reason: 'insufficientFunds' }));
    refuseWith((sale) => ({ orderId: sale.orderId, ok: false, reason: 'insufficientFunds', proxyId: 't1', sig: 'forged' }));
    world.sale('p1', 't1', 'm1', 800);
    const orderId = world.pos.get('p1')!.getSnapshot().context.sale!.order.orderId;
    world.answer('t1', orderId, false);
    expect(posEvents(world, 'pos.declined').map((e) => e.reason)).toEqual(['unsignedRefusal', 'unsignedRefusal', 'userDeclined']);
  });

  it('does not pay twice when the near link repeats an order the proxy has answered', () => {
    const world = shop();
    const proof = sell(world, 800);
    const order = posEvents(world, 'pos.receipt')[0]!.order;
    world.proxyOf('t1').send({ type: 'near.order', from: 'p1', order });
    world.settle();
    expect(world.promptFor(order.orderId)).toBeDefined();
    expect(world.terminalEvents.filter((e) => e.type === 'terminal.confirm')).toHaveLength(1);
    expect(world.proxyState('t1').counter).toBe(1);
    expect(world.proxyState('t1').journal.pending.map((tx) => tx.txId)).toEqual([proof.txId]);
  });

  it('ignores a settlement result SD did not sign', () => {
    const world = shop();
    world.pos.get('p1')!.send({ type: 'coverage', inCoverage: false });
    const proof = sell(world, 800);
    world.pos.get('p1')!.send({ type: 'coverage', inCoverage: true });
    const reqId = world.pos.get('p1')!.getSnapshot().context.settling!.request.reqId;
    world.bus.takePending(); // the real settlement is lost
    const forged = signResult(keyOf('mallory', world.scheme), { kind: 'result', reqId, to: 'p1', requestKind: 'settle', ok: true, code: 'ok', posted: [proof.txId] });
    world.bus.inject({ from: 'sd/0', to: 'p1', message: forged });
    world.settle();
    expect(posEvents(world, 'pos.settled')).toEqual([]);
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toHaveLength(1);
    world.advance(5_000);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'settle' });
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
  });

  it('does not hammer SD when it refuses a settlement', () => {
    const world = shop();
    // SD does not know this POS (its key was never registered).
    world.publicKeys.delete('p1');
    const proof = sell(world, 800);
    world.advance(10_000);
    expect(world.handled('settle')[0]?.result).toMatchObject({ ok: false, code: 'unknownSender' });
    // Tries at about 0, 1–2 s, 3–6 s and 7–14 s: a growing wait, not a storm.
    expect(world.handled('settle').length).toBeLessThanOrEqual(4);
    expect(posEvents(world, 'pos.settleRefused')[0]).toMatchObject({ code: 'unknownSender', txIds: [proof.txId] });
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toHaveLength(1);

    // Once SD knows the POS, the receipt is settled on a later try.
    world.publicKeys.set('p1', keyOf('pos:p1', world.scheme).publicKey);
    world.advance(60_000, 1_000);
    expect(world.ledger.postingOf(proof.txId)).toMatchObject({ via: 'settle' });
    expect(world.pos.get('p1')!.getSnapshot().context.unsettled).toEqual([]);
  });
});
