// Goal: local value held on the SIM — the electronic wallet PMVL, the fixed amount FF and the recurring amount FLR
// of the patent as a purse of their own, for internal payments only, whose value comes from a funding means that
// SD debits when the value is reloaded, bought or subscribed, and whose leftovers at expiry are accounted.
// Method: a purse is a payment means MPk of the proxy (the patent: "the reloading of the payment means MPk may use
// another payment means MPj"), named `{funding}/v:{proxyId}` so that it lives on its funding means' shard and names
// the one SIM that holds it. Its value moves only through `reload` requests to SD, queued in the journal's outbox
// (so they are resent until SD answers, like a capture):
//   - asked (`granted: false`): a wallet reload below its threshold, a fixed amount bought when none is valid, a
//     recurring amount subscribed — only in coverage; the SIM gets the value when SD answers ok, SD having debited
//     the funding means at that moment (refused with insufficientFunds when it cannot: the SIM gets nothing);
//   - granted (`granted: true`): what the SIM did on its own and SD must follow — a recurring amount is reset to S0
//     exactly at each period boundary, offline too (the patent: "reinitialised ... regardless of the previous
//     value"), so its period is paid by a renewal SD applies when it arrives (what the funding means lacks is booked
//     to the loss account, as a store-and-forward terminal's transaction approved offline is honoured); and the
//     leftover of a fixed amount after its period, or of a recurring period, moves to the operator's `expired`
//     account (breakage), so no value stays on SD's books for the SIM once it is unusable.
// `reviewPurses` runs at each decision and connection; `applyReloadResult` takes SD's answer. Pure functions over
// the proxy's persisted means and journal.

import type { Minor } from './money.ts';
import { periodIndexAt } from './period.ts';
import type { LocalValue, MeansState } from './means.ts';
import type { Journal } from './remittance.ts';
import type { ReloadRequest, ServerResult } from '../messages.ts';
import type { Unsigned } from './requests.ts';

// The purse's types live in means.ts, beside the means they belong to (so neither module imports the other).
export type { LocalValue, PurseKind } from './means.ts';

/** The payee of the leftovers of expired local value: the operator's breakage account. */
export const EXPIRED_VALUE_PAYEE = 'operator:expired';

/** The purse of `proxyId` funded by `fundingMeansId`; the part before '/' names the shard (link.ts `shardOf`). */
export function purseIdOf(fundingMeansId: string, proxyId: string): string {
  return `${fundingMeansId}/v:${proxyId}`;
}

export function isPurseId(meansId: string): boolean {
  return meansId.includes('/v:');
}

/** A new purse, empty until its first reload, purchase or subscription. */
export function newPurse(proxyId: string, funding: Pick<MeansState, 'meansId'>, profile: Omit<LocalValue, 'fundingMeansId' | 'asked'>): MeansState {
  return {
    meansId: purseIdOf(funding.meansId, proxyId),
    kind: 'electronicWallet',
    dedicated: true,
    // The value is on the SIM, not at SD: SL and MTDL do not apply to a purse (see `localApproval`).
    localBalanceMinor: 0,
    localSpentMinor: 0,
    balanceVersion: 0,
    ...(profile.kind === 'wallet' ? { wallet: { balanceMinor: 0 } } : {}),
    localValue: { ...profile, fundingMeansId: funding.meansId },
  };
}

/** The value a purse holds and may still spend or account: what SD's books for it must come to once all is remitted. */
export function purseValueMinor(means: MeansState): Minor {
  if (!means.localValue) return 0;
  let valueMinor = means.wallet?.balanceMinor ?? 0;
  if (means.fixedAmount && !means.fixedAmount.leftoverAccounted) valueMinor += means.fixedAmount.remainingMinor;
  if (means.recurring) valueMinor += means.recurring.remainingMinor;
  return valueMinor;
}

interface Review {
  means: MeansState;
  journal: Journal;
  changed: boolean;
  /** What the queued reloads will take from the funding means, reserved against its SL (see `reviewPurses`). */
  fundingMinor: Minor;
}

type Sign = (unsigned: Unsigned<ReloadRequest>) => ReloadRequest;

function queueReload(r: Review, proxyId: string, sign: Sign, nowMs: number, fields: Pick<ReloadRequest, 'amountMinor' | 'leftoverMinor' | 'granted'>): string {
  const reqId = `${proxyId}:l${r.journal.nextSeq}`;
  const lv = r.means.localValue!;
  const request = sign({ kind: 'reload', reqId, from: proxyId, purseMeansId: r.means.meansId, fundingMeansId: lv.fundingMeansId, ...fields });
  const outbox = r.journal.outbox.slice();
  // The item goes to the purse's shard, which is its funding means' shard.
  outbox.push({ reqId, request, meansId: r.means.meansId, txs: [], notBeforeMs: nowMs, attempts: 0, nextAttemptAtMs: nowMs, createdAtMs: nowMs });
  r.journal = { ...r.journal, outbox, nextSeq: r.journal.nextSeq + 1 };
  r.changed = true;
  r.fundingMinor += fields.amountMinor;
  return reqId;
}

/**
 * Brings one purse up to `nowMs`: a recurring amount into its current period (reset to S0, its renewal and the
 * leftover queued for SD) [INV-2 recurring reset], a fixed amount past its period accounted (its leftover queued);
 * then, online, asks SD for value when the purse needs it and nothing is asked yet.
 */
export function reviewPurse(
  means: MeansState,
  journal: Journal,
  env: { proxyId: string; sign: Sign; nowMs: number; online: boolean; fundingHeadroomMinor: Minor },
): Review {
  const r: Review = { means, journal, changed: false, fundingMinor: 0 };
  const lv = means.localValue;
  if (!lv) return r;
  const { nowMs } = env;
  const recurring = means.recurring;
  if (recurring) {
    const index = periodIndexAt(nowMs, recurring.originMs, recurring.periodMs);
    if (index > recurring.periodIndex) {
      const periods = index - recurring.periodIndex;
      // The period that ended leaves what was not spent; each whole period skipped since leaves all of S0.
      const leftoverMinor = recurring.remainingMinor + (periods - 1) * recurring.amountMinor;
      r.means = { ...r.means, recurring: { ...recurring, periodIndex: index, remainingMinor: recurring.amountMinor } };
      queueReload(r, env.proxyId, env.sign, nowMs, { amountMinor: periods * recurring.amountMinor, leftoverMinor, granted: true });
    }
  }
  const fixed = means.fixedAmount;
  if (fixed && !fixed.leftoverAccounted && nowMs >= fixed.validFromMs + fixed.periodMs) {
    // [INV-2 fixed amount unusable after its period] what is left is the operator's, accounted at SD.
    r.means = { ...r.means, fixedAmount: { ...fixed, leftoverAccounted: true } };
    if (fixed.remainingMinor > 0) queueReload(r, env.proxyId, env.sign, nowMs, { amountMinor: 0, leftoverMinor: fixed.remainingMinor, granted: true });
    else r.changed = true;
  }
  if (env.online && !lv.asked) {
    const m = r.means;
    const needs =
      (lv.kind === 'wallet' && (m.wallet?.balanceMinor ?? 0) < lv.reloadBelowMinor) ||
      (lv.kind === 'fixedAmount' && (!m.fixedAmount || nowMs >= m.fixedAmount.validFromMs + m.fixedAmount.periodMs)) ||
      (lv.kind === 'recurring' && !m.recurring);
    // Asked only when the funding means' local headroom (SL − MTDL) covers it, so the reservation below keeps
    // MTDL < SL [INV-1]; SD is asked anyway and may still refuse it.
    if (needs && lv.amountMinor > 0 && lv.amountMinor < env.fundingHeadroomMinor - r.fundingMinor) {
      const reqId = queueReload(r, env.proxyId, env.sign, nowMs, { amountMinor: lv.amountMinor, leftoverMinor: 0, granted: false });
      r.means = { ...r.means, localValue: { ...lv, asked: { reqId, atMs: nowMs, amountMinor: lv.amountMinor } } };
    }
  }
  return r;
}

/** `reviewPurse` over every purse of a proxy's means; the same objects back when nothing changed. */
export function reviewPurses(
  means: Record<string, MeansState>,
  journal: Journal,
  env: { proxyId: string; sign: Sign; nowMs: number; online: boolean; onlyMeansId?: string },
): { means: Record<string, MeansState>; journal: Journal; changed: boolean } {
  let nextMeans = means;
  let nextJournal = journal;
  let changed = false;
  for (const [meansId, m] of Object.entries(means)) {
    if (!m.localValue || (env.onlyMeansId !== undefined && env.onlyMeansId !== meansId)) continue;
    const funding = nextMeans[m.localValue.fundingMeansId];
    const fundingHeadroomMinor = funding ? funding.localBalanceMinor - funding.localSpentMinor : 0;
    const r = reviewPurse(m, nextJournal, { ...env, fundingHeadroomMinor });
    if (!r.changed) continue;
    changed = true;
    nextJournal = r.journal;
    if (nextMeans === means) nextMeans = { ...means };
    nextMeans[meansId] = r.means;
    if (funding && r.fundingMinor > 0) {
      // The funding means will pay this at SD, which SL cannot know yet: it is spent locally until SD's next figure
      // (which counts it, or the outstanding reload, see proxyRules.applyBalances). A renewal the SIM already gave
      // itself is reserved only as far as MTDL < SL allows [INV-1]; the rest is SD's risk (the loss account).
      const reservedMinor = Math.min(r.fundingMinor, Math.max(0, fundingHeadroomMinor - 1));
      if (reservedMinor > 0) nextMeans[funding.meansId] = { ...funding, localSpentMinor: funding.localSpentMinor + reservedMinor };
    }
  }
  return { means: nextMeans, journal: nextJournal, changed };
}

/** What the reloads still in the outbox will take from `fundingMeansId` at SD: money SD's figure does not count yet. */
export function outstandingReloadsMinor(journal: Journal, fundingMeansId: string): Minor {
  let amountMinor = 0;
  for (const item of journal.outbox) {
    if (item.request.kind === 'reload' && item.request.fundingMeansId === fundingMeansId) amountMinor += item.request.amountMinor;
  }
  return amountMinor;
}

/**
 * SD answered a reload: an ok to the one asked gives the purse its value (a wallet's reload, a fixed amount valid
 * for P from when it was asked, a recurring amount whose periods start then); a refusal SD stored ends the ask (it
 * is asked again at a later review). Granted renewals and leftovers need nothing more than SD's acknowledgement.
 */
export function grantReload(means: MeansState, result: Pick<ServerResult, 'reqId' | 'ok'>): MeansState {
  const lv = means.localValue;
  if (!lv?.asked || lv.asked.reqId !== result.reqId) return means;
  const { atMs, amountMinor } = lv.asked;
  const next: MeansState = { ...means, localValue: { ...lv, asked: undefined } };
  delete next.localValue!.asked;
  if (!result.ok) return next;
  if (lv.kind === 'wallet') next.wallet = { balanceMinor: (means.wallet?.balanceMinor ?? 0) + amountMinor };
  else if (lv.kind === 'fixedAmount') next.fixedAmount = { initialMinor: amountMinor, remainingMinor: amountMinor, validFromMs: atMs, periodMs: lv.periodMs };
  else next.recurring = { amountMinor, remainingMinor: amountMinor, originMs: atMs, periodMs: lv.periodMs, periodIndex: 0 };
  return next;
}
