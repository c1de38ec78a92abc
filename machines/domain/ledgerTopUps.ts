// Goal: money entering the payment server's (SD's) ledger from outside — the top-ups of an auto-reload agreement
// (a bank transfer, a cash-in): when a posting leaves a means with less than its agreement's threshold available
// (a postpaid means: available credit), SD credits the means with an amount the agreement draws, in the same
// transaction as the posting — and the one check that every such credit is a recorded top-up, due to a posting.
// Method: a top-up is one transfer from the `outside` account (the world beyond SD: it goes negative by what came
// in, as the float does by what was opened) to the means, with id `top:{trigger}`, where the trigger is the id of
// what debited the means (`tx:{txId}` a payment, `agg:{id}` an aggregate, `hold:{txId}` an authorisation,
// `ext:{transferId}` spending elsewhere, `lv:{from}/{reqId}` a purse's funding). One top-up per trigger at most:
// a repeat of the trigger finds its transfer and moves nothing [INV-4 nothing twice], and its amount is a function
// of its id (the rule's `amountMinor`), so a replay on another process draws the same. The rules come from the
// caller (sim/core/topUps.ts builds them from the scenario); the domain only applies them.

import type { Minor } from './money.ts';
import type { LedgerStore, Transfer } from './ledgerStore.ts';
import { applyTransfer, available, meansAccountOf, OUTSIDE_ACCOUNT } from './ledgerAccounts.ts';

export { OUTSIDE_ACCOUNT };
export const TOP_UP_PREFIX = 'top:';

/** A means' auto-reload agreement, as the ledger applies it. */
export interface TopUpRule {
  /** Top up when a posting leaves less than this available. */
  belowMinor: Minor;
  /** The amount of the top-up with this id: the same id always gives the same amount. */
  amountMinor(topUpId: string): Minor;
}

/** The agreement of each means; undefined for a means without one. */
export type TopUpRules = (meansId: string) => TopUpRule | undefined;

export const topUpIdOf = (trigger: string): string => `${TOP_UP_PREFIX}${trigger}`;

/**
 * Inside the caller's store transaction: tops the means up when its rule says so after the posting `trigger`.
 * Returns the top-up's transfer, or undefined when none was due.
 */
export function topUpIfLow(store: LedgerStore, rules: TopUpRules, meansId: string, trigger: string): Transfer | undefined {
  const rule = rules(meansId);
  if (!rule) return undefined;
  const account = meansAccountOf(store, meansId);
  if (available(account) >= rule.belowMinor) return undefined;
  const id = topUpIdOf(trigger);
  return applyTransfer(store, id, OUTSIDE_ACCOUNT, account.id, rule.amountMinor(id), `top-up after ${trigger}`);
}

/** What a ledger needs for the top-up check: its accounts and records, read only. */
export interface TopUpView {
  outsideBalanceMinor: number;
  topUps: Iterable<Transfer>;
  store: Pick<LedgerStore, 'getPosting' | 'getHold' | 'getAggregate' | 'getTransfer'>;
}

export interface TopUpFigures {
  count: number;
  amountMinor: number;
}

/**
 * [INV-3 conservation, money from outside] the `outside` account is debited by top-ups and nothing else: minus its
 * balance is the sum of the recorded top-ups; and every top-up credits a means from `outside` after a posting of
 * that very means that is on the ledger (its trigger). A credit made twice for one top-up, or made without being
 * recorded, breaks the first; a top-up nobody's posting asked for breaks the second. Returns the problems found.
 */
export function topUpProblems(view: TopUpView, hasRule: (meansId: string) => boolean): { problems: string[]; figures: TopUpFigures } {
  const problems: string[] = [];
  let count = 0;
  let amountMinor = 0;
  for (const t of view.topUps) {
    count++;
    amountMinor += t.amountMinor;
    const meansId = t.creditAccount.startsWith('means:') ? t.creditAccount.slice('means:'.length) : undefined;
    if (t.debitAccount !== OUTSIDE_ACCOUNT || meansId === undefined) {
      problems.push(`top-up ${t.id} moves ${t.amountMinor} from ${t.debitAccount} to ${t.creditAccount}, not from ${OUTSIDE_ACCOUNT} to a means`);
      continue;
    }
    if (!hasRule(meansId)) problems.push(`top-up ${t.id} credits ${meansId}, which has no top-up agreement`);
    const trigger = t.id.slice(TOP_UP_PREFIX.length);
    const triggerMeans = meansOfTrigger(view.store, trigger);
    if (triggerMeans !== meansId) problems.push(`top-up ${t.id} of ${t.amountMinor} to ${meansId} answers no posting of that means on the ledger (${triggerMeans === undefined ? 'none found' : `the trigger is of ${triggerMeans}`})`);
  }
  if (-view.outsideBalanceMinor !== amountMinor) {
    problems.push(`${-view.outsideBalanceMinor} came in from outside, but the ${count} recorded top-ups sum to ${amountMinor}`);
  }
  return { problems, figures: { count, amountMinor } };
}

/** The means a trigger debited, when the trigger is on the ledger. */
function meansOfTrigger(store: TopUpView['store'], trigger: string): string | undefined {
  const cut = trigger.indexOf(':');
  const kind = trigger.slice(0, cut);
  const id = trigger.slice(cut + 1);
  if (kind === 'tx') return store.getPosting(id)?.meansId;
  if (kind === 'hold') return store.getHold(id)?.meansId;
  if (kind === 'agg') return store.getAggregate(id)?.meansId;
  if (kind === 'ext' || kind === 'lv') {
    const debit = store.getTransfer(trigger)?.debitAccount;
    return debit?.startsWith('means:') ? debit.slice('means:'.length) : undefined;
  }
  return undefined;
}
