// Goal: the INV-5 checker (beneficiary never harmed), the same in both modes: after the drain, every proof an app
// or a POS unit holds verifies against its proxy's registered key (and a remote one's receipt against SD's) and is honoured by a credit to its payee, from
// its means, for its amount (or inside an aggregate to that payee, whose sum INV-4 checks).
// Method: the domain's `checkProofs` (machines/domain/invariants.ts) over every ledger of the run. A proof whose
// payment is still held in its payer's journal (or a POS unit's receipts) and not credited yet is pending, not
// harmed: INV-7 flags the journal that did not drain.

import { checkProofs } from '../../machines/domain/invariants.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import type { SignatureScheme } from '../../machines/domain/signature.ts';
import type { Proof } from '../../machines/messages.ts';
import type { InvariantBook } from './invariantBook.ts';

export interface ProofsHonouredInput {
  /** Every proof held: the apps' (the approved payments) and the POS units' receipts. */
  proofs: readonly Proof[];
  scheme: SignatureScheme;
  publicKeyOf(proxyId: string): string | undefined;
  /** SD's public key, to check the receipt a remote payment's proof carries. */
  serverPublicKey: string;
  ledgers: readonly Pick<Ledger, 'postingOf'>[];
  /** Transactions still held in a journal at the end: a proof of one without a credit yet is pending, not harmed. */
  held?: ReadonlySet<string>;
}

/** [INV-5 beneficiary never harmed] one check per proof held (a POS receipt is also its payer's approval). */
export function checkProofsHonoured(book: InvariantBook, input: ProofsHonouredInput): void {
  const violations = checkProofs({ proofs: input.proofs, scheme: input.scheme, publicKeyOf: input.publicKeyOf, serverPublicKey: input.serverPublicKey, ledger: input.ledgers, held: input.held });
  book.record('INV-5', input.proofs.length, violations);
}
