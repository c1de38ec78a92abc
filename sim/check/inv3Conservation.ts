// Goal: the INV-3 checker (conservation, double entry), the same in both modes: the balances of every ledger sum to
// zero — after every request (virtual mode, the store's O(1) running sum), every hour of run time (virtual mode,
// the full sum), every minute (mqtt mode, one SQL sum on what each server committed) and at the end (both).
// Method: the domain's `checkConservation` (machines/domain/invariants.ts) on anything that can give the sum.

import { checkConservation } from '../../machines/domain/invariants.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import type { InvariantBook } from './invariantBook.ts';

/** [INV-3 conservation] one check that `ledger`'s balances sum to zero; returns the sum, for the run's figures. */
export function checkLedgerConserves(book: InvariantBook, label: string, ledger: Pick<Ledger, 'sumOfBalancesMinor'>, actors: readonly string[] = []): number {
  const sumMinor = ledger.sumOfBalancesMinor();
  book.record('INV-3', 1, checkConservation({ sumOfBalancesMinor: () => sumMinor }, label), () => actors);
  return sumMinor;
}
