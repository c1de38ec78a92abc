// Goal: local value on the payment server's (SD's) ledger — a purse on a SIM (domain/localValue.ts) has an account
// of its own, funded from its funding means when the value is reloaded, bought or subscribed, and emptied of
// expired value into the operator's `expired` account — so that SD's books always say what each SIM holds.
// Method: plain functions over a LedgerStore inside one store transaction, by transfers with ids derived from the
// request (`lv:{from}/{reqId}`, `/expired`, `/loss`), so a repeat finds its own transfers [INV-3 conservation].
// A purse's account is made on its first funding. An asked reload the funding means cannot pay is refused with
// `insufficientFunds` (the SIM gets nothing); a granted one (the SIM has reset a recurring amount offline) is
// honoured, what the funding means lacks taken from the loss account, as a payment approved offline is.

import { assertMinor, type Minor } from './money.ts';
import type { LedgerStore } from './ledgerStore.ts';
import { applyTransfer, assertId, available, LOSS_ACCOUNT, meansAccount, meansAccountOf, newAccount, payeeAccount, refuse } from './ledgerAccounts.ts';
import { EXPIRED_VALUE_PAYEE, purseIdOf } from './localValue.ts';

export interface FundPurseInput {
  /** `lv:{from}/{reqId}`: the base of every transfer this funding makes. */
  transferId: string;
  /** The proxy whose SIM holds the purse; the purse's id must name it. */
  proxyId: string;
  purseMeansId: string;
  fundingMeansId: string;
  amountMinor: Minor;
  leftoverMinor: Minor;
  granted: boolean;
}

export interface FundPurseOutcome {
  /** What the funding means lacked for a granted funding, taken from the loss account. */
  shortfallMinor: Minor;
}

/** Moves value into a purse from its funding means, and its expired leftover out to the operator. */
export function fundPurse(store: LedgerStore, input: FundPurseInput): FundPurseOutcome {
  const { transferId, proxyId, purseMeansId, fundingMeansId, amountMinor, leftoverMinor, granted } = input;
  assertId(transferId, 'transferId');
  assertMinor(amountMinor, 'amountMinor');
  assertMinor(leftoverMinor, 'leftoverMinor');
  // A proxy funds only its own purse, and only from the means that purse names.
  if (purseMeansId !== purseIdOf(fundingMeansId, proxyId)) refuse('badPurse', `${purseMeansId} is not the purse of ${proxyId} funded by ${fundingMeansId}`, purseMeansId);
  return store.transaction((): FundPurseOutcome => {
    const funding = meansAccountOf(store, fundingMeansId);
    const purseId = meansAccount(purseMeansId);
    if (!store.getAccount(purseId)) store.putAccount(newAccount(purseId, 'means', 0));
    if (leftoverMinor > 0) applyTransfer(store, `${transferId}/expired`, purseId, payeeAccount(EXPIRED_VALUE_PAYEE), leftoverMinor, `expired value of ${purseMeansId}`);
    if (amountMinor === 0) return { shortfallMinor: 0 };
    const availableMinor = Math.max(0, available(funding));
    if (!granted && availableMinor < amountMinor) {
      refuse('insufficientFunds', `means ${fundingMeansId} has ${availableMinor} available, ${amountMinor} asked for ${purseMeansId}`, input);
    }
    const coveredMinor = Math.min(amountMinor, availableMinor);
    const shortfallMinor = amountMinor - coveredMinor;
    if (coveredMinor > 0) applyTransfer(store, transferId, funding.id, purseId, coveredMinor, `value for ${purseMeansId}`);
    if (shortfallMinor > 0) applyTransfer(store, `${transferId}/loss`, LOSS_ACCOUNT, purseId, shortfallMinor, `unpaid value for ${purseMeansId}`);
    return { shortfallMinor };
  });
}
