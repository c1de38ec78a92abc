// Goal: an expenditure ceiling whose MTD periods follow remittances or connections (the patent: "the time interval
// between two remittance messages" for an internal payment means, "between two payments with connection to the
// remote system" for a telepayment means; issue 13 item 6) keeps MTD ≤ PD in every period, starts a period afresh
// exactly at each such event of its own kind — never at another kind, never by the clock — and moves between two
// payments only as INV-2 allows [INV-2].
// Method: random interleavings of local payments (at random, also far-apart, times), remittance acknowledgements
// and connections over one means, through localApproval and endCeilingPeriod, against a model that counts spending
// since the last event of the ceiling's kind.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createMeans, endCeilingPeriod, localApproval, type MeansState } from '../machines/domain/means.ts';
import { checkMeansTransition } from '../machines/domain/invariants.ts';
import { runProperty } from './fc.ts';

type Step = { kind: 'pay'; amountMinor: number; afterMs: number } | { kind: 'remittance' } | { kind: 'connection' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('pay' as const), amountMinor: fc.integer({ min: 1, max: 3_000 }), afterMs: fc.integer({ min: 0, max: 10 * 86_400_000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'remittance' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'connection' as const }) },
);

describe('MTD periods that follow remittances or connections', () => {
  it('keeps MTD ≤ PD, resets exactly at each event of its kind and never by time [INV-2]', () => {
    runProperty(
      fc.property(fc.constantFrom('remittance' as const, 'connection' as const), fc.integer({ min: 1, max: 10_000 }), fc.array(stepArb, { maxLength: 60 }), (periodBy, ceilingMinor, steps) => {
        let means: MeansState = createMeans({
          meansId: 'm1',
          kind: 'prepaid',
          dedicated: true,
          localBalanceMinor: Number.MAX_SAFE_INTEGER,
          // A short time period, which must play no part: only the events end a period.
          ceiling: { ceilingMinor, originMs: 0, periodMs: 60_000, periodIndex: 0, periodSpentMinor: 0, periodBy },
        });
        let lastPaid = means;
        let nowMs = 0;
        let modelSpentMinor = 0;
        let modelPeriod = 0;
        for (const step of steps) {
          if (step.kind !== 'pay') {
            means = endCeilingPeriod(means, step.kind);
            if (step.kind === periodBy) {
              modelSpentMinor = 0;
              modelPeriod++;
            }
          } else {
            nowMs += step.afterMs;
            const approval = localApproval(means, step.amountMinor, nowMs);
            const fits = modelSpentMinor + step.amountMinor <= ceilingMinor;
            expect(approval.ok).toBe(fits);
            if (!approval.ok) {
              expect(approval.reason).toBe('ceilingExceeded');
              continue;
            }
            expect(checkMeansTransition(lastPaid, approval.means, { amountMinor: step.amountMinor, nowMs })).toEqual([]);
            means = approval.means;
            lastPaid = means;
            modelSpentMinor += step.amountMinor;
          }
          expect(means.ceiling!.periodSpentMinor).toBe(modelSpentMinor);
          expect(means.ceiling!.periodIndex).toBe(modelPeriod);
          expect(means.ceiling!.periodSpentMinor).toBeLessThanOrEqual(ceilingMinor);
        }
      }),
      { numRuns: 300 },
    );
  });
});
