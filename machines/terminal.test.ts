// Goal: the terminal (TM) told as small stories: its secure element refuses a proxy whose code the operator did
// not sign, and moves the proxy's state to another terminal in a password-sealed strongbox when the SIM moves,
// losing no pending payment; its apps get receipts.
// Method: a World drives the real terminal, proxy and server machines on a TestBus.

import { describe, expect, it } from 'vitest';
import { keyOf, walletMeans, World } from './testing/world.ts';
import { signFields } from './domain/signature.ts';
import { proxyCodeFields, type TerminalEmitted } from './terminal.ts';

function refusals(world: World): Array<Extract<TerminalEmitted, { type: 'terminal.refused' }>> {
  return world.terminalEvents.filter((e): e is Extract<TerminalEmitted, { type: 'terminal.refused' }> => e.type === 'terminal.refused');
}

describe('terminal: the secure element checks the proxy code', () => {
  it.each([
    ['a garbage signature', () => 'not-a-signature'],
    ['a signature by someone other than the operator', () => signFields(keyOf('mallory'), proxyCodeFields('sha256:proxy-code-v1'))],
    ['the operator’s signature over other code', () => signFields(keyOf('operator'), proxyCodeFields('sha256:other-code'))],
  ])('refuses to run a proxy with %s, and every order is declined', (_label, signature) => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)] }], proxyCodeSignature: signature() });
    expect(refusals(world)).toEqual([{ type: 'terminal.refused', terminalId: 't1', reason: 'proxyCodeNotTrusted' }]);
    expect(world.proxyOf('t1')).toBeUndefined();
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 100 });
    expect(world.declineOf('o1')).toBe('proxyCodeNotTrusted');
    expect(world.serverEvents).toEqual([]);
  });

  it('runs a proxy whose code the operator signed', () => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)] }] });
    expect(refusals(world)).toEqual([]);
    world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 100 });
    expect(world.proofOf('o1').path).toBe('internal');
  });
});

describe('terminal: SIM move through the strongbox', () => {
  function offlineWithPending(): World {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)], inCoverage: false }] });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    world.pay('t1', { orderId: 'o2', type: 'telepayment', meansId: 'm1', amountMinor: 200 });
    return world;
  }

  it('restores the proxy on the new terminal, which remits the payments made on the old one', () => {
    const world = offlineWithPending();
    const proofs = [world.proofOf('o1'), world.proofOf('o2')];
    const box = world.exportStrongbox('t1', 'correct horse');
    // Sealed: neither the transactions nor the balances can be read from the box.
    expect(JSON.stringify(box)).not.toContain(proofs[0]!.txId);

    world.crash('t1');
    world.startTerminal('t1', { strongbox: { box, password: 'correct horse' }, inCoverage: true });
    expect(refusals(world)).toEqual([]);
    world.advance(1_000);
    for (const proof of proofs) expect(world.ledger.postingOf(proof.txId)).toMatchObject({ amountMinor: proof.amountMinor, via: 'remit' });
    expect(world.proxyState('t1').journal).toMatchObject({ pending: [], outbox: [] });
    expect(world.proxyState('t1').means.m1).toMatchObject({ localBalanceMinor: 9_500, localSpentMinor: 0 });

    // The moved proxy keeps its counter and its history: a repeated order is answered, not paid again.
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 300 });
    expect(world.receiptsFor('o1').map((r) => r.response)).toEqual([world.receiptFor('o1')!.response, world.receiptFor('o1')!.response]);
    world.pay('t1', { orderId: 'o3', type: 'telepayment', meansId: 'm1', amountMinor: 100 });
    expect(world.proofOf('o3').counter).toBe(3);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });

  it('refuses a strongbox opened with the wrong password, or tampered with', () => {
    const world = offlineWithPending();
    const box = world.exportStrongbox('t1', 'correct horse');
    world.crash('t1');

    world.startTerminal('t1', { strongbox: { box, password: 'wrong' } });
    expect(refusals(world).at(-1)?.reason).toMatch(/^strongbox: strongboxRefused/);
    expect(world.proxyOf('t1')).toBeUndefined();
    world.pay('t1', { orderId: 'o9', type: 'internal', meansId: 'm1', amountMinor: 100 });
    expect(world.declineOf('o9')).toMatch(/^strongbox:/);
    world.terminals.get('t1')!.stop();

    const data = Buffer.from(box.data, 'base64');
    data[0] = data[0]! ^ 1;
    world.startTerminal('t1', { strongbox: { box: { ...box, data: data.toString('base64') }, password: 'correct horse' } });
    expect(refusals(world).at(-1)?.reason).toMatch(/^strongbox: strongboxRefused/);
    world.terminals.get('t1')!.stop();

    // The right password still opens it, and nothing was lost meanwhile.
    world.startTerminal('t1', { strongbox: { box, password: 'correct horse' } });
    expect(world.proxyState('t1').journal.pending).toHaveLength(2);
  });
});

describe('terminal: receipts', () => {
  it('gives each app its receipts and keeps only the last few', () => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)] }] });
    for (let i = 1; i <= 10; i++) world.pay('t1', { orderId: `o${i}`, type: 'internal', meansId: 'm1', amountMinor: 10, appId: i % 2 ? 'game' : 'video' });
    expect(world.receiptFor('o1')?.appId).toBe('game');
    expect(world.receiptFor('o2')?.appId).toBe('video');
    const kept = world.terminals.get('t1')!.getSnapshot().context.receipts;
    expect(kept.map((r) => r.response.orderId)).toEqual(['o3', 'o4', 'o5', 'o6', 'o7', 'o8', 'o9', 'o10']);
  });

  it('shows the user what a confirmation is for', () => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)] }] });
    world.pay('t1', { orderId: 'o1', type: 'telepayment', meansId: 'm1', amountMinor: 2_500, payee: 'merchant:films' });
    expect(world.promptFor('o1')).toEqual({ type: 'terminal.confirm', terminalId: 't1', orderId: 'o1', kind: 'approve', amountMinor: 2_500, payee: 'merchant:films' });
  });
});
