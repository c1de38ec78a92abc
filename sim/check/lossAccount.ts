// Goal: the loss account of a run, by means and by cause — what SD paid beneficiaries out of its own pocket
// because a means could not cover a payment its proxy had approved offline — and the figures of the means shared
// by several terminals, for summary.json and the report.
// Method: the ledger books every shortfall to the one `loss` account by a transfer whose id names what it paid
// (`tx:{txId}/loss` for a posting, `agg:{id}/loss` for an aggregate, `rev:{txId}/loss` for its reversal,
// `{reload transfer}/loss` for a local-value purse's period the funding means could not pay). This module walks
// the ledgers' postings and aggregates (and the reloads the runner saw) to find each shortfall's means, and names
// the cause from what the means is exposed to: shared by several proxies (their offline spending together, which
// the allotments bound only against the figure each last saw), spent through other points of issue, a purse's
// period unpaid by its funding means, or a dedicated means (SD approved a remote payment or a reload before the
// means' unremitted local payments reached it, so they found the account short). Whatever the loss
// account holds that no such transfer explains is reported as `unexplained`, so the breakdown always adds up to
// the account.

import { LOSS_ACCOUNT, type Ledger } from '../../machines/domain/ledger.ts';

export type LossCause = 'sharedOffline' | 'spentElsewhere' | 'subscriptionUnfunded' | 'dedicatedMeans' | 'unexplained';

/** What a means is exposed to, from the run's plan. */
export interface MeansExposure {
  /** Proxies that hold the means (more than one: a family wallet). */
  proxies: number;
  dedicated: boolean;
}

export interface LossAccountFigures {
  /** What the loss account paid out in all (minus what reversals gave back), over every ledger. */
  totalMinor: number;
  byCause: Record<LossCause, number>;
  /** Every means with a loss, largest first: its cause and amount. */
  byMeans: Array<{ meansId: string; cause: LossCause; amountMinor: number }>;
}

export type LossLedger = Pick<Ledger, 'postings' | 'aggregates' | 'accountOf'> & { store: Pick<Ledger['store'], 'getTransfer'> };

function causeOf(exposure: MeansExposure | undefined): LossCause {
  if (!exposure) return 'unexplained';
  if (exposure.proxies > 1) return 'sharedOffline';
  return exposure.dedicated ? 'dedicatedMeans' : 'spentElsewhere';
}

/**
 * The loss account's figures. `purseLosses` are the shortfalls of purse periods the runner saw SD book (a
 * reload's `/loss` transfer), by funding means.
 */
export function lossAccountOf(
  ledgers: readonly LossLedger[],
  exposureOf: (meansId: string) => MeansExposure | undefined,
  purseLosses: ReadonlyArray<{ meansId: string; amountMinor: number }> = [],
): LossAccountFigures {
  const byMeans = new Map<string, { cause: LossCause; amountMinor: number }>();
  const add = (meansId: string, cause: LossCause, amountMinor: number): void => {
    if (amountMinor === 0) return;
    const entry = byMeans.get(`${meansId}\u0000${cause}`) ?? { cause, amountMinor: 0 };
    entry.amountMinor += amountMinor;
    byMeans.set(`${meansId}\u0000${cause}`, entry);
  };
  let totalMinor = 0;
  for (const ledger of ledgers) {
    // The loss account is debited for every shortfall: its balance is minus what it paid.
    totalMinor -= ledger.accountOf(LOSS_ACCOUNT)?.balanceMinor ?? 0;
    const transferMinor = (id: string): number => ledger.store.getTransfer(id)?.amountMinor ?? 0;
    for (const posting of ledger.postings()) {
      if (posting.amountMinor === null) continue;
      const lossMinor = transferMinor(`tx:${posting.txId}/loss`) - transferMinor(`rev:${posting.txId}/loss`);
      add(posting.meansId, causeOf(exposureOf(posting.meansId)), lossMinor);
    }
    for (const aggregate of ledger.aggregates()) add(aggregate.meansId, causeOf(exposureOf(aggregate.meansId)), transferMinor(`agg:${aggregate.id}/loss`));
  }
  for (const loss of purseLosses) add(loss.meansId, 'subscriptionUnfunded', loss.amountMinor);

  const byCause: Record<LossCause, number> = { sharedOffline: 0, spentElsewhere: 0, subscriptionUnfunded: 0, dedicatedMeans: 0, unexplained: 0 };
  const list: LossAccountFigures['byMeans'] = [];
  for (const [key, entry] of byMeans) {
    byCause[entry.cause] += entry.amountMinor;
    list.push({ meansId: key.slice(0, key.indexOf('\u0000')), cause: entry.cause, amountMinor: entry.amountMinor });
  }
  const explainedMinor = list.reduce((sum, entry) => sum + entry.amountMinor, 0);
  byCause.unexplained += totalMinor - explainedMinor;
  list.sort((a, b) => b.amountMinor - a.amountMinor || (a.meansId < b.meansId ? -1 : 1));
  return { totalMinor, byCause, byMeans: list };
}

/** What each means of a run's plan is exposed to: how many proxies hold it, and whether it is dedicated. */
export function exposuresOf(plans: Iterable<{ means: { meansId: string; dedicated: boolean } }>): Map<string, MeansExposure> {
  const exposures = new Map<string, MeansExposure>();
  for (const { means } of plans) {
    const known = exposures.get(means.meansId);
    exposures.set(means.meansId, { proxies: (known?.proxies ?? 0) + 1, dedicated: means.dedicated });
  }
  return exposures;
}

/**
 * The shortfalls of purse periods a ledger booked, found from SD's stored answers to granted reloads
 * (`lv:{from}/{reqId}/loss`, credited to the purse `{funding}/v:{proxy}`): by funding means.
 */
export function purseLossesOf(ledger: LossLedger, answers: Iterable<{ sender: string; reqId: string }>): Array<{ meansId: string; amountMinor: number }> {
  const losses: Array<{ meansId: string; amountMinor: number }> = [];
  for (const { sender, reqId } of answers) {
    const transfer = ledger.store.getTransfer(`lv:${sender}/${reqId}/loss`);
    if (!transfer) continue;
    const purse = transfer.creditAccount.slice('means:'.length);
    losses.push({ meansId: purse.slice(0, purse.indexOf('/v:')), amountMinor: transfer.amountMinor });
  }
  return losses;
}

/** The shared-means figures from a run's plan and the payments it saw approved (the mqtt coordinator's view). */
export function sharedMeansOf(plans: Iterable<{ means: { meansId: string; pointsOfIssue?: number } }>, approved: Iterable<{ proof: { path: string; amountMinor: number; meansId: string } }>): SharedMeansFigures {
  const tally = new SharedMeansTally();
  const list = [...plans];
  tally.plan(list.map((plan) => ({ meansId: plan.means.meansId, pointsOfIssue: plan.means.pointsOfIssue })));
  const points = new Map(list.map((plan) => [plan.means.meansId, plan.means.pointsOfIssue]));
  for (const { proof } of approved) tally.decided(proof.path, proof.amountMinor, points.get(proof.meansId));
  return tally.figures;
}

/** The figures of the means shared by several terminals (a family wallet), as summary.json gives them. */
export interface SharedMeansFigures {
  /** Means held by more than one proxy, and the terminals that hold them. */
  means: number;
  terminals: number;
  /** Payments approved locally on a shared means, and those approved without coverage (offline). */
  localPayments: number;
  offlinePayments: number;
  offlineAmountMinor: number;
}

/** Counts the approvals on shared means as the run's decisions come (both modes call `decided`). */
export class SharedMeansTally {
  readonly figures: SharedMeansFigures = { means: 0, terminals: 0, localPayments: 0, offlinePayments: 0, offlineAmountMinor: 0 };

  /** The run's plan: each terminal's means and how many proxies share it. */
  plan(terminals: Iterable<{ meansId: string; pointsOfIssue: number | undefined }>): void {
    const shared = new Set<string>();
    for (const terminal of terminals) {
      if ((terminal.pointsOfIssue ?? 1) <= 1) continue;
      shared.add(terminal.meansId);
      this.figures.terminals++;
    }
    this.figures.means = shared.size;
  }

  /** One approved decision: its path and the means as it left it. */
  decided(path: string, amountMinor: number, pointsOfIssue: number | undefined): void {
    if ((pointsOfIssue ?? 1) <= 1 || path === 'remote') return;
    this.figures.localPayments++;
    if (path !== 'localOffline') return;
    this.figures.offlinePayments++;
    this.figures.offlineAmountMinor += amountMinor;
  }
}
