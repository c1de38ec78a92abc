// Goal: what a run keeps about the payments it saw, the same in both modes — every approved payment, the
// backlog of approved local transactions not yet remitted (count, amount, peak), the remittance lag of each, and
// the drain state (phase, drained time) — and the end checks' input built from it.
// Method: one plain class with no clock and no I/O. The virtual `Simulator` records into it as its fleet emits;
// the mqtt `SwarmWorker` records into one without proofs (it reports them to the coordinator in batches), and the
// coordinator records what the batches say into its own; the summary and the end checks read it. What SD answered
// (a transaction posted twice, the payments it reversed) is not kept here but by the INV-4 checker's
// `AnswersOfSd` (sim/check/inv4NothingLostNothingTwice.ts), which both modes feed: the virtual mode with SD's
// answers as they happen, the mqtt mode with the answers SD stored, read back from its ledger files at the end.
// `endCheckInput` joins the two, so both modes hand `checkAtEnd` the same shape from the same parts.

import type { Proof } from '../../machines/messages.ts';
import type { EndCheckInput } from '../check/endChecks.ts';
import type { AnswersOfSd } from '../check/inv4NothingLostNothingTwice.ts';

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
  /** Remote payments declined to their app after their request went to SD: none may stay held or paid [INV-4]. */
  readonly declinedRemote = new Set<string>();
  /** Approval time of each local transaction not yet remitted, for its remittance lag. */
  private readonly unremittedSinceMs = new Map<string, number>();
  private backlogCount = 0;
  private backlogAmountMinor = 0;
  private peakBacklogAmountMinor = 0;
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
   * The end checks' input: this record's approvals and receipts, what SD answered [INV-4] (the transactions it
   * reported posted twice and the payments it reversed), and the rest of the run as it ended (ledgers, journals,
   * keys). Both modes build their `checkAtEnd` input here.
   */
  endCheckInput(answers: Pick<AnswersOfSd, 'reversed' | 'duplicatedPostings' | 'remitRefusals'>, run: EndOfRun): EndCheckInput {
    // Every remote payment declined to its app is checked as a reversed one: no active hold, no payment left —
    // not only those whose reversal SD acknowledged (a declined payment whose reversal never took is the bug).
    const reversed = new Set([...answers.reversed, ...this.declinedRemote]);
    return { ...run, approved: this.approved, posProofs: this.posProofs, reversed, duplicatedPostings: answers.duplicatedPostings, remitRefusals: answers.remitRefusals };
  }
}

/** What the end checks read beside the run record and SD's answers. */
export type EndOfRun = Omit<EndCheckInput, 'approved' | 'posProofs' | 'reversed' | 'duplicatedPostings' | 'remitRefusals'>;
