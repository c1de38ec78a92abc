import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadScenarioText } from '../scenario/load.ts';
import { runVirtual } from '../run/runVirtual.ts';
import { Ledger, OUTSIDE_ACCOUNT, meansAccount } from '../../machines/domain/ledger.ts';
import { applyTransfer } from '../../machines/domain/ledgerAccounts.ts';

// Means kept low and topped up from outside: prepaid and postpaid paying remote debits and authorisations, a shared
// means also spent elsewhere, POS sales remitted later, and a shard crash in the middle.
const TOP_UPS = `
name: top-ups
seed: 11
duration: 30m
drain: 20m
crypto: sim
population:
  terminals: 40
  shards: 2
  means:
    - { name: prepaid, kind: prepaid, openingBalanceMinor: 2500, weight: 2, topUp: { belowMinor: 2000, amount: { uniformMinor: [3000, 6000] } } }
    - { name: postpaid, kind: postpaid, creditLimitMinor: 3000, weight: 1, topUp: { belowMinor: 1500, amount: { fixedMinor: 4000 } } }
    - { name: shared, kind: prepaid, dedicated: false, openingBalanceMinor: 3000, weight: 1, elsewhere: { ordersPerHour: 4, amount: { fixedMinor: 700 } }, topUp: { belowMinor: 1000, amount: { lognormal: { medianMinor: 3000, p99Minor: 8000 } } } }
    - { name: plain, kind: prepaid, openingBalanceMinor: 20000, weight: 1 }
  apps:
    - { name: shop, type: telepayment, ordersPerHour: 6, amount: { lognormal: { medianMinor: 900, p99Minor: 4000 } } }
    - { name: video, type: telepayment, ordersPerHour: 2, amount: { fixedMinor: 399 }, remoteMode: authCapture, captureAfter: 1m }
  pos: { units: 2, visitsPerTerminalPerHour: 2, amount: { uniformMinor: [100, 1500] } }
coverage: { meanOnDuration: 20m, meanOffDuration: 2m }
faults:
  - { at: 10m, kind: serverCrash, shard: 1, restartAfter: 1m }
`;

const scenario = () => loadScenarioText(TOP_UPS, 'top-ups.yaml');

type TopUpAfter = (this: Ledger, meansId: string, trigger: string) => void;
const prototype = Ledger.prototype as unknown as { topUpAfter: TopUpAfter };

/** Plants a bug in how the ledger makes its top-ups: `extra` runs after each real one. */
function plant(extra: (ledger: Ledger, meansId: string, trigger: string) => void): void {
  const original = prototype.topUpAfter;
  vi.spyOn(prototype, 'topUpAfter').mockImplementation(function (this: Ledger, meansId: string, trigger: string) {
    const before = this.topUpsMade;
    original.call(this, meansId, trigger);
    if (this.topUpsMade > before) extra(this, meansId, trigger);
  });
}

const inv3 = (summary: ReturnType<typeof runVirtual>['summary']) => summary.invariants.find((i) => i.id === 'INV-3')!;

describe('top-ups: money entering from outside [INV-3]', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('keeps the means funded from outside, and a run with top-ups passes every check', () => {
    const { summary } = runVirtual(scenario());
    expect(summary.violation).toBeUndefined();
    expect(summary.ok).toBe(true);
    expect(summary.ledger.topUps!.count).toBeGreaterThan(10);
    expect(summary.ledger.topUps!.amountMinor).toBeGreaterThan(summary.ledger.topUps!.count * 1000);
    expect(summary.ledger.sumOfBalancesMinor).toBe(0);
  });

  it('catches a top-up credited twice', () => {
    plant((ledger, meansId, trigger) => {
      applyTransfer(ledger.store, `top:${trigger}/again`, OUTSIDE_ACCOUNT, meansAccount(meansId), 500, 'the same top-up credited again');
    });
    const { summary } = runVirtual(scenario());
    expect(summary.ok).toBe(false);
    expect(inv3(summary).violations).toBeGreaterThan(0);
    expect(summary.violation?.message).toMatch(/answers no posting/);
  });

  it('catches a top-up credited without being recorded', () => {
    plant((ledger, meansId, trigger) => {
      applyTransfer(ledger.store, `cash:${trigger}`, OUTSIDE_ACCOUNT, meansAccount(meansId), 500, 'an unrecorded credit');
    });
    const { summary } = runVirtual(scenario());
    expect(summary.ok).toBe(false);
    expect(inv3(summary).violations).toBeGreaterThan(0);
    expect(summary.violation?.message).toMatch(/came in from outside, but the \d+ recorded top-ups sum to/);
  });
});
