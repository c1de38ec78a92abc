// Goal: the checks that only make sense once the run has drained — nothing lost, nothing twice, every proof
// honoured by a credit, every backlog empty — and the ledger figures of summary.json, for both modes.
// Method: walk the record of approved payments against the ledgers, then walk the ledgers for postings nobody
// approved. Each finding goes to the invariant book (which, at the end, collects all violations instead of
// stopping at the first). `checkAtEnd` takes plain inputs — ledgers, approved proofs, POS proofs, what is left
// in each journal — so the virtual simulator and the mqtt runner (ledgers read back from the
// servers' SQLite files, journals reported by the workers) run the very same checks.

import type { InvariantBook } from './checkers.ts';
import { verifyClaim, type SignatureScheme } from '../../machines/domain/signature.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import type { Posting } from '../../machines/domain/ledgerStore.ts';
import type { Proof } from '../../machines/messages.ts';

export interface LedgerFigures {
  approvedAmountMinor: number;
  postedAmountMinor: number;
  lost: number;
  duplicated: number;
  unexpected: number;
  sumOfBalancesMinor: number;
}

function isReversed(posting: Posting): boolean {
  return Boolean((posting as Posting & { reversedBy?: string }).reversedBy);
}

/** Everything the end checks read. */
export interface EndCheckInput {
  book: InvariantBook;
  /** Every ledger, with how to name it in a message (`shard 3`, `server 0-3`). */
  ledgers: ReadonlyArray<{ label: string; ledger: Ledger }>;
  ledgerOfMeans(meansId: string): Ledger;
  /** Every payment a proxy approved, by transaction id. */
  approved: ReadonlyMap<string, { proof: Proof }>;
  /** Proofs held by POS units (their receipts). */
  posProofs: readonly Proof[];
  /** Each terminal at the end: alive or still down, and its journal items SD has not acknowledged. */
  terminals: Iterable<{ terminalId: string; up: boolean; pending: number }>;
  /** Each POS unit at the end and its receipts not yet settled. */
  pos: Iterable<{ posId: string; unsettled: number }>;
  publicKeyOf(id: string): string | undefined;
  scheme: SignatureScheme;
  /** Transactions SD reported posted by two different requests (found as they happened, or from its records). */
  duplicatedPostings: number;
}

export function checkAtEnd(input: EndCheckInput): LedgerFigures {
  const { book } = input;
  let sumOfBalancesMinor = 0;
  for (const { label, ledger } of input.ledgers) {
    const sum = ledger.sumOfBalancesMinor();
    sumOfBalancesMinor += sum;
    book.check('INV-3', sum === 0, () => `${label}: sum of balances ${sum} at the end`);
  }

  // [INV-7 liveness] every proxy's journal and every POS's receipts drained within the drain time.
  for (const terminal of input.terminals) {
    const { terminalId, up, pending } = terminal;
    book.check('INV-7', up && pending === 0, () => `${terminalId}: ${up ? `${pending} items not acknowledged` : 'still down'} after the drain time`, [terminalId]);
  }
  for (const { posId, unsettled } of input.pos) {
    book.check('INV-7', unsettled === 0, () => `${posId}: ${unsettled} receipts not settled after the drain time`, [posId]);
  }

  // [INV-4 nothing lost] every approved payment is on its shard's ledger once, with its amount.
  let approvedAmountMinor = 0;
  let lost = 0;
  let mismatched = 0;
  for (const [txId, approved] of input.approved) {
    const proof = approved.proof;
    approvedAmountMinor += proof.amountMinor;
    const posting = input.ledgerOfMeans(proof.meansId).postingOf(txId);
    if (!posting || isReversed(posting)) {
      lost++;
      book.check('INV-4', false, () => `approved ${txId} (${proof.amountMinor} to ${proof.payee}, ${proof.path}) is ${posting ? 'reversed' : 'not'} on the ledger`, [proof.proxyId]);
      continue;
    }
    const amountOk = posting.amountMinor === null || posting.amountMinor === proof.amountMinor;
    const partiesOk = posting.payee === proof.payee && posting.meansId === proof.meansId;
    if (!amountOk || !partiesOk) mismatched++;
    book.check('INV-4', amountOk && partiesOk, () => `${txId}: approved ${proof.amountMinor} to ${proof.payee}, posted ${posting.amountMinor} to ${posting.payee}`, [proof.proxyId]);
  }

  // Aggregates: each equals the sum of the approved transactions it covers [INV-4 aggregate sum].
  let postedAmountMinor = 0;
  let unexpected = 0;
  for (const { ledger } of input.ledgers) {
    for (const aggregate of ledger.aggregates()) {
      let sum = 0;
      let known = true;
      for (const txId of aggregate.txIds) {
        const approved = input.approved.get(txId);
        if (approved) sum += approved.proof.amountMinor;
        else known = false;
      }
      book.check('INV-4', known && sum === aggregate.sumMinor, () => `aggregate ${aggregate.id}: sum ${aggregate.sumMinor}, approved transactions add up to ${sum}${known ? '' : ' (some not approved)'}`);
      postedAmountMinor += aggregate.postedMinor;
    }
    for (const posting of ledger.postings()) {
      if (isReversed(posting)) continue;
      if (posting.amountMinor !== null) postedAmountMinor += posting.amountMinor;
      // Nothing paid that nobody approved: a posting without an approval must have been reversed.
      if (!input.approved.has(posting.txId)) {
        unexpected++;
        book.check('INV-4', false, () => `${posting.txId} is posted (${posting.via}) but no proxy approved it`);
      }
    }
  }

  // [INV-5 beneficiary never harmed] every proof held verifies and matches a credit to its payee.
  const proofs: Proof[] = [...input.posProofs, ...[...input.approved.values()].map((a) => a.proof)];
  for (const proof of proofs) {
    const publicKey = input.publicKeyOf(proof.proxyId);
    const verifies = publicKey !== undefined && verifyClaim(input.scheme, publicKey, proof, proof.sig);
    const posting = input.ledgerOfMeans(proof.meansId).postingOf(proof.txId);
    const credited = posting !== undefined && !isReversed(posting) && posting.payee === proof.payee;
    book.check('INV-5', verifies && credited, () => `proof ${proof.txId} ${verifies ? 'verifies' : 'does not verify'} and ${credited ? 'is' : 'is not'} credited to ${proof.payee}`, [proof.proxyId]);
  }

  return { approvedAmountMinor, postedAmountMinor, lost, duplicated: input.duplicatedPostings, unexpected: unexpected + mismatched, sumOfBalancesMinor };
}
