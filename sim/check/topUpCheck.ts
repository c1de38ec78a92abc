// Goal: the end check of money that entered from outside by top-up (an auto-reload agreement), the same in both
// modes, as part of conservation [INV-3]: every ledger's `outside` account was debited by its recorded top-ups and
// nothing else, and every top-up answers a posting of the means it credited, a means with an agreement; and the
// top-ups' figures for summary.json.
// Method: the domain's `topUpProblems` (machines/domain/ledgerTopUps.ts) on each ledger that can list its top-ups.
// A run without agreements whose ledgers took nothing from outside has nothing to check: the check walks nothing
// and records nothing there, so such a run's figures and cost stay what they were.

import { topUpProblems, type TopUpFigures } from '../../machines/domain/ledgerTopUps.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import type { InvariantBook } from './invariantBook.ts';

export type TopUpLedger = Pick<Ledger, 'topUps' | 'outsideBalanceMinor'> & { store: Pick<Ledger['store'], 'getPosting' | 'getHold' | 'getAggregate' | 'getTransfer'> };

/** [INV-3 money from outside] one check per ledger; returns the top-ups' figures over every ledger. */
export function checkTopUps(book: InvariantBook, ledgers: ReadonlyArray<{ label: string; ledger: TopUpLedger }>, hasAgreement: ((meansId: string) => boolean) | undefined): TopUpFigures {
  const total: TopUpFigures = { count: 0, amountMinor: 0 };
  for (const { label, ledger } of ledgers) {
    const outsideBalanceMinor = ledger.outsideBalanceMinor();
    if (!hasAgreement && outsideBalanceMinor === 0) continue;
    const topUps = ledger.topUps();
    if (topUps === undefined) continue;
    const { problems, figures } = topUpProblems({ outsideBalanceMinor, topUps, store: ledger.store }, hasAgreement ?? (() => false));
    book.record('INV-3', 1, problems.map((message) => ({ invariant: 'INV-3' as const, subject: label, message: `${label}: ${message}` })));
    total.count += figures.count;
    total.amountMinor += figures.amountMinor;
  }
  return total;
}
