// Goal: the local-approval rules of a payment means hold whatever the order of events: MTDL < SL, MTD ≤ PD in
// every period, wallet / fixed / recurring balances never negative, a fixed amount usable only inside its
// period, a recurring amount and a ceiling reset exactly at each period boundary — also when the proxy's clock
// is skewed (jumps back) and when a period ends in the middle of an order [INV-1], [INV-2].
// Method: an oracle written from the patent's words (not from means.ts) for single approvals; long random
// interleavings of orders, syncs, remittances, acknowledgements and remote completions through the proxy's
// pure rules, checking every invariant after every step; edge-biased amounts and boundary-biased times.

import { describe, it } from 'vitest';
import fc from 'fast-check';
import { expect } from 'vitest';
import { localApproval, applySync, rollPeriods, type MeansState } from '../machines/domain/means.ts';
import {
  applyAcknowledgement,
  applyBalances,
  completeRemote,
  decideOrder,
  initialProxyState,
  requestSigner,
  type ProxyPolicy,
  type ProxyState,
  type RemotePayment,
} from '../machines/domain/proxyRules.ts';
import { defaultDiscriminationPolicy } from '../machines/domain/discriminate.ts';
import { defaultConfirmationPolicy } from '../machines/domain/confirmation.ts';
import { defaultRemittancePolicy, formRemittances, unremitted } from '../machines/domain/remittance.ts';
import type { PaymentOrder, ServerResult } from '../machines/messages.ts';
import { walletMeans, World } from '../machines/testing/world.ts';
import { amountSpecArb, keyFor, meansArb, periodMsArb, resolveAmount, type AmountSpec } from './arbitraries.ts';
import { runProperty } from './fc.ts';
import { checkMeans } from './checks.ts';

// ------------------------------------------------------------------ oracle

/** The start of the period after the one `index` names. */
const nextBoundaryMs = (originMs: number, periodMs: number, index: number): number => originMs + (index + 1) * periodMs;

/**
 * What the patent says a local approval of `a` at `t` must do, phrased with boundaries rather than period
 * indices: a recurring amount or a ceiling whose next boundary has been reached starts afresh.
 */
function oracle(m: MeansState, a: number, t: number): { ok: boolean; failing: string[]; after?: MeansState } {
  const failing: string[] = [];
  let recurringRemaining = m.recurring?.remainingMinor;
  let recurringIndex = m.recurring?.periodIndex;
  if (m.recurring) {
    const r = m.recurring;
    // Jump to the period containing t, if t is at or past the next boundary.
    if (t >= nextBoundaryMs(r.originMs, r.periodMs, r.periodIndex)) {
      recurringRemaining = r.amountMinor;
      recurringIndex = Math.floor((t - r.originMs) / r.periodMs);
    }
  }
  let ceilingSpent = m.ceiling?.periodSpentMinor;
  let ceilingIndex = m.ceiling?.periodIndex;
  if (m.ceiling) {
    const c = m.ceiling;
    if (t >= nextBoundaryMs(c.originMs, c.periodMs, c.periodIndex)) {
      ceilingSpent = 0;
      ceilingIndex = Math.floor((t - c.originMs) / c.periodMs);
    }
  }
  if (m.ceiling && ceilingSpent! + a > m.ceiling.ceilingMinor) failing.push('ceilingExceeded');
  if (m.wallet && a > m.wallet.balanceMinor) failing.push('walletInsufficient');
  if (m.fixedAmount) {
    const f = m.fixedAmount;
    if (t < f.validFromMs) failing.push('fixedAmountNotYetValid');
    else if (t >= f.validFromMs + f.periodMs) failing.push('fixedAmountExpired');
    else if (a > f.remainingMinor) failing.push('fixedAmountInsufficient');
  }
  if (m.recurring && a > recurringRemaining!) failing.push('recurringInsufficient');
  if (!(m.localSpentMinor + a < m.localBalanceMinor)) failing.push('localBalanceExceeded');
  if (failing.length > 0) return { ok: false, failing };
  const after: MeansState = { ...m, localSpentMinor: m.localSpentMinor + a };
  if (m.wallet) after.wallet = { balanceMinor: m.wallet.balanceMinor - a };
  if (m.fixedAmount) after.fixedAmount = { ...m.fixedAmount, remainingMinor: m.fixedAmount.remainingMinor - a };
  if (m.recurring) after.recurring = { ...m.recurring, remainingMinor: recurringRemaining! - a, periodIndex: recurringIndex! };
  if (m.ceiling) after.ceiling = { ...m.ceiling, periodSpentMinor: ceilingSpent! + a, periodIndex: ceilingIndex! };
  return { ok: true, failing, after };
}

/** A time: anywhere, or exactly at (or one ms either side of) one of the means' period boundaries. */
type TimeSpec = { kind: 'plain'; timeMs: number } | { kind: 'edge'; which: 'recurring' | 'ceiling' | 'fixedStart' | 'fixedEnd'; periodsAhead: number; delta: -1 | 0 | 1 };

const timeSpecArb: fc.Arbitrary<TimeSpec> = fc.oneof(
  fc.integer({ min: -10_000, max: 30_000 }).map((timeMs) => ({ kind: 'plain' as const, timeMs })),
  fc.record({
    kind: fc.constant('edge' as const),
    which: fc.constantFrom('recurring' as const, 'ceiling' as const, 'fixedStart' as const, 'fixedEnd' as const),
    periodsAhead: fc.integer({ min: 0, max: 3 }),
    delta: fc.constantFrom<-1 | 0 | 1>(-1, 0, 1),
  }),
);

function resolveTime(spec: TimeSpec, m: MeansState): number {
  if (spec.kind === 'plain') return spec.timeMs;
  const { periodsAhead: k, delta } = spec;
  switch (spec.which) {
    case 'recurring':
      return m.recurring ? nextBoundaryMs(m.recurring.originMs, m.recurring.periodMs, m.recurring.periodIndex + k) + delta : delta;
    case 'ceiling':
      return m.ceiling ? nextBoundaryMs(m.ceiling.originMs, m.ceiling.periodMs, m.ceiling.periodIndex + k) + delta : delta;
    case 'fixedStart':
      return (m.fixedAmount?.validFromMs ?? 0) + delta;
    case 'fixedEnd':
      return m.fixedAmount ? m.fixedAmount.validFromMs + m.fixedAmount.periodMs + delta : delta;
  }
}

// ------------------------------------------------------------------ single approvals

describe('means: a single local approval', () => {
  it('approves exactly when every limit allows it, and moves every balance by the amount [INV-1, INV-2]', () => {
    runProperty(
      fc.property(meansArb('m1', 0), amountSpecArb, timeSpecArb, (means, amountSpec, timeSpec) => {
        const t = resolveTime(timeSpec, means);
        const a = resolveAmount(amountSpec, means, t);
        const expected = oracle(means, a, t);
        const actual = localApproval(means, a, t);
        expect(actual.ok, `approval of ${a} at ${t}: expected ${expected.ok ? 'ok' : expected.failing.join(', ')}`).toBe(expected.ok);
        if (actual.ok) {
          expect(actual.means).toEqual(expected.after);
          checkMeans(actual.means, 'after approval');
        } else {
          expect(expected.failing).toContain(actual.reason);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('never approves MTDL + a = SL: the last minor unit of SL is never spent locally [INV-1]', () => {
    runProperty(
      fc.property(fc.integer({ min: 1, max: 50_000 }), fc.integer({ min: 0, max: 50_000 }), (sl, spentRaw) => {
        const spent = spentRaw % sl;
        const means: MeansState = { meansId: 'm1', kind: 'prepaid', dedicated: true, localBalanceMinor: sl, localSpentMinor: spent, balanceVersion: 0 };
        const exact = localApproval(means, sl - spent, 0);
        expect(exact.ok).toBe(false);
        if (sl - spent > 1) expect(localApproval(means, sl - spent - 1, 0).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

// ------------------------------------------------------------------ periods

describe('means: period boundaries', () => {
  it('resets a recurring amount exactly at the boundary, not a tick before or after [INV-2 recurring reset]', () => {
    runProperty(
      fc.property(
        fc.integer({ min: -10_000, max: 10_000 }),
        periodMsArb,
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 0, max: 20 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        fc.integer({ min: -3, max: 3 }),
        (originMs, periodMs, s0, k, where, delta) => {
          const spendAt = originMs + k * periodMs + Math.floor(where * periodMs);
          const boundary = originMs + (k + 1) * periodMs;
          const means: MeansState = {
            meansId: 'm1', kind: 'prepaid', dedicated: true, localBalanceMinor: 1_000_000, localSpentMinor: 0, balanceVersion: 0,
            recurring: { amountMinor: s0, remainingMinor: s0, originMs, periodMs, periodIndex: k },
          };
          const spent = localApproval(means, s0, spendAt);
          expect(spent.ok).toBe(true);
          if (!spent.ok) return;
          const t = boundary + delta;
          // Before the boundary nothing is left; from the boundary on, S0 again (one more period: still S0).
          const full = localApproval(spent.means, s0, t);
          expect(full.ok, `S0 at boundary${delta >= 0 ? '+' : ''}${delta}`).toBe(delta >= 0);
          expect(rollPeriods(spent.means, t).recurring!.remainingMinor).toBe(delta >= 0 ? s0 : 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps MTD ≤ PD in every period, also when the clock jumps back and forth [INV-2 MTD<=PD, clock skew]', () => {
    runProperty(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        periodMsArb,
        fc.array(fc.record({ dtMs: fc.integer({ min: -6_000, max: 6_000 }), amount: amountSpecArb }), { minLength: 1, maxLength: 40 }),
        (ceilingMinor, periodMs, steps) => {
          let means: MeansState = {
            meansId: 'm1', kind: 'postpaid', dedicated: true, localBalanceMinor: 10_000_000, localSpentMinor: 0, balanceVersion: 0,
            ceiling: { ceilingMinor, originMs: 0, periodMs, periodIndex: 0, periodSpentMinor: 0 },
            recurring: { amountMinor: ceilingMinor, remainingMinor: ceilingMinor, originMs: 0, periodMs, periodIndex: 0 },
          };
          let t = 0;
          let latestMs = 0;
          const spentByCeilingPeriod = new Map<number, number>();
          const spentByRecurringPeriod = new Map<number, number>();
          let lastCeilingIndex = 0;
          let lastRecurringIndex = 0;
          for (const step of steps) {
            t += step.dtMs;
            const a = resolveAmount(step.amount, means, t);
            const result = localApproval(means, a, t);
            if (!result.ok) continue;
            // The shared transition check expects a payment counted in the period of its own time, which a clock
            // set back into an earlier period cannot have (the means stays in the later one, on purpose): it runs
            // only while time moves forward; the per-period sums below cover the skewed steps.
            if (t >= latestMs) checkMeans(result.means, `t=${t}`, means, { amountMinor: a, nowMs: t });
            else checkMeans(result.means, `t=${t} (clock set back from ${latestMs})`);
            latestMs = Math.max(latestMs, t);
            means = result.means;
            const ci = means.ceiling!.periodIndex;
            const ri = means.recurring!.periodIndex;
            // A skewed clock must not bring an old period (and its fresh allowance) back.
            expect(ci).toBeGreaterThanOrEqual(lastCeilingIndex);
            expect(ri).toBeGreaterThanOrEqual(lastRecurringIndex);
            lastCeilingIndex = ci;
            lastRecurringIndex = ri;
            spentByCeilingPeriod.set(ci, (spentByCeilingPeriod.get(ci) ?? 0) + a);
            spentByRecurringPeriod.set(ri, (spentByRecurringPeriod.get(ri) ?? 0) + a);
            expect(spentByCeilingPeriod.get(ci)).toBeLessThanOrEqual(ceilingMinor);
            expect(spentByRecurringPeriod.get(ri)).toBeLessThanOrEqual(ceilingMinor);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('judges an order confirmed across a period boundary in the period of its decision, not of its arrival [INV-2]', () => {
    runProperty(
      fc.property(
        fc.integer({ min: 2_000, max: 50_000 }),
        fc.integer({ min: 1_001, max: 5_000 }),
        fc.integer({ min: 1, max: 1_999 }),
        fc.integer({ min: 0, max: 3_999 }),
        fc.integer({ min: 0, max: 2_000 }),
        (periodMs, amountMinor, epsilonMs, deltaMs, headroomMinor) => {
          // PD is nearly used up in period 0: the order does not fit there, and fits in period 1.
          const ceilingMinor = amountMinor + headroomMinor;
          const spentMinor = Math.min(ceilingMinor, headroomMinor + 1);
          const means = walletMeans('m1', 1_000_000, { ceiling: { ceilingMinor, originMs: 0, periodMs, periodIndex: 0, periodSpentMinor: spentMinor } });
          const world = new World({ terminals: [{ id: 't1', means: [means] }], scheme: 'sim' });
          const arrivalMs = periodMs - Math.min(epsilonMs, periodMs - 1);
          world.advance(arrivalMs, 1_000);
          // Above approveAboveMinor: the proxy waits for the user's yes, and the clock runs meanwhile.
          world.pay('t1', { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor });
          expect(world.promptFor('o1')?.kind).toBe('approve');
          world.advance(deltaMs, 1_000);
          world.answer('t1', 'o1', true);
          const decidedMs = world.now();
          const inNextPeriod = decidedMs >= periodMs;
          if (inNextPeriod) {
            expect(world.proofOf('o1').amountMinor).toBe(amountMinor);
            expect(world.proxyState('t1').means.m1!.ceiling).toMatchObject({ periodIndex: Math.floor(decidedMs / periodMs), periodSpentMinor: amountMinor });
          } else {
            expect(world.declineOf('o1')).toBe('ceilingExceeded');
            expect(world.proxyState('t1').means.m1!.ceiling).toMatchObject({ periodIndex: 0, periodSpentMinor: spentMinor });
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('makes a fixed amount usable from its start to the end of its period, and never after [INV-2 fixed amount]', () => {
    runProperty(
      fc.property(fc.integer({ min: -10_000, max: 10_000 }), periodMsArb, fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: -3, max: 3 }), fc.boolean(), (validFromMs, periodMs, s0, delta, atEnd) => {
        const means: MeansState = {
          meansId: 'm1', kind: 'prepaid', dedicated: true, localBalanceMinor: 1_000_000, localSpentMinor: 0, balanceVersion: 0,
          fixedAmount: { initialMinor: s0, remainingMinor: s0, validFromMs, periodMs },
        };
        const t = (atEnd ? validFromMs + periodMs : validFromMs) + delta;
        const usable = t >= validFromMs && t < validFromMs + periodMs;
        expect(localApproval(means, 1, t).ok).toBe(usable);
      }),
      { numRuns: 200 },
    );
  });
});

// ------------------------------------------------------------------ interleavings through the proxy's rules

const policy: ProxyPolicy = {
  discrimination: defaultDiscriminationPolicy,
  confirmation: defaultConfirmationPolicy,
  remittance: { ...defaultRemittancePolicy, maxBatchSize: 3 },
  remoteTimeoutMs: 10_000,
};

type Op =
  | { op: 'order'; means: 'm1' | 'm2'; type: PaymentOrder['type']; amount: AmountSpec; inCoverage: boolean; remoteMode: 'debit' | 'authCapture'; dtMs: number }
  | { op: 'complete'; ok: boolean; dtMs: number; figure: number }
  | { op: 'sync'; means: 'm1' | 'm2'; availableMinor: number; versionStep: number }
  | { op: 'remit' }
  | { op: 'ack'; pick: number; figure: number; versionStep: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('order' as const),
      means: fc.constantFrom('m1' as const, 'm2' as const),
      type: fc.constantFrom<PaymentOrder['type']>('internal', 'proximity', 'telepayment'),
      amount: amountSpecArb,
      inCoverage: fc.boolean(),
      remoteMode: fc.constantFrom('debit' as const, 'authCapture' as const),
      // Negative steps are a skewed clock: a terminal restarted with a clock behind the last one it used.
      dtMs: fc.integer({ min: -3_000, max: 8_000 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('complete' as const), ok: fc.boolean(), dtMs: fc.integer({ min: 0, max: 8_000 }), figure: fc.integer({ min: 0, max: 30_000 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('sync' as const), means: fc.constantFrom('m1' as const, 'm2' as const), availableMinor: fc.integer({ min: 0, max: 30_000 }), versionStep: fc.integer({ min: -3, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'remit' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('ack' as const), pick: fc.nat(), figure: fc.integer({ min: 0, max: 30_000 }), versionStep: fc.integer({ min: -3, max: 3 }) }) },
);

describe('means: any interleaving of orders, syncs, remittances and acknowledgements', () => {
  it('keeps MTDL < SL, MTD ≤ PD and every balance ≥ 0 at every step, and unremitted money below SD’s last figure [INV-1, INV-2]', () => {
    const key = keyFor('proxy:p1', 'sim');
    runProperty(
      fc.property(meansArb('m1', 0), meansArb('m2', 0), fc.array(opArb, { minLength: 1, maxLength: 60 }), (m1, m2, ops) => {
        let state: ProxyState = initialProxyState('p1', [{ ...m1, localSpentMinor: 0 }, { ...m2, localSpentMinor: 0 }], policy);
        let t = 0;
        let remote: RemotePayment | undefined;
        let serverVersion = 0;
        // Per means: SD's last applied figure F and what was unremitted U when it was applied (initially SL, 0).
        const lastSync = new Map(['m1', 'm2'].map((id) => [id, { figure: state.means[id]!.localBalanceMinor, unremitted: 0 }]));
        const ceilingSpend = new Map<string, number>();
        const lastIndex = new Map<string, number>();

        const figureFor = (meansId: string, availableMinor: number, versionStep: number) => {
          serverVersion = Math.max(0, serverVersion + versionStep);
          return { meansId, availableMinor, version: serverVersion };
        };
        const applyTracked = (next: ProxyState, before: ProxyState, figures: readonly { meansId: string; availableMinor: number; version: number }[]) => {
          // [INV-1 sync] a figure as fresh as the last one applied sets SL := F − U and MTDL := 0; an older one changes nothing.
          for (const f of figures) {
            const was = before.means[f.meansId]!;
            const now = next.means[f.meansId]!;
            if (f.version >= was.balanceVersion) {
              const u = unremitted(next.journal, f.meansId).amountMinor;
              expect(now.localSpentMinor).toBe(0);
              expect(now.localBalanceMinor).toBe(Math.max(0, f.availableMinor - u));
              lastSync.set(f.meansId, { figure: f.availableMinor, unremitted: u });
            } else {
              expect(now.localBalanceMinor).toBe(was.localBalanceMinor);
              expect(now.localSpentMinor).toBe(was.localSpentMinor);
            }
          }
        };
        const recordSpend = (meansId: string, a: number) => {
          const c = state.means[meansId]!.ceiling;
          if (!c) return;
          const key = `${meansId}#${c.periodIndex}`;
          ceilingSpend.set(key, (ceilingSpend.get(key) ?? 0) + a);
          expect(ceilingSpend.get(key), `[INV-2] spent in period ${c.periodIndex} of ${meansId}`).toBeLessThanOrEqual(c.ceilingMinor);
        };

        let latestMs = 0;
        for (const [i, op] of ops.entries()) {
          const where = `step ${i} (${op.op}) at t=${t}`;
          const before = state;
          let payment: { meansId: string; amountMinor: number; nowMs: number } | undefined;
          if (op.op === 'order') {
            if (remote) continue; // the proxy handles one order at a time
            t += op.dtMs;
            const means = state.means[op.means]!;
            const amountMinor = resolveAmount(op.amount, means, t);
            const order: PaymentOrder = { orderId: `o${i}`, source: { kind: 'app', appId: 'app' }, type: op.type, meansId: op.means, amountMinor, payee: 'shop', remoteMode: op.remoteMode };
            const decision = decideOrder(state, policy, order, { inCoverage: op.inCoverage, nowMs: t, key });
            state = decision.state;
            if (decision.kind === 'approvedLocal') {
              recordSpend(op.means, amountMinor);
              payment = { meansId: op.means, amountMinor, nowMs: t };
            }
            if (decision.kind === 'remote') {
              expect(op.inCoverage || op.type === 'internal', 'a remote payment needs coverage').toBe(true);
              remote = decision.remote;
            }
          } else if (op.op === 'complete') {
            if (!remote) continue;
            // The period may change between the request and SD's answer.
            t += op.dtMs;
            const figure = figureFor(remote.claim.meansId, op.figure, 1);
            const result: ServerResult = {
              kind: 'result', reqId: remote.request.reqId, to: 'p1', requestKind: remote.request.kind, ok: op.ok, code: op.ok ? 'ok' : 'insufficientFunds',
              balances: [figure], serverSig: '',
            };
            const before = state;
            const done = completeRemote(state, remote, result, { nowMs: t, key });
            state = done.state;
            applyTracked(state, before, [figure]);
            if (done.approved) recordSpend(remote.claim.meansId, remote.claim.amountMinor);
            remote = undefined;
          } else if (op.op === 'sync') {
            const before = state;
            const figure = figureFor(op.means, op.availableMinor, op.versionStep);
            state = applyBalances(state, [figure]);
            applyTracked(state, before, [figure]);
          } else if (op.op === 'remit') {
            state = { ...state, journal: formRemittances(state.journal, policy.remittance, requestSigner('p1', key), t) };
          } else {
            const items = state.journal.outbox;
            if (items.length === 0) continue;
            const item = items[op.pick % items.length]!;
            const figure = figureFor(item.meansId, op.figure, op.versionStep);
            const result: ServerResult = { kind: 'result', reqId: item.reqId, to: 'p1', requestKind: item.request.kind, ok: true, code: 'ok', balances: [figure], serverSig: '' };
            const before = state;
            state = applyAcknowledgement(state, result).state;
            applyTracked(state, before, [figure]);
          }

          // The shared transition check (invariants.ts) while the clock moves forward; static checks otherwise.
          const forward = t >= latestMs;
          latestMs = Math.max(latestMs, t);
          for (const [meansId, m] of Object.entries(state.means)) {
            const paid = payment?.meansId === meansId ? payment : null;
            if (forward) checkMeans(m, where, before.means[meansId], paid);
            else checkMeans(m, where);
            // Period indices only move forward, whatever the clock does.
            for (const [name, index] of [['ceiling', m.ceiling?.periodIndex], ['recurring', m.recurring?.periodIndex]] as const) {
              if (index === undefined) continue;
              const k = `${meansId}.${name}`;
              expect(index, `${where}: ${k} went back`).toBeGreaterThanOrEqual(lastIndex.get(k) ?? index);
              lastIndex.set(k, index);
            }
            // [INV-1] what the proxy owes SD without SD knowing stays under SD's last figure (or what it already owed).
            const sync = lastSync.get(meansId)!;
            expect(unremitted(state.journal, meansId).amountMinor, `${where}: unremitted money of ${meansId}`).toBeLessThanOrEqual(Math.max(sync.figure, sync.unremitted));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('ignores stale SL figures: the freshest figure wins, whatever order the figures arrive in [INV-1 sync]', () => {
    runProperty(
      fc.property(
        meansArb('m1', 0),
        fc.uniqueArray(fc.record({ version: fc.integer({ min: 1, max: 1_000 }), availableMinor: fc.integer({ min: 0, max: 50_000 }) }), { selector: (f) => f.version, minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 10_000 }),
        (means, figures, unremittedMinor) => {
          const freshest = figures.reduce((a, b) => (b.version > a.version ? b : a));
          const start = { ...means, balanceVersion: 0 };
          const applied = figures.reduce((m, f) => applySync(m, f.availableMinor, f.version, unremittedMinor), start);
          expect(applied.balanceVersion).toBe(freshest.version);
          expect(applied.localBalanceMinor).toBe(Math.max(0, freshest.availableMinor - unremittedMinor));
          expect(applied.localSpentMinor).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
