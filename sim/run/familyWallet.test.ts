// The shipped family-wallet scenario (issue 13 items 4 and 6) is the bar: it ends OK with every invariant INV-1..7
// checked, payments made offline on shared means, a loss account that adds up by cause and means, and every purse
// of local value on a SIM reconciled with SD's books.
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../scenario/load.ts';
import { runVirtual } from './runVirtual.ts';
import { LOSS_ACCOUNT } from '../../machines/domain/ledger.ts';
import { proxyStateOf } from '../core/fleet.ts';
import { purseValueMinor } from '../../machines/domain/localValue.ts';

describe('scenarios/family-wallet.yaml', () => {
  it('ends OK with INV-1..7 checked, offline payments on shared means, the loss account by cause, purses reconciled', () => {
    const { summary, simulator } = runVirtual(loadScenario('scenarios/family-wallet.yaml'), { file: 'scenarios/family-wallet.yaml' });
    const seed = `seed ${summary.seed}, trace ${summary.traceHash}`;
    expect(summary.ok, `${seed}: ${summary.violation?.message}`).toBe(true);
    for (const id of ['INV-1', 'INV-2', 'INV-3', 'INV-4', 'INV-5', 'INV-6', 'INV-7']) {
      expect(summary.invariants.find((i) => i.id === id)?.checks, `${id} (${seed})`).toBeGreaterThan(0);
    }
    expect(summary.ledger.lost).toBe(0);
    const shared = summary.sharedMeans!;
    expect(shared.means).toBeGreaterThan(0);
    expect(shared.offlinePayments, seed).toBeGreaterThan(0);
    expect(shared.offlinePayments).toBeLessThanOrEqual(summary.orders.byPath.localOffline ?? 0);

    // The breakdown adds up to what the shards' loss accounts paid, and names a cause for all of it.
    const loss = summary.lossAccount!;
    const paid = simulator.fleet.ledgers.reduce((sum, ledger) => sum - (ledger.accountOf(LOSS_ACCOUNT)?.balanceMinor ?? 0), 0);
    expect(loss.totalMinor).toBe(paid);
    expect(Object.values(loss.byCause).reduce((a, b) => a + b, 0)).toBe(paid);
    expect(loss.byCause.unexplained).toBe(0);
    expect(loss.byCause.sharedOffline, seed).toBeGreaterThan(0);
    for (const entry of loss.byMeans.filter((m) => m.cause === 'sharedOffline')) expect(entry.meansId).toMatch(/^f\d+\.\d+$/);

    // Every terminal of a local-value profile has a purse that was funded and used, and is worth what SD holds.
    let purses = 0;
    let spent = 0;
    for (const slot of simulator.fleet.terminals) {
      const state = proxyStateOf(slot)!;
      for (const means of Object.values(state.means)) {
        if (!means.localValue) continue;
        purses++;
        const sd = simulator.fleet.ledgerOfMeans(means.meansId).accountOf(`means:${means.meansId}`)?.balanceMinor ?? 0;
        expect(sd, `${slot.plan.terminalId} ${means.meansId}`).toBe(purseValueMinor(means));
      }
    }
    for (const ledger of simulator.fleet.ledgers) spent += ledger.postings().filter((p) => p.meansId.includes('/v:')).length;
    expect(purses).toBe(summary.terminals);
    expect(spent, seed).toBeGreaterThan(0);
    expect(summary.orders.byPath.internal).toBeGreaterThan(0);
  }, 60_000);
});
