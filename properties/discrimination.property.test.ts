// Goal: step B of the patent (B1 payment type, B2 coverage, B3 threshold M0) and the confirmation step decide
// as specified for any order and any policy: internal payments are local; without coverage nothing goes remote
// and the offline caps bound what is approved; in coverage the threshold separates local from remote; the
// confirmation asked for never weakens as the amount grows.
// Method: the tests B1–B3 restated as a small oracle, compared with `discriminate` over random inputs and
// policies; monotonicity properties; and a sequence of offline orders through `decideOrder`, whose unremitted
// backlog must stay inside the caps.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { discriminate, type DiscriminationPolicy, type PaymentType } from '../machines/domain/discriminate.ts';
import { requiredConfirmation, type ConfirmationKind, type ConfirmationPolicy } from '../machines/domain/confirmation.ts';
import { decideOrder, initialProxyState, type ProxyPolicy } from '../machines/domain/proxyRules.ts';
import { defaultConfirmationPolicy } from '../machines/domain/confirmation.ts';
import { defaultRemittancePolicy, unremitted } from '../machines/domain/remittance.ts';
import { createMeans } from '../machines/domain/means.ts';
import { keyFor } from './arbitraries.ts';
import { runProperty } from './fc.ts';

const typeArb = fc.constantFrom<PaymentType>('internal', 'proximity', 'telepayment');

const policyArb: fc.Arbitrary<DiscriminationPolicy> = fc.record({
  thresholdMinor: fc.integer({ min: 0, max: 10_000 }),
  offline: fc.record({
    perPaymentCapMinor: fc.integer({ min: 0, max: 10_000 }),
    maxPendingCount: fc.integer({ min: 0, max: 10 }),
    maxPendingAmountMinor: fc.integer({ min: 0, max: 30_000 }),
    overThreshold: fc.constantFrom('decline' as const, 'approveUnderCaps' as const),
  }),
});

const inputArb = fc.record({
  type: typeArb,
  amountMinor: fc.integer({ min: 1, max: 12_000 }),
  inCoverage: fc.boolean(),
  pendingCount: fc.integer({ min: 0, max: 12 }),
  pendingAmountMinor: fc.integer({ min: 0, max: 35_000 }),
});

describe('discrimination (B1, B2, B3)', () => {
  it('routes as the patent says: internal local; offline only under the caps, never remote; online remote iff above M0', () => {
    runProperty(
      fc.property(inputArb, policyArb, (input, policy) => {
        const d = discriminate(input, policy);
        if (input.type === 'internal') {
          expect(d).toEqual({ route: 'local', path: 'internal' });
        } else if (!input.inCoverage) {
          const o = policy.offline;
          const allowed =
            !(input.amountMinor > policy.thresholdMinor && o.overThreshold === 'decline') &&
            input.amountMinor <= o.perPaymentCapMinor &&
            input.pendingCount + 1 <= o.maxPendingCount &&
            input.pendingAmountMinor + input.amountMinor <= o.maxPendingAmountMinor;
          expect(d.route).toBe(allowed ? 'local' : 'decline');
          if (allowed) expect(d).toEqual({ route: 'local', path: 'localOffline' });
        } else {
          expect(d).toEqual(input.amountMinor > policy.thresholdMinor ? { route: 'remote', path: 'remote' } : { route: 'local', path: 'localBelowThreshold' });
        }
      }),
      { numRuns: 500 },
    );
  });

  it('approves offline a smaller amount, or the same one with a smaller backlog, whenever it approves a larger one', () => {
    runProperty(
      fc.property(inputArb, policyArb, fc.nat(), fc.nat(), fc.nat(), (input, policy, less, fewer, lessPending) => {
        const offline = { ...input, inCoverage: false };
        if (discriminate(offline, policy).route !== 'local') return;
        const smaller = { ...offline, amountMinor: 1 + (less % offline.amountMinor), pendingCount: fewer % (offline.pendingCount + 1), pendingAmountMinor: lessPending % (offline.pendingAmountMinor + 1) };
        expect(discriminate(smaller, policy).route).toBe('local');
      }),
      { numRuns: 300 },
    );
  });
});

const rank: Record<ConfirmationKind, number> = { none: 0, inform: 1, approve: 2, pin: 3 };

describe('confirmation (CA, PIN)', () => {
  it('never asks for less as the amount grows, and asks for the PIN above its threshold', () => {
    const policyArb = fc
      .tuple(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 5_000 }), fc.boolean())
      .map(([a, b, c, approveProximity]): ConfirmationPolicy => {
        const [informAboveMinor, approveAboveMinor, pinAboveMinor] = [a, b, c].sort((x, y) => x - y) as [number, number, number];
        return { informAboveMinor, approveAboveMinor, pinAboveMinor, approveProximity, pinTries: 3 };
      });
    runProperty(
      fc.property(policyArb, typeArb, fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 }), (policy, type, x, y) => {
        const [low, high] = x <= y ? [x, y] : [y, x];
        const kLow = requiredConfirmation({ type, amountMinor: low }, policy);
        const kHigh = requiredConfirmation({ type, amountMinor: high }, policy);
        expect(rank[kHigh]).toBeGreaterThanOrEqual(rank[kLow]);
        expect(kHigh === 'pin').toBe(high > policy.pinAboveMinor);
        if (type === 'proximity' && policy.approveProximity) expect(rank[kLow]).toBeGreaterThanOrEqual(rank.approve);
      }),
      { numRuns: 300 },
    );
  });
});

describe('offline exposure through the proxy rules', () => {
  it('keeps every offline approval under the per-payment cap and the backlog of non-internal offline payments under the caps', () => {
    const key = keyFor('proxy:p1', 'sim');
    runProperty(
      fc.property(
        policyArb,
        fc.array(fc.record({ type: typeArb, amountMinor: fc.integer({ min: 1, max: 8_000 }) }), { maxLength: 40 }),
        (discrimination, orders) => {
          const policy: ProxyPolicy = { discrimination, confirmation: defaultConfirmationPolicy, remittance: defaultRemittancePolicy, remoteTimeoutMs: 10_000 };
          let state = initialProxyState('p1', [createMeans({ meansId: 'm1', kind: 'prepaid', dedicated: true, localBalanceMinor: 10_000_000 })], policy);
          orders.forEach((o, i) => {
            const before = unremitted(state.journal);
            const decision = decideOrder(state, policy, { orderId: `o${i}`, source: { kind: 'app', appId: 'a' }, meansId: 'm1', payee: 'shop', ...o }, { inCoverage: false, nowMs: i, key });
            // Without coverage SD cannot be asked.
            expect(decision.kind).not.toBe('remote');
            if (decision.kind === 'approvedLocal' && o.type !== 'internal') {
              expect(o.amountMinor).toBeLessThanOrEqual(discrimination.offline.perPaymentCapMinor);
              expect(before.count + 1).toBeLessThanOrEqual(discrimination.offline.maxPendingCount);
              expect(before.amountMinor + o.amountMinor).toBeLessThanOrEqual(discrimination.offline.maxPendingAmountMinor);
            }
            state = decision.state;
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
