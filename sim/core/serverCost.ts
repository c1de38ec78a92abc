// Goal: what a request costs a simulated payment-server shard, drawn from the calibration measured on the real
// server (sim/scenario/calibration.ts), so the virtual SD is as slow as the real one, kind by kind, and its group
// commit batches as the real one does.
// Method: inverse-transform sampling of the quantile tables: one uniform draw from the shard's own seeded stream,
// located between the two neighbouring probabilities of QUANTILES and interpolated linearly between their µs. A
// list request (grouped or aggregate remittance, settlement) adds perItemUs for each item beyond the first. A
// commit's time (plus the batch's fixed overhead) is drawn from the table of the largest measured batch size not above the batch (the smallest one
// for a batch below every size measured). Times come back in ms, the simulator's unit.

import { QUANTILES, type CalibratedKind, type Calibration } from '../scenario/calibration.ts';
import type { ServerRequest } from '../../machines/messages.ts';
import type { Prng } from './prng.ts';

/** Linear interpolation in a quantile table at probability u ∈ [0, 1). */
export function sampleQuantiles(table: readonly number[], u: number): number {
  for (let i = 1; i < QUANTILES.length; i++) {
    const p = QUANTILES[i]!;
    if (u <= p) {
      const p0 = QUANTILES[i - 1]!;
      return table[i - 1]! + ((table[i]! - table[i - 1]!) * (u - p0)) / (p - p0);
    }
  }
  return table.at(-1)!;
}

/** The calibrated kind of a request and the items it carries. */
export function calibratedKindOf(request: ServerRequest): { kind: CalibratedKind; items: number } {
  switch (request.kind) {
    case 'remit':
      return request.mode === 'grouped'
        ? { kind: 'remit.grouped', items: request.transactions?.length ?? 1 }
        : { kind: 'remit.aggregate', items: request.aggregates?.reduce((sum, a) => sum + (a.txIds?.length ?? 0), 0) ?? 1 };
    case 'settle':
      return { kind: 'settle', items: request.proofs?.length ?? 1 };
    case 'reload':
      // A purse reload is not measured on its own: it moves money between two accounts of the ledger, as a debit does.
      return { kind: 'debit', items: 1 };
    default:
      return { kind: request.kind, items: 1 };
  }
}

export class ServerCostModel {
  /** Top-ups of the shard's ledger whose time was charged (topUpsMs). */
  private topUpsCharged = 0;
  /** The top-ups' own stream, so that they never shift the draws of the requests' and commits' times. */
  private topUpPrng: Prng | undefined;

  constructor(
    private readonly calibration: Calibration,
    private readonly prng: Prng,
  ) {}

  /** Time (ms) the shard spends on this request, its commit excluded. */
  serviceMs(request: ServerRequest): number {
    const { kind, items } = calibratedKindOf(request);
    const times = this.calibration.kinds[kind];
    const us = sampleQuantiles(times.quantilesUs, this.prng.nextFloat()) + Math.max(0, items - 1) * (times.perItemUs ?? 0);
    return us / 1000;
  }

  /**
   * Time (ms) of the top-ups the shard's ledger made since the last call, `topUpsMade` being its count so far
   * (machines/domain/ledgerTopUps.ts). A top-up is made inside the transaction of the posting that asked for it, which
   * is known only once that posting is applied, at the end of its batch: its time is charged to the shard's next
   * batch. Each is drawn from the calibration's `topUp` table, or, in a file measured before top-ups existed, its
   * debit's (a top-up is one transfer, as a debit's payment is, without the signature check: that overstates it).
   * They are drawn from a stream of their own (a fork, which does not move the shard's stream), so the requests' and
   * commits' times are drawn as they would be without top-ups, and a run without agreements draws as before.
   */
  topUpsMs(topUpsMade: number): number {
    if (this.topUpsCharged >= topUpsMade) return 0;
    const prng = (this.topUpPrng ??= this.prng.fork('top-ups'));
    let ms = 0;
    const times = this.calibration.kinds.topUp ?? this.calibration.kinds.debit;
    for (; this.topUpsCharged < topUpsMade; this.topUpsCharged++) ms += sampleQuantiles(times.quantilesUs, prng.nextFloat()) / 1000;
    return ms;
  }

  /** Time (ms) of one group commit of `batchSize` requests, with the batch's fixed overhead. */
  commitMs(batchSize: number): number {
    const { batchSizes, commitQuantilesUs, batchOverheadUs } = this.calibration.groupCommit;
    let index = 0;
    while (index + 1 < batchSizes.length && batchSizes[index + 1]! <= batchSize) index++;
    return (batchOverheadUs + sampleQuantiles(commitQuantilesUs[index]!, this.prng.nextFloat())) / 1000;
  }
}
