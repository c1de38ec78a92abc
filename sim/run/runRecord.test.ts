import { describe, expect, it } from 'vitest';
import { RunRecord } from './runRecord.ts';
import { InvariantBook, RecentEvents } from '../check/checkers.ts';
import type { Proof } from '../../machines/messages.ts';
import type { PaymentPath } from '../../machines/domain/discriminate.ts';

function proof(txId: string, amountMinor: number, path: PaymentPath): Proof {
  return { txId, amountMinor, payee: 'shop', timeMs: 0, counter: 1, proxyId: 't0', meansId: 'm0', sig: 'unsigned', path };
}

function book(): InvariantBook {
  return new InvariantBook(1, () => 0, new RecentEvents(), false);
}

describe('RunRecord', () => {
  it('keeps local approvals in the backlog until remitted, with each lag from its approval, and the peak amount', () => {
    const record = new RunRecord();
    record.recordApproved({ proof: proof('a', 300, 'localOffline'), approvedAtMs: 1_000 });
    record.recordApproved({ proof: proof('b', 200, 'internal'), approvedAtMs: 2_000 });
    record.recordApproved({ proof: proof('r', 999, 'remote'), approvedAtMs: 2_500 });
    expect(record.backlog).toEqual({ count: 2, amountMinor: 500, peakAmountMinor: 500 });
    expect(record.approved.size).toBe(3);
    expect(record.recordRemitted(['a', 'b'], 500, 10_000)).toEqual([9_000, 8_000]);
    expect(record.backlog).toEqual({ count: 0, amountMinor: 0, peakAmountMinor: 500 });
    // A transaction acknowledged again gives no second lag.
    expect(record.recordRemitted(['a'], 300, 11_000)).toEqual([]);
  });

  it('without proofs (a swarm worker) keeps the backlog and lags but no approved payments', () => {
    const record = new RunRecord(false);
    record.recordApproved({ proof: proof('a', 300, 'localBelowThreshold'), approvedAtMs: 0 });
    expect(record.approved.size).toBe(0);
    expect(record.recordRemitted(['a'], 300, 40)).toEqual([40]);
  });

  it('[INV-4] a transaction posted by two different requests is a violation; a resent request naming it again is not', () => {
    const record = new RunRecord();
    const invariants = book();
    record.checkPostedOnce(invariants, 't0/r1', 't0', ['a', 'b']);
    record.checkPostedOnce(invariants, 't0/r1', 't0', ['a']);
    expect(invariants.ok).toBe(true);
    record.checkPostedOnce(invariants, 't0/r2', 't0', ['b']);
    expect(record.duplicatedPostings).toBe(1);
    expect(invariants.violations.map((v) => [v.invariant, v.detail])).toEqual([['INV-4', 'transaction b posted twice: by t0/r1 and again by t0/r2']]);
  });
});
