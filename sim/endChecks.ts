// Goal: the checks that only make sense once the run has drained — nothing lost, nothing twice, every proof
// honoured by a credit, every backlog empty — and the ledger figures of summary.json.
// Method: walk the workload's record of approved payments against the shard ledgers, then walk the ledgers
// for postings nobody approved. Each finding goes to the invariant book (which, at the end, collects all
// violations instead of stopping at the first).

import type { Simulator } from './simulator.ts';
import { proxyStateOf } from './fleet.ts';
import { verifyClaim } from '../machines/domain/signature.ts';
import type { Posting } from '../machines/domain/ledgerStore.ts';
import type { Proof } from '../machines/messages.ts';

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

export function endChecks(sim: Simulator): void {
  const { book, fleet } = sim;
  let sumOfBalancesMinor = 0;
  for (const [shard, ledger] of fleet.ledgers.entries()) {
    const sum = ledger.sumOfBalancesMinor();
    sumOfBalancesMinor += sum;
    book.check('INV-3', sum === 0, () => `shard ${shard}: sum of balances ${sum} at the end`);
  }

  // [INV-7 liveness] every proxy's journal and every POS's receipts drained within the drain time.
  for (const slot of fleet.terminals) {
    const state = proxyStateOf(slot);
    const pending = state ? state.journal.pending.length + state.journal.outbox.length : 0;
    book.check('INV-7', slot.actor !== undefined && pending === 0, () => `${slot.plan.terminalId}: ${slot.actor ? `${pending} items not acknowledged` : 'still down'} after the drain time`, [slot.plan.terminalId]);
  }
  for (const [posId, pos] of fleet.pos) {
    const unsettled = pos.getSnapshot().context.unsettled.length;
    book.check('INV-7', unsettled === 0, () => `${posId}: ${unsettled} receipts not settled after the drain time`, [posId]);
  }

  // [INV-4 nothing lost] every approved payment is on its shard's ledger once, with its amount.
  let approvedAmountMinor = 0;
  let lost = 0;
  let mismatched = 0;
  for (const [txId, approved] of sim.approved) {
    const proof = approved.proof;
    approvedAmountMinor += proof.amountMinor;
    const posting = fleet.ledgerOfMeans(proof.meansId).postingOf(txId);
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
  for (const ledger of fleet.ledgers) {
    for (const aggregate of ledger.aggregates()) {
      let sum = 0;
      let known = true;
      for (const txId of aggregate.txIds) {
        const approved = sim.approved.get(txId);
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
      if (!sim.approved.has(posting.txId)) {
        unexpected++;
        book.check('INV-4', false, () => `${posting.txId} is posted (${posting.via}) but no proxy approved it`);
      }
    }
  }

  // [INV-5 beneficiary never harmed] every proof held verifies and matches a credit to its payee.
  const proofs: Proof[] = [...sim.posProofs, ...[...sim.approved.values()].map((a) => a.proof)];
  for (const proof of proofs) {
    const publicKey = fleet.publicKeyOf(proof.proxyId);
    const verifies = publicKey !== undefined && verifyClaim(fleet.options.scheme, publicKey, proof, proof.sig);
    const posting = fleet.ledgerOfMeans(proof.meansId).postingOf(proof.txId);
    const credited = posting !== undefined && !isReversed(posting) && posting.payee === proof.payee;
    book.check('INV-5', verifies && credited, () => `proof ${proof.txId} ${verifies ? 'verifies' : 'does not verify'} and ${credited ? 'is' : 'is not'} credited to ${proof.payee}`, [proof.proxyId]);
  }

  sim.endFigures = { approvedAmountMinor, postedAmountMinor, lost, duplicated: sim.duplicatedPostings, unexpected: unexpected + mismatched, sumOfBalancesMinor };
}
