// Goal: the INV-1 checker (MTDL < SL), the same in both modes: after every decision of a proxy, the means it
// decided on spends locally nothing, or strictly less than its local balance.
// Method: the domain's `checkLocalBalance` (machines/domain/invariants.ts), which also refuses a negative MTDL, on
// the means the `proxy.decided` event carries; its findings go to the run's invariant book.

import { checkLocalBalance } from '../../machines/domain/invariants.ts';
import type { MeansState } from '../../machines/domain/means.ts';
import type { InvariantBook } from './invariantBook.ts';

/** [INV-1 MTDL<SL] one check of the means `terminalId`'s proxy holds after a decision. */
export function checkLocalBalanceAfterDecision(book: InvariantBook, terminalId: string, means: MeansState): void {
  book.record('INV-1', 1, checkLocalBalance(terminalId, means), () => [terminalId]);
}
