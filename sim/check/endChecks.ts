// Goal: the checks that only make sense once the run has drained — conservation of every ledger [INV-3], nothing
// lost, nothing twice [INV-4], every proof honoured by a credit [INV-5], every backlog empty [INV-7] — and the
// ledger figures of summary.json, for both modes.
// Method: `checkAtEnd` takes a plain input (ledgers, approved proofs, POS receipts, what SD reversed, each
// terminal's journal at the end), never a runner, so the virtual simulator (its shards' ledgers, its actors'
// journals) and the mqtt coordinator (ledgers read back from the servers' SQLite files, journals reported by the
// workers) run the very same checkers, one per invariant (inv3…, inv4…, inv5…, inv7…). The book collects every
// violation here instead of stopping at the first.

import type { InvariantBook } from './invariantBook.ts';
import { checkLedgerConserves } from './inv3Conservation.ts';
import { checkNothingLost, heldInJournals, type RemitRefusal } from './inv4NothingLostNothingTwice.ts';
import { checkProofsHonoured } from './inv5BeneficiaryNeverHarmed.ts';
import { checkBacklogsDrained, type PosEnd, type TerminalEnd } from './inv7Liveness.ts';
import { checkTopUps } from './topUpCheck.ts';
import type { TopUpFigures } from '../../machines/domain/ledgerTopUps.ts';
import type { SignatureScheme } from '../../machines/domain/signature.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import type { Proof } from '../../machines/messages.ts';

export interface LedgerFigures {
  approvedAmountMinor: number;
  postedAmountMinor: number;
  lost: number;
  /** Approved, on no ledger, and still held in a journal or a POS unit's receipts at the end: pending, not lost. */
  heldInJournals: number;
  duplicated: number;
  unexpected: number;
  sumOfBalancesMinor: number;
  /** Money that entered from outside by top-up (auto-reload agreements); only in a run that has agreements. */
  topUps?: TopUpFigures;
}

/** Everything the end checks read. */
export interface EndCheckInput {
  book: InvariantBook;
  /** Every ledger, with how to name it in a message (`shard 3`, `server 0-3`). */
  ledgers: ReadonlyArray<{ label: string; ledger: Ledger }>;
  /** Every payment a proxy approved, by transaction id. */
  approved: ReadonlyMap<string, { proof: Proof }>;
  /** Proofs held by POS units (their receipts). */
  posProofs: readonly Proof[];
  /** Remote payments SD reversed at their proxy's request (declined to their app). */
  reversed: Iterable<string>;
  /** Each terminal at the end: alive or still down, and its proxy's journal. */
  terminals: Iterable<TerminalEnd>;
  /** Each POS unit at the end and its receipts not yet settled. */
  pos: Iterable<PosEnd>;
  publicKeyOf(id: string): string | undefined;
  /** SD's public key: the receipts in remote payments' proofs are checked against it [INV-5]. */
  serverPublicKey: string;
  scheme: SignatureScheme;
  /** Transactions SD reported posted by two different requests (found as they happened, or from its records). */
  duplicatedPostings: number;
  /** Remittances SD refused and stored the refusal for, whole or transaction by transaction [INV-7]. */
  remitRefusals?: readonly RemitRefusal[];
  /** App orders still waiting for their answer at a terminal that is up when the run ended [INV-7]. */
  unansweredOrders?: readonly string[];
  /** Whether a means has a top-up agreement; absent in a run without agreements (ledgerTopUps.ts, topUpCheck.ts). */
  hasTopUpAgreement?: (meansId: string) => boolean;
}

export function checkAtEnd(input: EndCheckInput): LedgerFigures {
  const { book } = input;
  let sumOfBalancesMinor = 0;
  for (const { label, ledger } of input.ledgers) sumOfBalancesMinor += checkLedgerConserves(book, `${label} at the end`, ledger);
  // [INV-3] the money that entered from outside is exactly the top-ups recorded, each due to a posting.
  const topUps = checkTopUps(book, input.ledgers, input.hasTopUpAgreement);

  const terminals = [...input.terminals];
  const pos = [...input.pos];
  checkBacklogsDrained(book, terminals, pos, input.remitRefusals, input.unansweredOrders);

  const ledgers = input.ledgers.map((l) => l.ledger);
  const held = heldInJournals(terminals, pos);
  const figures = checkNothingLost(book, { approved: input.approved, reversed: input.reversed, ledgers, held });

  const proofs: Proof[] = [...input.posProofs];
  for (const { proof } of input.approved.values()) proofs.push(proof);
  checkProofsHonoured(book, { proofs, scheme: input.scheme, publicKeyOf: input.publicKeyOf, serverPublicKey: input.serverPublicKey, ledgers, held });

  return {
    approvedAmountMinor: figures.approvedAmountMinor,
    postedAmountMinor: figures.postedAmountMinor,
    lost: figures.lost,
    heldInJournals: figures.heldInJournals,
    duplicated: figures.duplicated + input.duplicatedPostings,
    // A payment on the ledger with another amount, means or payee is as unexpected as one nobody approved.
    unexpected: figures.unexpected + figures.amountMismatch,
    sumOfBalancesMinor,
    ...(input.hasTopUpAgreement ? { topUps } : {}),
  };
}
