// Goal: the INV-7 checker (liveness: every backlog drains), the same in both modes: after the drain time every
// terminal is up and its proxy's journal is empty (no transaction left to remit, no request SD has not
// acknowledged), and every POS unit has settled its receipts.
// Method: the domain's `checkDrained` (machines/domain/invariants.ts) on each proxy's journal as the run ended
// (virtual mode: read from the actors; mqtt mode: reported by each worker in its final message).

import { checkDrained } from '../../machines/domain/invariants.ts';
import type { Journal } from '../../machines/domain/remittance.ts';
import type { InvariantBook } from './invariantBook.ts';
import type { RemitRefusal } from './inv4NothingLostNothingTwice.ts';

/** A terminal at the end of a run: up or still down, and what its proxy's journal still holds. */
export interface TerminalEnd {
  terminalId: string;
  up: boolean;
  journal: Pick<Journal, 'pending' | 'outbox'>;
  /**
   * The remote payment its proxy sent to SD and has no answer for (the proxy's write-ahead record): SD may have
   * posted it, and the proxy reverses it when the timeout fires or it restarts. Pending, not unexpected [INV-4];
   * unresolved after the drain time [INV-7].
   */
  remoteInFlight?: string;
}

/** A POS unit at the end of a run and its receipts not yet settled. */
export interface PosEnd {
  posId: string;
  unsettled: number;
  /** The transactions of those receipts (INV-4 does not count a payment still held here as lost). */
  unsettledTxIds?: string[];
}

/** The journal of a terminal without a proxy (refused to start, or never started): nothing waits in it. */
export const EMPTY_JOURNAL: Pick<Journal, 'pending' | 'outbox'> = { pending: [], outbox: [] };

/**
 * [INV-7 liveness] one check per terminal and per POS unit, and one per remittance SD refused for good: a refused
 * remittance leaves its proxy's outbox (resending would only fetch the same refusal) but its payments are not on
 * the ledger, so it must not count as drained.
 */
export function checkBacklogsDrained(book: InvariantBook, terminals: Iterable<TerminalEnd>, pos: Iterable<PosEnd>, remitRefusals: readonly RemitRefusal[] = [], unansweredOrders: readonly string[] = []): void {
  // An app still waiting for its answer when the drain time is over is a backlog too, the one a user sees: without
  // this check a run whose proxies queued orders faster than SD answered them ended OK with orders never answered.
  book.check('INV-7', unansweredOrders.length === 0, () => `${unansweredOrders.length} orders still waiting for their answer after the drain time (${unansweredOrders.slice(0, 5).join(', ')}${unansweredOrders.length > 5 ? ', …' : ''})`);
  for (const r of remitRefusals) {
    book.check('INV-7', false, () => `${r.sender}: remittance ${r.reqId} refused by SD (${r.code}${r.txIds.length > 0 ? `: ${r.txIds.join(', ')}` : ''}), stored, so it never drains`, [r.sender]);
  }
  for (const { terminalId, up, journal, remoteInFlight } of terminals) {
    if (!up) book.check('INV-7', false, () => `${terminalId}: still down after the drain time`, [terminalId]);
    else book.record('INV-7', 1, checkDrained(terminalId, journal), () => [terminalId]);
    if (remoteInFlight !== undefined) book.check('INV-7', false, () => `${terminalId}: remote payment ${remoteInFlight} sent to SD and still unresolved after the drain time`, [terminalId]);
  }
  for (const { posId, unsettled } of pos) {
    book.check('INV-7', unsettled === 0, () => `${posId}: ${unsettled} receipts not settled after the drain time`, [posId]);
  }
}
