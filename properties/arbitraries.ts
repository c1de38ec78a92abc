// Goal: the generators the property suites share — payment means with every local limit the patent names,
// amounts that land on the limits' edges, times that land on period boundaries, signing keys.
// Method: plain fast-check arbitraries. Amounts and times are drawn partly "near something" (an exact
// boundary, one below, one above) because the rules' bugs live at the edges: MTDL + a = SL, t = origin + k·P.
// An edge is described symbolically (`AmountSpec`) and resolved against the state at the moment of use, so a
// shrunk counterexample still hits the same edge.

import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { createMeans, rollPeriods, type MeansState } from '../machines/domain/means.ts';
import { keyFromSeed, type SignatureScheme, type SigningKey } from '../machines/domain/signature.ts';

/** Periods are short, so a few thousand milliseconds cross several boundaries. */
export const periodMsArb = fc.integer({ min: 1, max: 5_000 });

export const meansIdArb = fc.constantFrom('m1', 'm2');

/** A means with a random subset of the local limits, as a proxy would hold it at time `atMs`. */
export function meansArb(meansId: string, atMs = 0): fc.Arbitrary<MeansState> {
  return fc
    .record({
      kind: fc.constantFrom('prepaid', 'postpaid', 'virtualWallet', 'electronicWallet' as const),
      dedicated: fc.boolean(),
      localBalanceMinor: fc.integer({ min: 0, max: 20_000 }),
      localSpentMinor: fc.integer({ min: 0, max: 20_000 }),
      wallet: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined }),
      fixed: fc.option(
        fc.record({ initialMinor: fc.integer({ min: 0, max: 10_000 }), spentMinor: fc.integer({ min: 0, max: 10_000 }), validFromMs: fc.integer({ min: -5_000, max: 5_000 }), periodMs: periodMsArb }),
        { nil: undefined },
      ),
      recurring: fc.option(
        fc.record({ amountMinor: fc.integer({ min: 0, max: 10_000 }), spentMinor: fc.integer({ min: 0, max: 10_000 }), originMs: fc.integer({ min: -5_000, max: 5_000 }), periodMs: periodMsArb }),
        { nil: undefined },
      ),
      ceiling: fc.option(
        fc.record({ ceilingMinor: fc.integer({ min: 0, max: 20_000 }), spentMinor: fc.integer({ min: 0, max: 20_000 }), originMs: fc.integer({ min: -5_000, max: 5_000 }), periodMs: periodMsArb }),
        { nil: undefined },
      ),
    })
    .map((r) => {
      // MTDL < SL holds in any state a proxy can be in; start from such a state.
      const localSpentMinor = r.localSpentMinor < r.localBalanceMinor ? r.localSpentMinor : 0;
      const means = createMeans({ meansId, kind: r.kind, dedicated: r.dedicated, localBalanceMinor: r.localBalanceMinor, localSpentMinor });
      if (r.wallet !== undefined) means.wallet = { balanceMinor: r.wallet };
      if (r.fixed) {
        const f = r.fixed;
        means.fixedAmount = { initialMinor: f.initialMinor, remainingMinor: Math.max(0, f.initialMinor - f.spentMinor), validFromMs: f.validFromMs, periodMs: f.periodMs };
      }
      if (r.recurring) {
        const c = r.recurring;
        const periodIndex = Math.floor((atMs - c.originMs) / c.periodMs);
        means.recurring = { amountMinor: c.amountMinor, remainingMinor: Math.max(0, c.amountMinor - c.spentMinor), originMs: c.originMs, periodMs: c.periodMs, periodIndex };
      }
      if (r.ceiling) {
        const c = r.ceiling;
        const periodIndex = Math.floor((atMs - c.originMs) / c.periodMs);
        means.ceiling = { ceilingMinor: c.ceilingMinor, originMs: c.originMs, periodMs: c.periodMs, periodIndex, periodSpentMinor: Math.min(c.spentMinor, c.ceilingMinor) };
      }
      return means;
    });
}

/** Which limit an edge amount is measured against. */
export type Limit = 'local' | 'wallet' | 'fixed' | 'recurring' | 'ceiling';

/** An amount: a plain figure, or "the room left under a limit, plus delta" resolved when used. */
export type AmountSpec = { kind: 'plain'; amountMinor: number } | { kind: 'edge'; limit: Limit; delta: -1 | 0 | 1 };

export const amountSpecArb: fc.Arbitrary<AmountSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 12_000 }).map((amountMinor) => ({ kind: 'plain' as const, amountMinor })) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('edge' as const), limit: fc.constantFrom<Limit>('local', 'wallet', 'fixed', 'recurring', 'ceiling'), delta: fc.constantFrom<-1 | 0 | 1>(-1, 0, 1) }),
  },
);

/** The room left under `limit` at `nowMs` (after period roll-over), or undefined when the means lacks it. */
export function roomUnder(means: MeansState, limit: Limit, nowMs: number): number | undefined {
  const m = rollPeriods(means, nowMs);
  switch (limit) {
    case 'local':
      return m.localBalanceMinor - m.localSpentMinor;
    case 'wallet':
      return m.wallet?.balanceMinor;
    case 'fixed':
      return m.fixedAmount?.remainingMinor;
    case 'recurring':
      return m.recurring?.remainingMinor;
    case 'ceiling':
      return m.ceiling ? m.ceiling.ceilingMinor - m.ceiling.periodSpentMinor : undefined;
  }
}

/** Resolves an amount against a means; always at least 1 (a payment of nothing is refused elsewhere). */
export function resolveAmount(spec: AmountSpec, means: MeansState | undefined, nowMs: number): number {
  if (spec.kind === 'plain') return spec.amountMinor;
  const room = means ? roomUnder(means, spec.limit, nowMs) : undefined;
  return Math.max(1, (room ?? 1_000) + spec.delta);
}

/** A deterministic key from a label, so that a replayed counterexample signs the same way. */
export function keyFor(label: string, scheme: SignatureScheme): SigningKey {
  return keyFromSeed(scheme, createHash('sha256').update(label).digest());
}

export const schemeArb = fc.constantFrom<SignatureScheme>('sim', 'ed25519');
