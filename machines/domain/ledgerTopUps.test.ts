import { describe, expect, it } from 'vitest';
import { Ledger, OUTSIDE_ACCOUNT } from './ledger.ts';
import { topUpProblems, type TopUpRules } from './ledgerTopUps.ts';
import { applyTransfer } from './ledgerAccounts.ts';
import { DomainError } from './money.ts';
import { ConservingStore } from '../testing/conservingStore.ts';

/** m1 (prepaid 1000) and m2 (postpaid, credit 1000) are topped up by 700 + the id's length below 500; m3 has no agreement. */
function setup() {
  const store = new ConservingStore();
  const rules: TopUpRules = (meansId) => (meansId === 'm3' ? undefined : { belowMinor: 500, amountMinor: (id) => 700 + id.length });
  const ledger = new Ledger(store, rules);
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
  ledger.openMeans({ meansId: 'm2', kind: 'postpaid', openingBalanceMinor: 0, creditLimitMinor: 1000 });
  ledger.openMeans({ meansId: 'm3', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
  return { store, ledger };
}

const pay = (txId: string, meansId: string, amountMinor: number) => ({ txId, meansId, payee: 'shop', amountMinor, requestId: `p1/${txId}`, proxyId: 'p1' });
const check = (ledger: Ledger) => topUpProblems({ outsideBalanceMinor: ledger.outsideBalanceMinor(), topUps: ledger.topUps()!, store: ledger.store }, (m) => m !== 'm3');

describe('Ledger top-ups (auto-reload agreements)', () => {
  it('tops a means up from outside after a posting that leaves it below the threshold, once per posting', () => {
    const { ledger } = setup();
    ledger.debit(pay('t1', 'm1', 400));
    expect(ledger.topUps()).toEqual([]);
    ledger.debit(pay('t2', 'm1', 200));
    expect(ledger.topUps()!.map((t) => [t.id, t.creditAccount, t.amountMinor])).toEqual([['top:tx:t2', 'means:m1', 700 + 'top:tx:t2'.length]]);
    expect(ledger.balanceOf('m1').availableMinor).toBe(400 + 709);
    // The same debit again moves nothing, top-up included.
    expect(ledger.debit(pay('t2', 'm1', 200)).alreadyPosted).toBe(true);
    expect(ledger.topUps()).toHaveLength(1);
    expect(ledger.outsideBalanceMinor()).toBe(-709);
    expect(ledger.sumOfBalancesMinor()).toBe(0);
    expect(check(ledger).problems).toEqual([]);
    expect(ledger.topUpsMade).toBe(1);
  });

  it('counts a postpaid means by its available credit, and tops up after holds, remittances, aggregates and spends elsewhere', () => {
    const { ledger } = setup();
    ledger.hold({ txId: 'h1', meansId: 'm2', payee: 'shop', amountMinor: 600, proxyId: 'p1' });
    ledger.postPayment(pay('r1', 'm1', 600), 'remit');
    ledger.postAggregate({ id: 'a1', meansId: 'm1', payee: 'shop', sumMinor: 900, txIds: ['x1', 'x2'], requestId: 'p1/a' });
    ledger.spendElsewhere({ transferId: 'web1', meansId: 'm1', payee: 'web', amountMinor: 800 });
    // Sorted: a PostgreSQL store lists them in no particular order.
    expect(ledger.topUps()!.map((t) => t.id).sort()).toEqual(['top:agg:a1', 'top:ext:web1', 'top:hold:h1', 'top:tx:r1']);
    expect(check(ledger)).toEqual({ problems: [], figures: { count: 4, amountMinor: ledger.topUps()!.reduce((s, t) => s + t.amountMinor, 0) } });
  });

  it('makes no top-up for a refused posting, a means without agreement, or a ledger without rules', () => {
    const { ledger } = setup();
    expect(() => ledger.debit(pay('t1', 'm1', 5000))).toThrow(DomainError);
    ledger.debit(pay('t2', 'm3', 900));
    expect(ledger.topUps()).toEqual([]);
    const plain = new Ledger(new ConservingStore());
    plain.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 100, creditLimitMinor: 0 });
    plain.debit(pay('t1', 'm1', 90));
    expect(plain.accountOf(OUTSIDE_ACCOUNT)).toBeUndefined();
  });

  it('finds a top-up credited twice, one credited without its record, and one for nobody', () => {
    const { ledger, store } = setup();
    ledger.debit(pay('t1', 'm1', 600));
    const plant = (id: string, meansId: string, amountMinor: number) => store.transaction(() => applyTransfer(store, id, OUTSIDE_ACCOUNT, `means:${meansId}`, amountMinor, 'planted'));
    plant('top:tx:t1/again', 'm1', 709);
    expect(check(ledger).problems).toEqual([expect.stringMatching(/^top-up top:tx:t1\/again of 709 to m1 answers no posting of that means/)]);
    plant('gift:1', 'm1', 50);
    expect(check(ledger).problems.at(-1)).toBe('1468 came in from outside, but the 2 recorded top-ups sum to 1418');
    plant('top:tx:t9', 'm3', 10);
    expect(check(ledger).problems).toContain('top-up top:tx:t9 credits m3, which has no top-up agreement');
  });
});
