import { describe, expect, it } from 'vitest';
import { QUANTILES } from '../scenario/calibration.ts';
import { constantCalibration } from '../scenario/calibrationTesting.ts';
import { calibratedKindOf, sampleQuantiles, ServerCostModel } from './serverCost.ts';
import { Prng } from './prng.ts';
import type { ServerRequest } from '../../machines/messages.ts';

describe('the calibrated cost of a simulated shard', () => {
  it('draws from a quantile table by inverse transform: the draws have the table as their quantiles', () => {
    const table = [100, 110, 150, 200, 300, 500, 700, 1000, 1500, 4000, 9000];
    expect(sampleQuantiles(table, 0)).toBe(100);
    expect(sampleQuantiles(table, 0.5)).toBe(500);
    expect(sampleQuantiles(table, 0.625)).toBe(600);
    const prng = new Prng(5);
    const draws = Array.from({ length: 20_000 }, () => sampleQuantiles(table, prng.nextFloat())).sort((a, b) => a - b);
    for (const p of [0.1, 0.5, 0.9, 0.99]) {
      const i = QUANTILES.indexOf(p as (typeof QUANTILES)[number]);
      expect(draws[Math.floor(p * draws.length)]! / table[i]!).toBeCloseTo(1, 1);
    }
  });

  it('adds the per-item time of list requests and picks the commit table of the batch size, with the overhead', () => {
    const calibration = constantCalibration({ serviceUs: 400, commitUs: 3000, perItemUs: 50 });
    calibration.groupCommit = { ...calibration.groupCommit, batchSizes: [1, 8], commitQuantilesUs: [QUANTILES.map(() => 3000), QUANTILES.map(() => 5000)], batchMedianUs: [0, 0], batchOverheadUs: 200 };
    const model = new ServerCostModel(calibration, new Prng(1));
    const grouped = { kind: 'remit', mode: 'grouped', transactions: new Array(5).fill({}) } as unknown as ServerRequest;
    expect(calibratedKindOf(grouped)).toEqual({ kind: 'remit.grouped', items: 5 });
    expect(model.serviceMs(grouped)).toBeCloseTo(0.4 + 4 * 0.05, 9);
    expect(model.serviceMs({ kind: 'debit' } as ServerRequest)).toBeCloseTo(0.4, 9);
    expect(model.commitMs(1)).toBeCloseTo(3.2, 9);
    expect(model.commitMs(7)).toBeCloseTo(3.2, 9);
    expect(model.commitMs(8)).toBeCloseTo(5.2, 9);
    expect(model.commitMs(500)).toBeCloseTo(5.2, 9);
  });
});
