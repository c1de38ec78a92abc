// Goal: what a run keeps about the payments it saw, the same in both modes — every approved payment, the
// backlog of approved local transactions not yet remitted (count, amount, peak), the remittance lag of each, the
// transactions SD reported posted (to catch one posted twice), and the drain state (phase, drained time).
// Method: one plain class with no clock and no I/O. The virtual `Simulator` records into it as its fleet emits;
// the mqtt `SwarmWorker` records into one without proofs (it reports them to the coordinator in batches), and the
// coordinator records what the batches say into its own; the summary and the end checks read it. The INV-4
// "posted twice" check lives here once: the virtual mode feeds it SD's answers as they happen, the mqtt mode the
// answers SD stored, read back from its ledger files at the end.

import type { Proof } from '../../machines/messages.ts';
import type { InvariantBook } from '../check/checkers.ts';

/** A payment a proxy approved, with the run time of its approval. */
export interface ApprovedPayment {
  proof: Proof;
  approvedAtMs: number;
  remoteMode?: 'debit' | 'authCapture';
}

export interface BacklogFigures {
  count: number;
  amountMinor: number;
  peakAmountMinor: number;
}

export type RunPhase = 'safety' | 'liveness';

export class RunRecord {
  /** Every payment approved by a proxy, by transaction id (empty when `keepProofs` is false). */
  readonly approved = new Map<string, ApprovedPayment>();
  /** Proofs held by POS units (their receipts). */
  readonly posProofs: Proof[] = [];
  /** Approval time of each local transaction not yet remitted, for its remittance lag. */
  private readonly unremittedSinceMs = new Map<string, number>();
  private backlogCount = 0;
  private backlogAmountMinor = 0;
  private peakBacklogAmountMinor = 0;
  /** Transaction id → the request (`from/reqId`) SD first reported posting it by [INV-4]. */
  private readonly firstPostedBy = new Map<string, string>();
  /** Postings SD reported twice (each one is also an INV-4 violation). */
  duplicatedPostings = 0;
  phase: RunPhase = 'safety';
  /** Run time at which every backlog was found empty in the liveness phase; undefined until then. */
  drainedAtMs: number | undefined;

  /**
   * @param keepProofs false where the proofs are kept elsewhere (a swarm worker reports them to its coordinator),
   * so a long run does not hold every proof twice.
   */
  constructor(private readonly keepProofs = true) {}

  recordApproved(payment: ApprovedPayment): void {
    const { proof } = payment;
    if (this.keepProofs) this.approved.set(proof.txId, payment);
    // A remote payment is on SD's ledger already; every other path leaves a transaction to remit.
    if (proof.path === 'remote') return;
    this.unremittedSinceMs.set(proof.txId, payment.approvedAtMs);
    this.backlogCount++;
    this.backlogAmountMinor += proof.amountMinor;
    if (this.backlogAmountMinor > this.peakBacklogAmountMinor) this.peakBacklogAmountMinor = this.backlogAmountMinor;
  }

  /**
   * SD acknowledged the remittance of `txIds` (together `amountMinor`) at run time `atMs`: they leave the backlog.
   * Returns the lag (approval → acknowledgement, run ms) of each one this record saw approved.
   */
  recordRemitted(txIds: readonly string[], amountMinor: number, atMs: number): number[] {
    this.backlogCount -= txIds.length;
    this.backlogAmountMinor -= amountMinor;
    const lagsMs: number[] = [];
    for (const txId of txIds) {
      const approvedAtMs = this.unremittedSinceMs.get(txId);
      if (approvedAtMs === undefined) continue;
      lagsMs.push(Math.max(0, atMs - approvedAtMs));
      this.unremittedSinceMs.delete(txId);
    }
    return lagsMs;
  }

  get backlog(): BacklogFigures {
    return { count: this.backlogCount, amountMinor: this.backlogAmountMinor, peakAmountMinor: this.peakBacklogAmountMinor };
  }

  /**
   * [INV-4 nothing twice] SD never reports the same transaction posted by two different requests. (A resent
   * request gets its stored answer again, which names the same postings: that is not a second posting.)
   * `requestId` is `from/reqId`; `sender` names the actor whose recent events a violation shows.
   */
  checkPostedOnce(book: InvariantBook, requestId: string, sender: string, postedTxIds: readonly string[]): void {
    for (const txId of postedTxIds) {
      const firstBy = this.firstPostedBy.get(txId);
      const fresh = firstBy === undefined || firstBy === requestId;
      if (!fresh) this.duplicatedPostings++;
      book.check('INV-4', fresh, () => `transaction ${txId} posted twice: by ${firstBy} and again by ${requestId}`, [sender]);
      if (firstBy === undefined) this.firstPostedBy.set(txId, requestId);
    }
  }
}
