// Goal: the INV-6 checker (signatures: a forged, altered, replayed or malformed message is refused and changes
// nothing), for both modes. The two modes observe an adversarial message differently, so there is one check per
// observation, both here: the virtual mode sees the ledger just before and after SD applied the message; the mqtt
// mode sees the broker's or SD's reaction as the attacker did, and the ledgers once the servers have stopped.
// Method: virtual mode — the domain's `checkRefusedUnchanged` (machines/domain/invariants.ts) on the ledger's
// fingerprints around the message: refused with a signature refusal code (an exact replay may get its stored
// answer back) and no change. Mqtt mode — `checkInjectionRefused` on what each injection heard and on the ledger.

import { checkRefusedUnchanged } from '../../machines/domain/invariants.ts';
import type { Ledger } from '../../machines/domain/ledger.ts';
import type { ServerRequest, ServerResult } from '../../machines/messages.ts';
import type { InvariantBook } from './invariantBook.ts';

/** [INV-6 signatures] virtual mode: an adversarial request SD applied, with the ledger's fingerprint around it. */
export function checkAdversarialApplied(
  book: InvariantBook,
  request: ServerRequest,
  result: ServerResult,
  fingerprints: { before: string; after: string },
  exactReplay: boolean,
): void {
  const violations = checkRefusedUnchanged(fingerprints.before, fingerprints.after, result, { exactReplay });
  book.record('INV-6', 1, violations, () => [request.from]);
}

export type AdversarialKind = 'forgedSignature' | 'replayedRemittance' | 'malformedPayload' | 'wrongTopic';

/** One adversarial message of an mqtt-mode run, as the attacker sent it and what it heard back. */
export interface Injection {
  kind: AdversarialKind;
  reqId: string;
  /** The means whose ledger the message aimed at. */
  meansId: string;
  /** Transaction ids that must not be posted by this message. */
  txIds: string[];
  /** For a replay: the ids it names that were posted before, which must keep their original posting. */
  replayed: string[];
  /** Closed by the broker, SD's answer, or nothing heard (Mosquitto drops a forbidden publish silently). */
  outcome: 'closedByBroker' | 'answered' | 'unanswered' | 'notSent';
  answer?: ServerResult;
  /** Why it was not sent (no remittance to replay yet, the broker unreachable…). */
  notSentBecause?: string;
}

/**
 * [INV-6 signatures] mqtt mode: each message sent was refused (by the broker, or by SD with a reason) and changed
 * nothing: no transaction it names is posted by it, and a replay left every transaction with its original posting.
 */
export function checkInjectionRefused(book: InvariantBook, injection: Injection, ledgerOfMeans: (meansId: string) => Pick<Ledger, 'postingOf'>): void {
  if (injection.outcome === 'notSent') return;
  const answer = injection.answer;
  // A replay may be answered `ok` as long as it posted nothing (SD recognised every transaction); anything
  // else must not be answered `ok` at all.
  const refused = injection.outcome !== 'answered' || answer?.ok !== true || (injection.kind === 'replayedRemittance' && (answer.posted ?? []).length === 0);
  const postedByIt: string[] = [];
  for (const txId of [...injection.txIds, ...injection.replayed]) {
    const posting = ledgerOfMeans(injection.meansId).postingOf(txId);
    const byIt = injection.txIds.includes(txId) ? posting !== undefined : posting?.requestId.endsWith(`/${injection.reqId}`) === true;
    if (byIt) postedByIt.push(txId);
  }
  book.check(
    'INV-6',
    refused && postedByIt.length === 0,
    () => `${injection.kind} ${injection.reqId}: ${injection.outcome}${injection.answer ? ` (${injection.answer.code})` : ''}, posted by it: ${postedByIt.join(', ') || 'nothing'}`,
  );
}
