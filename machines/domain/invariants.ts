// Goal: the one table of the invariants a run checks (ids and names, INV-1..INV-7 of docs/design.md §5 and the
// order ORACLE), and one check function per invariant, shared by the simulator's checkers (sim/check/, both modes)
// and by the property suites.
// Method: each check is a pure function that reads plain state — a means, a pair of means, a ledger (through the
// few read methods it needs), a journal — and returns the list of violations it found, empty when the invariant
// holds. A check never throws on bad state: finding bad state is its job. The online checks (INV-1, INV-2, INV-3,
// INV-6) cost O(1) or O(size of one means); the end-of-run checks (INV-4, INV-5, INV-7) are linear in what they
// walk, each posting, aggregate member and proof visited a fixed number of times. The ORACLE (every order answered
// once, as the policy allows) needs the run's record of issued orders, so its check is in sim/check/oracle.ts.

import { periodIndexAt } from './period.ts';
import { holdsLocalBalance, type MeansState } from './means.ts';
import { verifyClaim, verifyServerReceipt, type SignatureScheme } from './signature.ts';
import type { Minor } from './money.ts';
import type { Ledger } from './ledger.ts';
import type { Aggregate, LedgerStore, Posting } from './ledgerStore.ts';
import type { Journal } from './remittance.ts';
import type { Proof, ServerResult } from '../messages.ts';

/** The invariants, in the order summary.json and the report list them; the only list of their ids and names. */
export const INVARIANTS = [
  { id: 'INV-1', name: 'MTDL < SL' },
  { id: 'INV-2', name: 'period limits and non-negative balances' },
  { id: 'INV-3', name: 'conservation (double entry)' },
  { id: 'INV-4', name: 'nothing lost, nothing twice' },
  { id: 'INV-5', name: 'beneficiary never harmed' },
  { id: 'INV-6', name: 'signatures: forged, altered, replayed refused and change nothing' },
  { id: 'INV-7', name: 'liveness: every backlog drains' },
  { id: 'ORACLE', name: 'every order answered as the policy allows' },
] as const;

export type InvariantId = (typeof INVARIANTS)[number]['id'];

/** The name of an invariant, as summary.json and the report show it. */
export function invariantName(id: InvariantId): string {
  return INVARIANTS.find((invariant) => invariant.id === id)!.name;
}

/** One broken invariant: which, what broke, and the thing it broke for (a proxy, a means, a txId, a ledger). */
export interface Violation {
  invariant: InvariantId;
  message: string;
  subject: string;
}

/** The read side of a ledger the end-of-run checks need; a Ledger has it, and so can a view over many shards. */
export type PostingsView = Pick<Ledger, 'postingOf' | 'postings' | 'aggregates' | 'holdOf'> & Partial<Pick<Ledger, 'payeeCredits'>>;

const isReversed = (posting: Posting): boolean => posting.reversedBy !== undefined;
const asList = <T>(one: T | readonly T[]): readonly T[] => (Array.isArray(one) ? one : [one as T]);

// ---------------------------------------------------------------------------------------------- INV-1
/** [INV-1 MTDL<SL] the proxy's local spending is zero or strictly below its local balance. */
export function checkLocalBalance(proxyId: string, means: MeansState): Violation[] {
  if (means.localSpentMinor >= 0 && holdsLocalBalance(means)) return [];
  return [{ invariant: 'INV-1', subject: proxyId, message: `${proxyId}/${means.meansId}: MTDL ${means.localSpentMinor} is not below SL ${means.localBalanceMinor}` }];
}

// ---------------------------------------------------------------------------------------------- INV-2
/** A local payment that produced `after` from `before`, or null when none did (a remote payment, a sync, a refusal). */
export interface MeansPayment {
  amountMinor: Minor;
  nowMs: number;
}

/**
 * [INV-2 period limits] from one state of a means to the next: MTD ≤ PD in every period and never falling within
 * one; wallet, fixed and recurring balances never negative; a fixed amount spent only inside
 * [validFromMs, validFromMs + periodMs) and only by the payment; a recurring amount back to S0 exactly at each
 * period boundary and, within a period, lowered only by the payment. Between two calls the state may also have
 * been synced (SL, MTDL and the wallet follow SD) or charged with a remote payment (MTD only), so a null
 * payment allows those changes and no others. A local payment draws on every source the means has, so with a
 * payment each source must have moved by exactly its amount.
 */
export function checkMeansTransition(before: MeansState, after: MeansState, payment: MeansPayment | null): Violation[] {
  const violations: Violation[] = [];
  const flag = (message: string) => violations.push({ invariant: 'INV-2', subject: after.meansId, message: `${after.meansId}: ${message}` });
  const paidMinor = payment?.amountMinor ?? 0;

  const ceiling = after.ceiling;
  if (ceiling) {
    if (ceiling.periodSpentMinor > ceiling.ceilingMinor) flag(`MTD ${ceiling.periodSpentMinor} exceeds PD ${ceiling.ceilingMinor} in period ${ceiling.periodIndex}`);
    if (ceiling.periodSpentMinor < 0) flag(`MTD ${ceiling.periodSpentMinor} is negative`);
    const was = before.ceiling;
    if (was && was.originMs === ceiling.originMs && was.periodMs === ceiling.periodMs) {
      // A period that follows remittances or connections (`periodBy`) is not a function of time: only its never
      // going back and MTD within it are checked.
      if (payment && ceiling.periodBy === undefined) {
        // A clock set back never returns to an earlier period (so it cannot bring back an old allowance): the
        // payment belongs to the later of its own period and the one the means is already in.
        const index = Math.max(was.periodIndex, periodIndexAt(payment.nowMs, ceiling.originMs, ceiling.periodMs));
        if (ceiling.periodIndex !== index) flag(`MTD counts period ${ceiling.periodIndex} for a payment at ${payment.nowMs} in period ${index}`);
      }
      if (ceiling.periodIndex < was.periodIndex) flag(`MTD went back from period ${was.periodIndex} to ${ceiling.periodIndex}`);
      else {
        const baseMinor = ceiling.periodIndex === was.periodIndex ? was.periodSpentMinor : 0;
        // A remote payment (payment null) may add to MTD; only a local payment says by how much exactly.
        const fits = payment ? ceiling.periodSpentMinor === baseMinor + paidMinor : ceiling.periodSpentMinor >= baseMinor;
        if (!fits) flag(`MTD went from ${was.periodSpentMinor} (period ${was.periodIndex}) to ${ceiling.periodSpentMinor} (period ${ceiling.periodIndex}) for a payment of ${paidMinor}`);
      }
    }
  }

  if (after.wallet && after.wallet.balanceMinor < 0) flag(`wallet balance ${after.wallet.balanceMinor} is negative`);

  const fixed = after.fixedAmount;
  if (fixed) {
    if (fixed.remainingMinor < 0) flag(`fixed amount ${fixed.remainingMinor} is negative`);
    if (fixed.remainingMinor > fixed.initialMinor) flag(`fixed amount ${fixed.remainingMinor} exceeds S0 ${fixed.initialMinor}`);
    const endMs = fixed.validFromMs + fixed.periodMs;
    if (payment && (payment.nowMs < fixed.validFromMs || payment.nowMs >= endMs)) {
      flag(`local payment at ${payment.nowMs} while the fixed amount is usable only in [${fixed.validFromMs}, ${endMs})`);
    }
    const was = before.fixedAmount;
    // A new grant (another S0 or period) starts afresh; only the same grant is compared.
    if (was && was.validFromMs === fixed.validFromMs && was.periodMs === fixed.periodMs && was.initialMinor === fixed.initialMinor) {
      if (fixed.remainingMinor !== was.remainingMinor - paidMinor) flag(`fixed amount went from ${was.remainingMinor} to ${fixed.remainingMinor} for a payment of ${paidMinor}`);
    }
  }

  const recurring = after.recurring;
  if (recurring) {
    if (recurring.remainingMinor < 0) flag(`recurring amount ${recurring.remainingMinor} is negative`);
    if (recurring.remainingMinor > recurring.amountMinor) flag(`recurring amount ${recurring.remainingMinor} exceeds S0 ${recurring.amountMinor}`);
    const was = before.recurring;
    if (was && was.originMs === recurring.originMs && was.periodMs === recurring.periodMs && was.amountMinor === recurring.amountMinor) {
      if (payment) {
        const index = Math.max(was.periodIndex, periodIndexAt(payment.nowMs, recurring.originMs, recurring.periodMs));
        if (recurring.periodIndex !== index) flag(`recurring amount is in period ${recurring.periodIndex} for a payment at ${payment.nowMs} in period ${index}`);
      }
      if (recurring.periodIndex < was.periodIndex) flag(`recurring amount went back from period ${was.periodIndex} to ${recurring.periodIndex}`);
      else {
        const advanced = recurring.periodIndex > was.periodIndex;
        // [INV-2 recurring reset] a new period starts from S0, whatever was left; within one, only the payment lowers it.
        const expectedMinor = (advanced ? recurring.amountMinor : was.remainingMinor) - paidMinor;
        if (recurring.remainingMinor !== expectedMinor) {
          flag(`recurring amount is ${recurring.remainingMinor}, expected ${expectedMinor} (${advanced ? `reset to S0 ${recurring.amountMinor} in period ${recurring.periodIndex}` : `${was.remainingMinor} left in period ${was.periodIndex}`}, payment ${paidMinor})`);
        }
      }
    }
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------- INV-3
/**
 * [INV-3 conservation] the balances of one ledger sum to zero. Takes anything that can give the sum, so a store
 * that keeps a running sum answers in O(1).
 */
export function checkConservation(ledger: Pick<Ledger, 'sumOfBalancesMinor'>, subject = 'ledger'): Violation[] {
  const sumMinor = ledger.sumOfBalancesMinor();
  return sumMinor === 0 ? [] : [{ invariant: 'INV-3', subject, message: `${subject}: the balances sum to ${sumMinor}, not 0` }];
}

// ---------------------------------------------------------------------------------------------- INV-4
/** What a proxy approved: a proof (local or remote) or just its claim. */
export type ApprovedPayment = Pick<Proof, 'txId' | 'meansId' | 'payee' | 'amountMinor' | 'proxyId'>;

export interface NothingLostInput {
  /**
   * Every payment a proxy approved to its app or POS, local or remote. For a remote authCapture payment the
   * capture must be on the ledger after the drain.
   */
  approved: Iterable<ApprovedPayment>;
  /** The txIds of remote payments declined to the app whose reversal was queued: none may stay paid or held. */
  reversed: Iterable<string>;
  /** One ledger, or every shard's. */
  ledger: PostingsView | readonly PostingsView[];
  /**
   * The amount of each transaction an aggregate may cover (the locally approved ones), by txId. Optional: built
   * from `approved` when absent; a simulator that keeps such a map already passes it to save the copy.
   */
  aggregatesSource?: ReadonlyMap<string, Minor>;
  /**
   * Transactions still held at the end in a proxy's journal or a POS unit's unsettled receipts. One of them that
   * is on no ledger is not lost — the money still waits to be remitted — and is counted in `heldInJournals`
   * instead; INV-7 flags the journal that did not drain. Held too: a remote payment whose proxy still waits for
   * SD's answer; if SD posted it, that posting is pending (the proxy completes or reverses it), not unexpected.
   */
  held?: ReadonlySet<string>;
}

export interface NothingLostCounts {
  /** Approved, and not on the ledger (or reversed there). */
  lost: number;
  /** Paid more than once: on two shards, in two overlapping accepted aggregates, or moved again by an aggregate. */
  duplicated: number;
  /** Paid or held, and approved by nobody. */
  unexpected: number;
  /** On the ledger with another amount, means or payee; or an aggregate whose sums disagree with what it covers. */
  amountMismatch: number;
}

export interface NothingLostReport {
  counts: NothingLostCounts;
  violations: Violation[];
  approvedAmountMinor: Minor;
  /** What the ledgers paid and did not reverse: single postings plus what each aggregate moved. */
  postedAmountMinor: Minor;
  /** Approved, on no ledger, and still held in a journal at the end (`held`): pending, not lost. */
  heldInJournals: number;
}

/**
 * [INV-4 nothing lost, nothing twice] after the drain: every approved payment is on the ledger exactly once with
 * its amount; each aggregate's sum is the sum of the approved amounts it covers, and what it moved is that sum
 * less what was on the ledger already (its members posted singly or by an earlier aggregate wholly inside it); no
 * transaction is in two accepted aggregates that overlap without one containing the other; and nothing is paid or
 * held that nobody approved (a reversed remote payment above all).
 */
export function checkNothingLostNothingTwice(input: NothingLostInput): NothingLostReport {
  const counts: NothingLostCounts = { lost: 0, duplicated: 0, unexpected: 0, amountMismatch: 0 };
  const violations: Violation[] = [];
  const flag = (count: keyof NothingLostCounts, subject: string, message: string) => {
    counts[count]++;
    violations.push({ invariant: 'INV-4', subject, message });
  };
  const ledgers = asList(input.ledger);

  // Every posting of every shard, once; the same txId paid on two shards is paid twice.
  const postings = new Map<string, Posting>();
  const aggregates = new Map<string, Aggregate>();
  let postedAmountMinor = 0;
  for (const [shard, ledger] of ledgers.entries()) {
    for (const posting of ledger.postings()) {
      const other = postings.get(posting.txId);
      if (other && !isReversed(other) && !isReversed(posting)) flag('duplicated', posting.txId, `${posting.txId} is posted on two ledgers (the second on ledger ${shard})`);
      if (!other || isReversed(other)) postings.set(posting.txId, posting);
      if (!isReversed(posting) && posting.amountMinor !== null) postedAmountMinor += posting.amountMinor;
    }
    for (const aggregate of ledger.aggregates()) {
      aggregates.set(aggregate.id, aggregate);
      postedAmountMinor += aggregate.postedMinor;
    }
  }

  // Every approved payment, on the ledger once with its amount.
  const approved = new Map<string, ApprovedPayment>();
  let approvedAmountMinor = 0;
  let heldInJournals = 0;
  for (const payment of input.approved) {
    const twin = approved.get(payment.txId);
    if (twin) {
      // Two different payments approved under one txId: the ledger can hold one of them only.
      if (twin.amountMinor !== payment.amountMinor || twin.payee !== payment.payee || twin.meansId !== payment.meansId) {
        flag('lost', payment.txId, `${payment.txId} was approved twice as different payments (${twin.amountMinor} to ${twin.payee}, ${payment.amountMinor} to ${payment.payee})`);
      }
      continue;
    }
    approved.set(payment.txId, payment);
    approvedAmountMinor += payment.amountMinor;
    const posting = postings.get(payment.txId);
    // [INV-4 nothing lost] "Lost" means approved and in no journal or ledger: a payment its proxy still holds is
    // pending (INV-7's business), not lost.
    if (!posting && input.held?.has(payment.txId)) heldInJournals++;
    else if (!posting) flag('lost', payment.txId, `${payment.txId} (${payment.amountMinor} to ${payment.payee}, approved by ${payment.proxyId}) is not on the ledger`);
    else if (isReversed(posting)) flag('lost', payment.txId, `${payment.txId} (${payment.amountMinor} to ${payment.payee}, approved by ${payment.proxyId}) was reversed by ${posting.reversedBy}`);
    else if (posting.meansId !== payment.meansId || posting.payee !== payment.payee || (posting.amountMinor !== null && posting.amountMinor !== payment.amountMinor)) {
      flag('amountMismatch', payment.txId, `${payment.txId}: approved ${payment.amountMinor} from ${payment.meansId} to ${payment.payee}, posted ${posting.amountMinor} from ${posting.meansId} to ${posting.payee}`);
    }
  }

  // Nothing paid or held for a payment nobody approved; a declined remote payment must have been undone.
  const reversed = new Set(input.reversed);
  for (const txId of reversed) {
    if (approved.has(txId)) flag('unexpected', txId, `${txId} was approved and also declined with a reversal`);
    for (const ledger of ledgers) {
      if (ledger.holdOf(txId)?.state === 'held') flag('unexpected', txId, `${txId} was declined to its app but its hold is still active`);
    }
  }
  for (const posting of postings.values()) {
    // A posting whose proxy still waits for SD's answer is pending: the proxy completes or reverses it [INV-7].
    if (isReversed(posting) || approved.has(posting.txId) || input.held?.has(posting.txId)) continue;
    const why = reversed.has(posting.txId) ? 'was declined to its app and its reversal did not take' : 'was approved by nobody';
    flag('unexpected', posting.txId, `${posting.txId} is posted (${posting.via}, ${posting.amountMinor ?? 'in an aggregate'} to ${posting.payee}) but ${why}`);
  }

  // Aggregates: sums against the approved amounts, what each moved against its fresh members, and no overlap.
  // A view on `approved`, not a copy: at the end of a city's day a copy was one more map of every payment.
  const amounts: Pick<ReadonlyMap<string, Minor>, 'get'> = input.aggregatesSource ?? { get: (txId) => approved.get(txId)?.amountMinor };
  const members = new Map<string, Set<string>>();
  const membersOf = (aggregate: Aggregate) => {
    let set = members.get(aggregate.id);
    if (!set) members.set(aggregate.id, (set = new Set(aggregate.txIds)));
    return set;
  };
  for (const aggregate of aggregates.values()) {
    let sumMinor = 0;
    let movedMinor = 0;
    let known = true;
    for (const txId of aggregate.txIds) {
      const amountMinor = amounts.get(txId);
      // A member nobody approved is reported once, as its posting above.
      if (amountMinor === undefined) known = false;
      else sumMinor += amountMinor;
      const posting = postings.get(txId);
      if (posting?.aggregateId === aggregate.id) movedMinor += amountMinor ?? 0;
      else if (posting?.aggregateId !== undefined) {
        const inner = aggregates.get(posting.aggregateId);
        const inside = inner !== undefined && inner.txIds.every((t) => membersOf(aggregate).has(t));
        if (!inside) flag('duplicated', txId, `${txId} is in two accepted aggregates, ${posting.aggregateId} and ${aggregate.id}, neither inside the other`);
      }
    }
    if (!known) continue;
    if (aggregate.sumMinor !== sumMinor) flag('amountMismatch', aggregate.id, `aggregate ${aggregate.id} sums ${aggregate.sumMinor}, the approved transactions it covers ${sumMinor}`);
    else if (aggregate.postedMinor > movedMinor) flag('duplicated', aggregate.id, `aggregate ${aggregate.id} moved ${aggregate.postedMinor}, ${aggregate.postedMinor - movedMinor} more than its transactions not already on the ledger (${movedMinor})`);
    else if (aggregate.postedMinor < movedMinor) flag('amountMismatch', aggregate.id, `aggregate ${aggregate.id} moved ${aggregate.postedMinor}, less than its transactions not already on the ledger (${movedMinor})`);
  }

  // Per payee: what it holds on the ledgers is exactly the approved payments credited to it (on the ledger, not
  // reversed) plus what it got through other points of issue. A ledger that moved money to the wrong account, or
  // the wrong amount, while recording the right posting, shows here and nowhere else. Only when every ledger can
  // list its external transfers.
  const credits = ledgers.map((ledger) => ledger.payeeCredits?.());
  if (credits.every((c) => c !== undefined)) {
    const heldByPayee = new Map<string, number>();
    const expectedByPayee = new Map<string, number>();
    const add = (map: Map<string, number>, payee: string, amountMinor: number) => map.set(payee, (map.get(payee) ?? 0) + amountMinor);
    for (const c of credits) {
      for (const [payee, balanceMinor] of c!.balanceByPayee) add(heldByPayee, payee, balanceMinor);
      for (const [payee, amountMinor] of c!.externalByPayee) add(expectedByPayee, payee, amountMinor);
    }
    for (const payment of approved.values()) {
      const posting = postings.get(payment.txId);
      if (posting && !isReversed(posting)) add(expectedByPayee, payment.payee, payment.amountMinor);
    }
    // A remote payment SD posted while its proxy still waits for the answer is pending, credited as posted.
    for (const p of postings.values()) if (!isReversed(p) && !approved.has(p.txId) && input.held?.has(p.txId)) add(expectedByPayee, p.payee, p.amountMinor ?? 0);
    for (const payee of new Set([...heldByPayee.keys(), ...expectedByPayee.keys()])) {
      const heldMinor = heldByPayee.get(payee) ?? 0;
      const expectedMinor = expectedByPayee.get(payee) ?? 0;
      if (heldMinor !== expectedMinor) {
        flag('amountMismatch', `payee:${payee}`, `payee ${payee} holds ${heldMinor} on the ledger; the approved payments credited to it and its external credits sum to ${expectedMinor}`);
      }
    }
  }
  return { counts, violations, approvedAmountMinor, postedAmountMinor, heldInJournals };
}

// ---------------------------------------------------------------------------------------------- INV-5
export interface ProofsInput {
  /** Every proof held by an app or a POS (the same proof held twice is checked once). */
  proofs: Iterable<Proof>;
  scheme: SignatureScheme;
  /** The registered public key of a proxy. */
  publicKeyOf(proxyId: string): string | undefined;
  /** SD's public key: a remote payment's proof must carry SD's signed receipt of exactly that payment. */
  serverPublicKey: string;
  ledger: Pick<Ledger, 'postingOf'> | readonly Pick<Ledger, 'postingOf'>[];
  /**
   * Transactions still held at the end in their payer's journal or a POS unit's receipts: one with no credit yet
   * is pending (its payer has not remitted it; INV-7 flags that), not a harmed beneficiary.
   */
  held?: ReadonlySet<string>;
}

/**
 * [INV-5 beneficiary never harmed] after the drain, each proof verifies against its proxy's key and matches a
 * credit on the ledger: posted, not reversed, to its payee from its means, for its amount (or inside an aggregate
 * to that payee, whose sum INV-4 checks).
 */
export function checkProofs(input: ProofsInput): Violation[] {
  const violations: Violation[] = [];
  const ledgers = asList(input.ledger);
  // The signature last checked for each txId (a POS receipt comes twice); no new string per proof, unlike a joined key.
  const seen = new Map<string, string>();
  for (const proof of input.proofs) {
    if (seen.get(proof.txId) === proof.sig) continue;
    seen.set(proof.txId, proof.sig);
    const flag = (message: string) => violations.push({ invariant: 'INV-5', subject: proof.txId, message: `proof ${proof.txId} (${proof.amountMinor} to ${proof.payee}, by ${proof.proxyId}): ${message}` });
    const publicKey = input.publicKeyOf(proof.proxyId);
    if (publicKey === undefined) flag(`${proof.proxyId} is not registered`);
    else if (!verifyClaim(input.scheme, publicKey, proof, proof.sig)) flag('the signature does not verify');
    // A remote payment's proof is the holder's evidence against SD too: SD's receipt must name this txId, means,
    // payee and amount under SD's signature; a local proof carries no receipt.
    if (proof.path === 'remote' && !verifyServerReceipt(input.scheme, input.serverPublicKey, proof)) flag(`SD's receipt (${proof.serverOutcome ?? 'none'}) does not verify`);
    else if (proof.path !== 'remote' && proof.serverSig !== undefined) flag(`a ${proof.path} proof carries a receipt of SD's`);
    let posting: Posting | undefined;
    for (const ledger of ledgers) if ((posting = ledger.postingOf(proof.txId))) break;
    // [INV-5] No credit yet for a payment its payer still holds: pending, not a harm (INV-7 flags the journal).
    if (!posting && input.held?.has(proof.txId)) continue;
    if (!posting) flag('no credit on the ledger');
    else if (isReversed(posting)) flag(`its credit was reversed by ${posting.reversedBy}`);
    else if (posting.payee !== proof.payee || posting.meansId !== proof.meansId) flag(`credited from ${posting.meansId} to ${posting.payee} instead`);
    else if (posting.amountMinor !== null && posting.amountMinor !== proof.amountMinor) flag(`credited ${posting.amountMinor} instead`);
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------- INV-6
/** Changes whenever money moves, a hold changes, or a transaction is posted, reversed, aggregated or voided. */
export type LedgerFingerprint = string;

/**
 * A cheap fingerprint: the sum of account versions plus the counts of each record — postings, reversals,
 * aggregates, voids, and, where the store can count them, transfers, holds, the counters SD recorded and the
 * results it stored. A forged or altered message must change none of them: a stored answer under an honest
 * request id, or a counter taken from its rightful transaction, is a change too [INV-6]. O(accounts + postings).
 */
export function ledgerFingerprint(ledger: Pick<Ledger, 'accounts' | 'postings' | 'aggregates' | 'voids'> & { store?: Pick<LedgerStore, 'tableSizes'> }): LedgerFingerprint {
  let versions = 0;
  const accounts = ledger.accounts();
  for (const account of accounts) versions += account.version;
  const postings = ledger.postings();
  let reversed = 0;
  for (const posting of postings) if (isReversed(posting)) reversed++;
  const sizes = ledger.store?.tableSizes?.();
  const stored = sizes ? `:t${sizes.transfers}:h${sizes.holds}:c${sizes.counters}:s${sizes.results}` : '';
  return `v${versions}:a${accounts.length}:p${postings.length}:r${reversed}:g${ledger.aggregates().length}:x${ledger.voids().length}${stored}`;
}

/** The codes with which SD refuses a forged, altered, replayed or malformed message. */
export const SIGNATURE_REFUSALS: ReadonlySet<string> = new Set(['malformed', 'badRequest', 'badSignature', 'badProofSignature', 'unknownSender', 'senderMismatch', 'replayedCounter', 'idConflict']);

/**
 * [INV-6 signatures] an adversarial message was refused with one of SIGNATURE_REFUSALS and the ledger did not
 * change (its stored results and counters included; `ownRefusalStored` lets a request signed by its own sender
 * leave its stored refusal). An exact replay of a request SD has answered gets that stored answer, which may be ok: pass
 * `exactReplay` and only "nothing changed" is checked.
 */
export function checkRefusedUnchanged(
  before: LedgerFingerprint,
  after: LedgerFingerprint,
  result: ServerResult,
  options: { exactReplay?: boolean; ownRefusalStored?: boolean } = {},
): Violation[] {
  const violations: Violation[] = [];
  const subject = `${result.to}/${result.reqId}`;
  if (!options.exactReplay && (result.ok || !SIGNATURE_REFUSALS.has(result.code))) {
    violations.push({ invariant: 'INV-6', subject, message: `${subject} (${result.requestKind}) was answered ${result.ok ? 'ok' : 'refused'} with code ${result.code}, not refused as forged, altered or replayed` });
  }
  // A request its sender really signed (a replayed counter, say) is refused and that refusal stored under its own id,
  // so a repeat gets the same answer: only then may the count of stored results move, and nothing else.
  const comparable = (print: LedgerFingerprint) => (options.ownRefusalStored && !result.ok ? print.replace(/:s\d+$/, '') : print);
  if (comparable(before) !== comparable(after)) violations.push({ invariant: 'INV-6', subject, message: `${subject} (${result.requestKind}) changed the ledger: ${before} → ${after}` });
  return violations;
}

// ---------------------------------------------------------------------------------------------- INV-7
/** [INV-7 liveness] after the drain, nothing of this proxy waits to reach SD. */
export function checkDrained(proxyId: string, journal: Pick<Journal, 'pending' | 'outbox'>): Violation[] {
  const { pending, outbox } = journal;
  if (pending.length === 0 && outbox.length === 0) return [];
  const waiting = outbox.slice(0, 5).map((item) => `${item.request.kind} ${item.reqId} (${item.attempts} attempts)`);
  const more = outbox.length > waiting.length ? ', …' : '';
  return [{ invariant: 'INV-7', subject: proxyId, message: `${proxyId}: ${pending.length} transactions not remitted, ${outbox.length} requests not acknowledged${waiting.length ? `: ${waiting.join(', ')}${more}` : ''}` }];
}
