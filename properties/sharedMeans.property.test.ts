// Goal: a means shared by several proxies (a family wallet, issue 13 item 4) is safe offline as far as the
// allotments can make it: N phones, each synced to its allotment of SD's figure and then spending offline in any
// interleaving, never together spend what SD did not have — so with no other spending the loss account stays at
// zero — and whatever SD does have to book to the loss account is found again, by means and cause, in the run's
// loss breakdown, which always adds up to the account [INV-1, INV-5].
// Method: N means images synced from one SD figure through the proxy's own rules (applySync), random payments on
// random proxies through localApproval, every approval posted to a real Ledger (as its remittance would be); then
// spending by other points of issue in between, and the breakdown of sim/check/lossAccount.ts against the account.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { allotmentMinor, applySync, createMeans, localApproval, type MeansState } from '../machines/domain/means.ts';
import { Ledger, LOSS_ACCOUNT } from '../machines/domain/ledger.ts';
import { MemoryLedgerStore } from '../machines/domain/ledgerStore.ts';
import { checkLocalBalance } from '../machines/domain/invariants.ts';
import { lossAccountOf } from '../sim/check/lossAccount.ts';
import { runProperty } from './fc.ts';

const MEANS_ID = 'f0.0';

function sharedImage(pointsOfIssue: number): MeansState {
  return createMeans({ meansId: MEANS_ID, kind: 'virtualWallet', dedicated: false, pointsOfIssue, localBalanceMinor: 0 });
}

const paymentsArb = fc.array(fc.record({ proxy: fc.nat(), amountMinor: fc.integer({ min: 1, max: 4_000 }), elsewhereMinor: fc.option(fc.integer({ min: 1, max: 3_000 }), { freq: 4 }) }), {
  minLength: 1,
  maxLength: 60,
});

describe('shared means: allotments and the loss account', () => {
  it('N proxies spending offline from their allotments never overdraw what SD had: no loss [INV-1, INV-5]', () => {
    runProperty(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 50_000 }), paymentsArb, (n, openingMinor, payments) => {
        const ledger = new Ledger(new MemoryLedgerStore());
        const figure = ledger.openMeans({ meansId: MEANS_ID, kind: 'virtualWallet', openingBalanceMinor: openingMinor, creditLimitMinor: 0 });
        // Every phone syncs while in coverage, then all go offline.
        const images = Array.from({ length: n }, () => applySync(sharedImage(n), figure.availableMinor, figure.version, 0));
        for (const image of images) expect(image.localBalanceMinor).toBe(allotmentMinor(image, figure.availableMinor));
        let spentMinor = 0;
        payments.forEach(({ proxy, amountMinor }, i) => {
          const k = proxy % n;
          const approval = localApproval(images[k]!, amountMinor, i);
          if (!approval.ok) return;
          images[k] = approval.means;
          expect(checkLocalBalance(`p${k}`, approval.means)).toEqual([]);
          spentMinor += amountMinor;
          ledger.postPayment({ txId: `p${k}:t${i}`, meansId: MEANS_ID, payee: 'shop', amountMinor, requestId: `p${k}/r${i}` }, 'remit');
        });
        expect(spentMinor).toBeLessThanOrEqual(openingMinor);
        expect(ledger.accountOf(LOSS_ACCOUNT)?.balanceMinor ?? 0).toBe(0);
        expect(ledger.sumOfBalancesMinor()).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('books what spending elsewhere left uncovered to the loss account, and the breakdown finds all of it by means and cause', () => {
    runProperty(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 30_000 }), paymentsArb, (n, openingMinor, payments) => {
        const ledger = new Ledger(new MemoryLedgerStore());
        const figure = ledger.openMeans({ meansId: MEANS_ID, kind: 'virtualWallet', openingBalanceMinor: openingMinor, creditLimitMinor: 0 });
        ledger.openMeans({ meansId: 'm9', kind: 'prepaid', openingBalanceMinor: 1_000, creditLimitMinor: 0 });
        const images = Array.from({ length: n }, () => applySync(sharedImage(n), figure.availableMinor, figure.version, 0));
        let paidMinor = 0;
        payments.forEach(({ proxy, amountMinor, elsewhereMinor }, i) => {
          // A web shop charges the same account while the phones are offline: their allotments went stale.
          if (elsewhereMinor !== null) {
            try {
              ledger.spendElsewhere({ transferId: `w${i}`, meansId: MEANS_ID, payee: 'web', amountMinor: elsewhereMinor });
            } catch {
              // Refused for insufficient funds: an ordinary event.
            }
          }
          const k = proxy % n;
          const approval = localApproval(images[k]!, amountMinor, i);
          if (!approval.ok) return;
          images[k] = approval.means;
          paidMinor += amountMinor;
          ledger.postPayment({ txId: `p${k}:t${i}`, meansId: MEANS_ID, payee: 'shop', amountMinor, requestId: `p${k}/r${i}` }, 'remit');
        });
        // [INV-5] the payee got every approved payment in full.
        expect(ledger.accountOf('payee:shop')?.balanceMinor ?? 0).toBe(paidMinor);
        const loss = lossAccountOf([ledger], (meansId) => (meansId === MEANS_ID ? { proxies: n, dedicated: false } : { proxies: 1, dedicated: true }));
        expect(loss.totalMinor).toBe(0 - (ledger.accountOf(LOSS_ACCOUNT)?.balanceMinor ?? 0));
        expect(loss.byCause.unexplained).toBe(0);
        const cause = n > 1 ? 'sharedOffline' : 'spentElsewhere';
        expect(loss.byCause[cause]).toBe(loss.totalMinor);
        expect(loss.byMeans.reduce((sum, m) => sum + m.amountMinor, 0)).toBe(loss.totalMinor);
        for (const entry of loss.byMeans) expect(entry).toMatchObject({ meansId: MEANS_ID, cause });
      }),
      { numRuns: 200 },
    );
  });
});
