// Goal: the proxy's local image of each payment means MPk, and the rules that decide whether a payment may
// be approved locally from it.
// Method: a means is plain data (so it persists and replays); `localApproval` is a pure function that
// returns either the updated means or a reason for refusal. Every local source the patent names is here:
// the local balance SL with local spending MTDL (MTDL < SL), the electronic wallet PMVL with balance S, the
// fixed amount FF (S0 for a period P, unusable after it), the recurring amount FLR (reset to S0 at each
// period), and the expenditure ceiling PD with period spending MTD.

import { DomainError, type Minor } from './money.ts';
import { periodIndexAt } from './period.ts';

export type MeansKind = 'prepaid' | 'postpaid' | 'virtualWallet' | 'electronicWallet';

export type PurseKind = 'wallet' | 'fixedAmount' | 'recurring';

/** What makes a means a purse of local value on the SIM, and how it is refilled (the rules: localValue.ts). */
export interface LocalValue {
  kind: PurseKind;
  /** The means SD debits for this purse's value. */
  fundingMeansId: string;
  /** The reload amount (wallet) or S0 (fixed and recurring amounts). */
  amountMinor: Minor;
  /** P, for a fixed or recurring amount. */
  periodMs: number;
  /** A wallet is reloaded when its balance is below this (and the terminal is in coverage). */
  reloadBelowMinor: Minor;
  /** The reload, purchase or subscription asked of SD and not answered yet; its value comes with SD's ok. */
  asked?: { reqId: string; atMs: number; amountMinor: Minor };
}

export interface FixedAmount {
  /** S0: the amount granted for the period. */
  initialMinor: Minor;
  remainingMinor: Minor;
  validFromMs: number;
  /** P: after validFromMs + periodMs the fixed amount is unusable. */
  periodMs: number;
  /** A purse's fixed amount past its period: its leftover has been queued to SD as expired value (localValue.ts). */
  leftoverAccounted?: boolean;
}

export interface RecurringAmount {
  /** S0: the amount restored at each period boundary. */
  amountMinor: Minor;
  remainingMinor: Minor;
  originMs: number;
  periodMs: number;
  /** The period `remainingMinor` belongs to; a later period means it is reset to S0 first. */
  periodIndex: number;
}

export interface Ceiling {
  /** PD: the most that may be spent in one period. */
  ceilingMinor: Minor;
  originMs: number;
  periodMs: number;
  periodIndex: number;
  /** MTD: spent in `periodIndex`. */
  periodSpentMinor: Minor;
  /**
   * What ends a period, when not time: each remittance SD acknowledges for the means, or each connection to SD
   * (the patent: "the current period may ... be the time interval between two remittance messages" for an internal
   * payment means, "between two payments with connection to the remote system" for a telepayment means). Absent:
   * periods of `periodMs` from `originMs`.
   */
  periodBy?: 'remittance' | 'connection';
}

/** The proxy's state for one payment means. */
export interface MeansState {
  meansId: string;
  kind: MeansKind;
  /** Dedicated: this terminal is the only point of issue; shared: others spend from it too. */
  dedicated: boolean;
  /**
   * N, the number of proxies that share this means (a family wallet spent offline by several phones); absent for
   * one. Each proxy's SL is then an allotment of SD's figure, 1/N of it (see `allotmentMinor`).
   */
  pointsOfIssue?: number;
  /** SL: local balance, the authoritative figure from SD at the last connection. */
  localBalanceMinor: Minor;
  /** MTDL: spent locally since the last connection. */
  localSpentMinor: Minor;
  /** Ledger version of the SL figure, so that a stale figure never overwrites a fresh one. */
  balanceVersion: number;
  /** PMVL: money held on the SIM itself (electronic wallet). */
  wallet?: { balanceMinor: Minor };
  fixedAmount?: FixedAmount;
  recurring?: RecurringAmount;
  ceiling?: Ceiling;
  /** Set on a purse of local value on the SIM (PMVL, FF, FLR), funded from another means (localValue.ts). */
  localValue?: LocalValue;
}

export type LocalRefusal =
  | 'localBalanceExceeded'
  | 'walletInsufficient'
  | 'fixedAmountExpired'
  | 'fixedAmountNotYetValid'
  | 'fixedAmountInsufficient'
  | 'recurringInsufficient'
  | 'ceilingExceeded'
  | 'purseEmpty';

export type LocalApproval = { ok: true; means: MeansState } | { ok: false; reason: LocalRefusal };

/** Brings recurring amounts and ceilings into the period of `nowMs` (reset exactly at the boundary). */
export function rollPeriods(means: MeansState, nowMs: number): MeansState {
  let next = means;
  const recurring = means.recurring;
  // A purse's recurring amount is reset by localValue.reviewPurse, which also queues the period's renewal to SD.
  if (recurring && !means.localValue) {
    const index = periodIndexAt(nowMs, recurring.originMs, recurring.periodMs);
    // [INV-2 recurring reset] a later period restores S0, whatever was left before.
    if (index > recurring.periodIndex) {
      next = { ...next, recurring: { ...recurring, periodIndex: index, remainingMinor: recurring.amountMinor } };
    }
  }
  const ceiling = means.ceiling;
  if (ceiling && ceiling.periodBy === undefined) {
    const index = periodIndexAt(nowMs, ceiling.originMs, ceiling.periodMs);
    if (index > ceiling.periodIndex) {
      next = { ...next, ceiling: { ...ceiling, periodIndex: index, periodSpentMinor: 0 } };
    }
  }
  return next;
}

/**
 * Decides whether `amountMinor` may be paid locally from `means` at `nowMs`, and if so returns the means
 * after the payment. All applicable limits must pass: the ceiling, the profile's own balance, and SL/MTDL.
 */
export function localApproval(means: MeansState, amountMinor: Minor, nowMs: number): LocalApproval {
  const m = rollPeriods(means, nowMs);
  // Every limit is checked first, in this order; then one new means carries all the changes (one object per
  // approval instead of one copy of the means per limit).
  if (m.ceiling) {
    // [INV-2 MTD<=PD]
    if (m.ceiling.periodSpentMinor + amountMinor > m.ceiling.ceilingMinor) return { ok: false, reason: 'ceilingExceeded' };
  }
  // [INV-2 balances never negative]
  if (m.wallet && m.wallet.balanceMinor < amountMinor) return { ok: false, reason: 'walletInsufficient' };
  const f = m.fixedAmount;
  if (f) {
    // [INV-2 fixed amount unusable after its period]
    if (nowMs < f.validFromMs) return { ok: false, reason: 'fixedAmountNotYetValid' };
    if (nowMs >= f.validFromMs + f.periodMs) return { ok: false, reason: 'fixedAmountExpired' };
    if (f.remainingMinor < amountMinor) return { ok: false, reason: 'fixedAmountInsufficient' };
  }
  if (m.recurring && m.recurring.remainingMinor < amountMinor) return { ok: false, reason: 'recurringInsufficient' };
  const purse = m.localValue;
  if (purse) {
    // A purse pays only from value SD has granted it: a fixed or recurring amount not bought or subscribed yet holds none.
    if ((purse.kind === 'fixedAmount' && !f) || (purse.kind === 'recurring' && !m.recurring)) return { ok: false, reason: 'purseEmpty' };
  } else if (!(m.localSpentMinor + amountMinor < m.localBalanceMinor)) {
    // [INV-1 MTDL<SL] strictly below: MTDL + amount = SL is refused. (A purse's value is on the SIM: SL does not apply.)
    return { ok: false, reason: 'localBalanceExceeded' };
  }

  const next: MeansState = { ...m, localSpentMinor: purse ? m.localSpentMinor : m.localSpentMinor + amountMinor };
  if (m.ceiling) next.ceiling = { ...m.ceiling, periodSpentMinor: m.ceiling.periodSpentMinor + amountMinor };
  if (m.wallet) next.wallet = { balanceMinor: m.wallet.balanceMinor - amountMinor };
  if (f) next.fixedAmount = { ...f, remainingMinor: f.remainingMinor - amountMinor };
  if (m.recurring) next.recurring = { ...m.recurring, remainingMinor: m.recurring.remainingMinor - amountMinor };
  return { ok: true, means: next };
}

/** Ends the current MTD period of a ceiling whose periods follow remittances or connections (`periodBy`). */
export function endCeilingPeriod(means: MeansState, by: 'remittance' | 'connection'): MeansState {
  const ceiling = means.ceiling;
  if (!ceiling || ceiling.periodBy !== by) return means;
  return { ...means, ceiling: { ...ceiling, periodIndex: ceiling.periodIndex + 1, periodSpentMinor: 0 } };
}

/**
 * Records a remote payment in the period spending, so the ceiling counts everything spent through this proxy.
 * (The server enforces the balance of remote payments; the ceiling is the proxy's own rule.)
 */
export function recordRemoteSpend(means: MeansState, amountMinor: Minor, nowMs: number): MeansState {
  const m = rollPeriods(means, nowMs);
  if (!m.ceiling) return m;
  return { ...m, ceiling: { ...m.ceiling, periodSpentMinor: m.ceiling.periodSpentMinor + amountMinor } };
}

/** Would a remote payment of `amountMinor` stay under the ceiling? */
export function isWithinCeiling(means: MeansState, amountMinor: Minor, nowMs: number): boolean {
  const m = rollPeriods(means, nowMs);
  return !m.ceiling || m.ceiling.periodSpentMinor + amountMinor <= m.ceiling.ceilingMinor;
}

/**
 * Applies SD's authoritative figure at a connection: SL := what SD says is available, less what this proxy
 * spent locally and has not yet had acknowledged (SD cannot know it yet), and MTDL := 0. A figure older than
 * the one already applied is ignored, because responses can arrive out of order.
 */
export function applySync(means: MeansState, serverAvailableMinor: Minor, version: number, unremittedMinor: Minor): MeansState {
  if (version < means.balanceVersion) return means;
  // A purse's value is on the SIM: SD's figure for its account follows the SIM, never the other way round.
  if (means.localValue) return means;
  const localBalanceMinor = Math.max(0, allotmentMinor(means, serverAvailableMinor) - unremittedMinor);
  const next: MeansState = { ...means, localBalanceMinor, localSpentMinor: 0, balanceVersion: version };
  // An electronic wallet holds money on the SIM: its balance follows SL at each connection.
  if (means.wallet) next.wallet = { balanceMinor: localBalanceMinor };
  return next;
}

/**
 * The part of SD's available figure one proxy may spend without asking SD. A means shared by N proxies gives each
 * 1/N of it (rounded down): a family's phones, all offline at once, can then together spend no more than SD saw
 * available when each last synced, as an issuer gives each card on a shared account its own offline limit rather
 * than letting every card count the whole balance as its own. The patent leaves the split open ("SL takes a new
 * value, which takes account of the payments made with MPk but without TM"); an equal split needs no
 * coordination between the phones, which offline is the point. What the allotments cannot bound (a figure that
 * went stale while another phone or a web shop spent) is a shortfall SD books to the loss account at remittance.
 */
export function allotmentMinor(means: Pick<MeansState, 'pointsOfIssue'>, serverAvailableMinor: Minor): Minor {
  const share = means.pointsOfIssue ?? 1;
  return share > 1 ? Math.floor(serverAvailableMinor / share) : serverAvailableMinor;
}

/** [INV-1 MTDL<SL] holds when nothing was spent locally, or strictly less than SL was. */
export function holdsLocalBalance(means: MeansState): boolean {
  return means.localSpentMinor === 0 || means.localSpentMinor < means.localBalanceMinor;
}

/** Builds a means with checked numbers; used by scenarios and tests. */
export function createMeans(init: Omit<MeansState, 'localSpentMinor' | 'balanceVersion'> & Partial<Pick<MeansState, 'localSpentMinor' | 'balanceVersion'>>): MeansState {
  if (!init.meansId) throw new DomainError('badMeans', 'meansId is required', init.meansId);
  const means: MeansState = { localSpentMinor: 0, balanceVersion: 0, ...init };
  for (const [name, value] of Object.entries({ localBalanceMinor: means.localBalanceMinor, localSpentMinor: means.localSpentMinor })) {
    if (!Number.isSafeInteger(value) || value < 0) throw new DomainError('badMeans', `${name} must be a non-negative integer`, value);
  }
  return means;
}
