import { describe, expect, it } from 'vitest';
import { grantReload, newPurse, outstandingReloadsMinor, purseIdOf, purseValueMinor, reviewPurses } from './localValue.ts';
import { createMeans, localApproval, type MeansState } from './means.ts';
import { emptyJournal } from './remittance.ts';
import { keyFromSeed } from './signature.ts';
import { signRequest, verifyRequest } from './requests.ts';
import { handleRequest, type ServerContext } from './serverRules.ts';
import { Ledger } from './ledger.ts';
import { MemoryLedgerStore } from './ledgerStore.ts';
import { shardOf } from '../link.ts';
import type { ReloadRequest } from '../messages.ts';

const key = keyFromSeed('sim', new Uint8Array(32).fill(7));
const serverKey = keyFromSeed('sim', new Uint8Array(32).fill(9));
const sign = (u: Parameters<typeof signRequest<ReloadRequest>>[1]) => signRequest<ReloadRequest>(key, u);
const funding = (localBalanceMinor = 10_000): MeansState => createMeans({ meansId: 'm1', kind: 'prepaid', dedicated: true, localBalanceMinor });
const P = 60_000;

function world(kind: 'wallet' | 'fixedAmount' | 'recurring', localBalanceMinor = 10_000) {
  const f = funding(localBalanceMinor);
  const purse = newPurse('p1', f, { kind, amountMinor: 1_000, periodMs: P, reloadBelowMinor: 400 });
  return { means: { [f.meansId]: f, [purse.meansId]: purse }, journal: emptyJournal(), purseId: purse.meansId };
}

describe('local value on the SIM', () => {
  it('names a purse after its funding means and its proxy, and keeps it on the funding means’ shard', () => {
    expect(purseIdOf('f0.3', 't7')).toBe('f0.3/v:t7');
    for (const shards of [2, 3, 8]) expect(shardOf(purseIdOf('f0.3', 't7'), shards)).toBe(shardOf('f0.3', shards));
  });

  it('asks for a reload only in coverage, signed, and reserves it against the funding means’ SL until SD answers', () => {
    const w = world('wallet');
    const offline = reviewPurses(w.means, w.journal, { proxyId: 'p1', sign, nowMs: 0, online: false });
    expect(offline.changed).toBe(false);
    const online = reviewPurses(w.means, w.journal, { proxyId: 'p1', sign, nowMs: 0, online: true });
    const [item] = online.journal.outbox;
    expect(item!.request).toMatchObject({ kind: 'reload', purseMeansId: w.purseId, fundingMeansId: 'm1', amountMinor: 1_000, leftoverMinor: 0, granted: false });
    expect(verifyRequest('sim', key.publicKey, item!.request)).toBe(true);
    expect(online.means.m1!.localSpentMinor).toBe(1_000);
    expect(outstandingReloadsMinor(online.journal, 'm1')).toBe(1_000);
    // Asked once: a second review while the first is unanswered asks nothing more.
    expect(reviewPurses(online.means, online.journal, { proxyId: 'p1', sign, nowMs: 5, online: true }).changed).toBe(false);
    // No headroom on the funding means (SL − MTDL ≤ the amount): nothing asked, MTDL < SL kept.
    expect(reviewPurses(world('wallet', 1_000).means, emptyJournal(), { proxyId: 'p1', sign, nowMs: 0, online: true }).changed).toBe(false);
  });

  it('gives the value only on SD’s ok; a refusal ends the ask and gives nothing', () => {
    const w = world('fixedAmount');
    const asked = reviewPurses(w.means, w.journal, { proxyId: 'p1', sign, nowMs: 100, online: true });
    const purse = asked.means[w.purseId]!;
    const reqId = purse.localValue!.asked!.reqId;
    expect(localApproval(purse, 10, 200)).toEqual({ ok: false, reason: 'purseEmpty' });
    const refused = grantReload(purse, { reqId, ok: false });
    expect(refused.fixedAmount).toBeUndefined();
    expect(refused.localValue!.asked).toBeUndefined();
    const granted = grantReload(purse, { reqId, ok: true });
    expect(granted.fixedAmount).toEqual({ initialMinor: 1_000, remainingMinor: 1_000, validFromMs: 100, periodMs: P });
    expect(purseValueMinor(granted)).toBe(1_000);
    // Another answer (a repeat, another request) changes nothing.
    expect(grantReload(granted, { reqId, ok: true })).toBe(granted);
  });

  it('resets a recurring amount exactly at its boundary, offline too, queuing the renewal and the leftover for SD', () => {
    const w = world('recurring');
    let purse = grantReload({ ...w.means[w.purseId]!, localValue: { ...w.means[w.purseId]!.localValue!, asked: { reqId: 'p1:l1', atMs: 0, amountMinor: 1_000 } } }, { reqId: 'p1:l1', ok: true });
    const spent = localApproval(purse, 300, 10);
    if (!spent.ok) throw new Error(spent.reason);
    purse = spent.means;
    const means = { ...w.means, [w.purseId]: purse };
    expect(reviewPurses(means, w.journal, { proxyId: 'p1', sign, nowMs: P - 1, online: false }).changed).toBe(false);
    // Two boundaries later: period 0 left 700, period 1 was never used (1000 left), period 2 starts with S0.
    const later = reviewPurses(means, w.journal, { proxyId: 'p1', sign, nowMs: 2 * P, online: false });
    expect(later.means[w.purseId]!.recurring).toMatchObject({ periodIndex: 2, remainingMinor: 1_000 });
    expect(later.journal.outbox.map((i) => i.request)).toEqual([expect.objectContaining({ kind: 'reload', amountMinor: 2_000, leftoverMinor: 1_700, granted: true })]);
  });

  it('SD funds a purse from its funding means, refuses what the means cannot pay, and a purse that is not the sender’s', () => {
    const ledger = new Ledger(new MemoryLedgerStore());
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1_500, creditLimitMinor: 0 });
    const ctx: ServerContext = { scheme: 'sim', serverKey, publicKeyOf: (id) => (id === 'p1' ? key.publicKey : undefined), nowMs: 0 };
    const reload = (reqId: string, fields: Partial<ReloadRequest> = {}) =>
      handleRequest(ledger, sign({ kind: 'reload', reqId, from: 'p1', purseMeansId: purseIdOf('m1', 'p1'), fundingMeansId: 'm1', amountMinor: 1_000, leftoverMinor: 0, granted: false, ...fields }), ctx);
    expect(reload('l1')).toMatchObject({ ok: true, balances: [{ meansId: 'm1', availableMinor: 500 }] });
    expect(ledger.accountOf(`means:${purseIdOf('m1', 'p1')}`)?.balanceMinor).toBe(1_000);
    expect(reload('l2')).toMatchObject({ ok: false, code: 'insufficientFunds' });
    expect(reload('l3', { purseMeansId: purseIdOf('m1', 'p2') })).toMatchObject({ ok: false, code: 'badPurse' });
    // A granted renewal is honoured: what the means lacks comes from the loss account; the leftover goes to the operator.
    expect(reload('l4', { granted: true, leftoverMinor: 200 })).toMatchObject({ ok: true });
    expect(ledger.accountOf('loss')?.balanceMinor).toBe(-500);
    expect(ledger.accountOf('payee:operator:expired')?.balanceMinor).toBe(200);
    expect(ledger.accountOf(`means:${purseIdOf('m1', 'p1')}`)?.balanceMinor).toBe(1_800);
    expect(ledger.sumOfBalancesMinor()).toBe(0);
  });
});
