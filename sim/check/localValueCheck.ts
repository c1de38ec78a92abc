// Goal: the end check of local value: every purse on a SIM (PMVL, FF, FLR; machines/domain/localValue.ts) is worth
// exactly what SD's books say once its proxy has nothing left to send — no value made on the SIM that SD did not
// fund, none lost between them, every expired leftover accounted. Booked under INV-4 (nothing lost, nothing twice).
// Method: for each purse of a drained proxy, the SIM's value (`purseValueMinor`) against the balance of the purse's
// account on its shard's ledger (0 when it was never funded). A proxy whose journal still holds something is INV-7's
// to report: its purse is in between and is not compared.

import { purseValueMinor } from '../../machines/domain/localValue.ts';
import type { MeansState } from '../../machines/domain/means.ts';
import type { Journal } from '../../machines/domain/remittance.ts';
import type { InvariantBook } from './invariantBook.ts';
import { proxyStateOf, type Fleet } from '../core/fleet.ts';

export interface PurseAtEnd {
  terminalId: string;
  purse: MeansState;
  journal: Pick<Journal, 'pending' | 'outbox'>;
}

/** Every purse of the fleet's proxies with their journals' two queues, as the end check reads them (both modes). */
export function pursesAtEnd(fleet: Fleet): PurseAtEnd[] {
  const purses: PurseAtEnd[] = [];
  for (const slot of fleet.terminals) {
    const state = proxyStateOf(slot);
    if (!state) continue;
    for (const purse of Object.values(state.means)) {
      if (purse.localValue) purses.push({ terminalId: slot.plan.terminalId, purse, journal: { pending: state.journal.pending, outbox: state.journal.outbox } });
    }
  }
  return purses;
}

/** [INV-4 local value] one check per purse of a drained proxy; returns how many were compared. */
export function checkPursesReconcile(book: InvariantBook, purses: Iterable<PurseAtEnd>, balanceOf: (meansId: string) => number): number {
  let compared = 0;
  for (const { terminalId, purse, journal } of purses) {
    if (journal.pending.length > 0 || journal.outbox.length > 0) continue;
    compared++;
    const simMinor = purseValueMinor(purse);
    const sdMinor = balanceOf(purse.meansId);
    book.check('INV-4', simMinor === sdMinor, () => `${terminalId}: purse ${purse.meansId} holds ${simMinor} on the SIM, ${sdMinor} on SD's books`, [terminalId]);
  }
  return compared;
}
