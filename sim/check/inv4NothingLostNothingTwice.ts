// Goal: the INV-4 checker (nothing lost, nothing twice), the same in both modes: SD never reports one transaction
// posted by two different requests (checked on every answer), and after the drain every approved payment is on the
// ledger exactly once with its amount, each aggregate adds up, and nothing is paid or held that nobody approved —
// a remote payment declined to its app and reversed above all.
// Method: `AnswersOfSd` reads SD's answers as they come (virtual mode: the servers' `server.handled` events; mqtt
// mode: the answers each server stored beside its requests, read back at the end) and keeps who first posted each
// transaction and which payments SD reversed. "Lost" means approved and in no journal or ledger: a payment
// still held in a proxy's journal or a POS unit's receipts at the end is pending (INV-7 flags it), counted apart.
// `checkNothingLost` is the domain's `checkNothingLostNothingTwice`
// (machines/domain/invariants.ts) over every ledger; its findings and counts go to the book and to the figures.

import { checkNothingLostNothingTwice, type ApprovedPayment, type NothingLostCounts, type PostingsView } from '../../machines/domain/invariants.ts';
import type { ServerResult } from '../../machines/messages.ts';
import { UNSTORED_REFUSAL_CODES } from '../../machines/domain/requests.ts';
import type { Journal } from '../../machines/domain/remittance.ts';
import type { InvariantBook } from './invariantBook.ts';

/** A remittance SD refused for good (stored), or the transactions it refused inside one. */
export interface RemitRefusal {
  sender: string;
  reqId: string;
  code: string;
  /** The transactions refused one by one inside an accepted remittance; empty when the whole request was refused. */
  txIds: string[];
}

/** What SD answered, as far as INV-4 needs it: who posted each transaction first, and what it reversed. */
export class AnswersOfSd {
  private readonly firstPostedBy = new Map<string, string>();
  /** Transactions SD reported posted by a second, different request (each is also an INV-4 violation). */
  duplicatedPostings = 0;
  /** Remote payments SD reversed at their proxy's request (the proxy declined them to their app). */
  readonly reversed = new Set<string>();

  /**
   * Remittances SD refused and stored that refusal for (whole, or transaction by transaction inside an accepted
   * one): their payments will never be posted by them, so a proxy whose outbox emptied on such an answer has not
   * drained; INV-7 fails on each [INV-7].
   */
  readonly remitRefusals: RemitRefusal[] = [];

  /**
   * `isInjected` names the requests the run's adversary sent itself (`sender/reqId`): a refusal SD stores for one of
   * them (a replay re-signed with the device's key whose altered proof SD refuses inside it) is no honest backlog, and
   * the adversary's own check judges it [INV-6]; its postings still count here [INV-4].
   */
  constructor(
    private readonly book: InvariantBook,
    private readonly isInjected: (requestId: string) => boolean = () => false,
  ) {}

  /** One answer of SD to `sender`'s request `reqId`. */
  seeAnswer(sender: string, reqId: string, result: ServerResult): void {
    if (result.requestKind === 'remit' && !this.isInjected(`${sender}/${reqId}`)) {
      // A refusal SD did not store answers a copy altered in flight (or a forgery): the honest request is resent.
      if (!result.ok && !UNSTORED_REFUSAL_CODES.has(result.code)) this.remitRefusals.push({ sender, reqId, code: result.code, txIds: [] });
      else if (result.ok && (result.refused ?? []).length > 0) this.remitRefusals.push({ sender, reqId, code: 'refusedInBatch', txIds: result.refused! });
    }
    if (!result.ok) return;
    if (result.requestKind === 'release' && result.txId !== undefined) this.reversed.add(result.txId);
    if (!result.posted) return;
    const requestId = `${sender}/${reqId}`;
    for (const txId of result.posted) {
      // [INV-4 nothing twice] SD never reports the same transaction posted by two different requests. (A resent
      // request gets its stored answer again, which names the same postings: that is not a second posting.)
      const firstBy = this.firstPostedBy.get(txId);
      const fresh = firstBy === undefined || firstBy === requestId;
      if (!fresh) this.duplicatedPostings++;
      this.book.check('INV-4', fresh, () => `transaction ${txId} posted twice: by ${firstBy} and again by ${requestId}`, [sender]);
      if (firstBy === undefined) this.firstPostedBy.set(txId, requestId);
    }
  }
}

export interface NothingLostInput {
  /** Every payment a proxy approved, one per transaction id. */
  approved: ReadonlyMap<string, { proof: ApprovedPayment }>;
  /** Remote payments declined to their app and reversed at SD. */
  reversed: Iterable<string>;
  /** Every ledger of the run (every shard, or every server's). */
  ledgers: readonly PostingsView[];
  /**
   * Transactions still held at the end in a proxy's journal or a POS unit's receipts (pending, never lost), and the
   * remote payments their proxies sent and have no answer for (pending: if SD posted one, it is not unexpected yet).
   */
  held?: ReadonlySet<string>;
}

export interface NothingLostFigures extends NothingLostCounts {
  approvedAmountMinor: number;
  postedAmountMinor: number;
  /** Approved, on no ledger, still held in a journal at the end (pending, flagged by INV-7, not lost). */
  heldInJournals: number;
}

/** [INV-4 nothing lost, nothing twice] after the drain; one check per approved payment, aggregate and reversal. */
export function checkNothingLost(book: InvariantBook, input: NothingLostInput): NothingLostFigures {
  const reversed = [...input.reversed];
  const report = checkNothingLostNothingTwice({ approved: proofsOf(input.approved), reversed, ledger: input.ledgers, held: input.held });
  let aggregates = 0;
  for (const ledger of input.ledgers) aggregates += ledger.aggregates().length;
  book.record('INV-4', input.approved.size + aggregates + reversed.length, report.violations);
  return { ...report.counts, approvedAmountMinor: report.approvedAmountMinor, postedAmountMinor: report.postedAmountMinor, heldInJournals: report.heldInJournals };
}

/**
 * Every transaction the journals still hold at the end: a proxy's pending transactions and those in its outbox
 * (sent, not acknowledged), the remote payment it sent and has no answer for, and the receipts a POS unit has not
 * settled.
 */
export function heldInJournals(terminals: Iterable<{ journal: Pick<Journal, 'pending' | 'outbox'>; remoteInFlight?: string }>, pos: Iterable<{ unsettledTxIds?: readonly string[] }>): Set<string> {
  const held = new Set<string>();
  for (const { journal, remoteInFlight } of terminals) {
    if (remoteInFlight !== undefined) held.add(remoteInFlight);
    for (const tx of journal.pending) held.add(tx.txId);
    for (const item of journal.outbox) for (const tx of item.txs) held.add(tx.txId);
  }
  for (const unit of pos) for (const txId of unit.unsettledTxIds ?? []) held.add(txId);
  return held;
}

function* proofsOf(approved: ReadonlyMap<string, { proof: ApprovedPayment }>): Iterable<ApprovedPayment> {
  for (const { proof } of approved.values()) yield proof;
}
