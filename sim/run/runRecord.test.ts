import { describe, expect, it } from 'vitest';
import { RunRecord } from './runRecord.ts';
import { InvariantBook, RecentEvents } from '../check/invariantBook.ts';
import { AnswersOfSd } from '../check/inv4NothingLostNothingTwice.ts';
import type { Proof, ServerResult } from '../../machines/messages.ts';
import type { PaymentPath } from '../../machines/domain/discriminate.ts';

function proof(txId: string, amountMinor: number, path: PaymentPath): Proof {
  return { txId, amountMinor, payee: 'shop', timeMs: 0, counter: 1, proxyId: 't0', meansId: 'm0', sig: 'unsigned', path };
}

/** An `ok` answer of SD to `to`'s request `reqId`, as a server would store it. */
function answer(to: string, reqId: string, fields: Pick<ServerResult, 'requestKind'> & Partial<ServerResult>): ServerResult {
  return { kind: 'result', reqId, to, ok: true, code: 'ok', serverSig: 'unsigned', ...fields };
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

  it("builds the end checks' input from its approvals and receipts and SD's answers [INV-4], so a reversal SD reported reaches the checks", () => {
    const record = new RunRecord();
    const invariants = book();
    const answers = new AnswersOfSd(invariants);
    record.recordApproved({ proof: proof('a', 300, 'localOffline'), approvedAtMs: 0 });
    record.posProofs.push(proof('p', 50, 'localBelowThreshold'));
    answers.seeAnswer('t0', 'r1', answer('t0', 'r1', { requestKind: 'remit', posted: ['a'] }));
    answers.seeAnswer('t0', 'v1', answer('t0', 'v1', { requestKind: 'release', txId: 'h' }));
    // Another terminal's request naming the same transaction as posted (in mqtt mode: another server's file).
    answers.seeAnswer('t1', 'r9', answer('t1', 'r9', { requestKind: 'remit', posted: ['a'] }));
    const input = record.endCheckInput(answers, { book: invariants, ledgers: [], terminals: [], pos: [], publicKeyOf: () => undefined, serverPublicKey: 'sd', scheme: 'sim' });
    expect([...input.approved.keys()]).toEqual(['a']);
    expect(input.posProofs.map((p) => p.txId)).toEqual(['p']);
    expect([...input.reversed]).toEqual(['h']);
    expect(input.duplicatedPostings).toBe(1);
    expect(invariants.violations.map((v) => [v.invariant, v.detail])).toEqual([['INV-4', 'transaction a posted twice: by t0/r1 and again by t1/r9']]);
  });

  it('checks every remote payment declined to its app as reversed, not only those whose reversal SD acknowledged [INV-4]', () => {
    const record = new RunRecord();
    const answers = new AnswersOfSd(book());
    answers.seeAnswer('t0', 'v1', answer('t0', 'v1', { requestKind: 'release', txId: 'acked' }));
    // Declined to its app (SD refused it, or no answer came in time): its reversal may never have reached SD.
    record.declinedRemote.add('never-reversed');
    const input = record.endCheckInput(answers, { book: book(), ledgers: [], terminals: [], pos: [], publicKeyOf: () => undefined, serverPublicKey: 'sd', scheme: 'sim' });
    expect([...input.reversed].sort()).toEqual(['acked', 'never-reversed']);
  });
});
