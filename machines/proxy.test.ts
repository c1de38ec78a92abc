import { describe, expect, it } from 'vitest';
import { World, walletMeans } from './testing/world.ts';

describe('proxy: local and remote payments', () => {
  it('approves a small telepayment locally in coverage and remits it on the backlog trigger', () => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)] }] });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 500 });
    const receipt = world.receiptFor('o1');
    expect(receipt?.response.ok).toBe(true);
    if (!receipt?.response.ok) throw new Error('not approved');
    expect(receipt.response.proof.path).toBe('localBelowThreshold');
    expect(world.proxyState('t1').journal.pending).toHaveLength(1);
    expect(world.proxyState('t1').means.m1!.localSpentMinor).toBe(500);
  });

  it('sends a telepayment over the threshold to SD and answers with SD signature', () => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)] }] });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500 });
    expect(world.promptFor('o1')?.kind).toBe('approve');
    world.answer('t1', 'o1', true);
    const receipt = world.receiptFor('o1');
    expect(receipt?.response.ok).toBe(true);
    if (!receipt?.response.ok) throw new Error('not approved');
    expect(receipt.response.proof.path).toBe('remote');
    expect(receipt.response.proof.serverSig).toBeTruthy();
    expect(world.ledger.postingOf(receipt.response.proof.txId)?.amountMinor).toBe(2_500);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });
});
