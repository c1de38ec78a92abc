// Goal: K2 batching holds for any backlog and any sequence of acknowledgements: an aggregate equals the sum of
// the transactions it covers and covers each exactly once; `formRemittances` puts every pending transaction in
// exactly one remittance, groups per means, respects maxBatchSize and signs what it sends; no transaction is ever
// in two remittances, none is lost between pending, outbox and acknowledged [INV-4].
// Method: random backlogs of signed local transactions ('sim' keys, so the suite stays fast), random policies,
// and random interleavings of record / form / acknowledge / duplicate acknowledge / send / expedite, with the
// whole-journal accounting checked after every step.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  acknowledge,
  aggregateEntries,
  aggregateMatches,
  emptyJournal,
  expediteAll,
  formRemittances,
  markSent,
  recordLocal,
  retryDelayMs,
  unremitted,
  type Journal,
  type LocalTx,
  type RemittancePolicy,
} from '../machines/domain/remittance.ts';
import { defaultRemittancePolicy } from '../machines/domain/remittance.ts';
import { requestSigner } from '../machines/domain/proxyRules.ts';
import { signClaim, type PaymentClaim } from '../machines/domain/signature.ts';
import { signProof, verifyRequest } from '../machines/domain/requests.ts';
import type { RemitRequest } from '../machines/messages.ts';
import { keyFor } from './arbitraries.ts';
import { runProperty } from './fc.ts';

const key = keyFor('proxy:p1', 'sim');
const signer = requestSigner('p1', key);

/** A signed local transaction of proxy p1 with a unique counter. */
function localTx(counter: number, meansId: string, payee: string, amountMinor: number): LocalTx {
  const claim: PaymentClaim = { txId: `p1:t${counter}`, amountMinor, payee, timeMs: counter * 10, counter, proxyId: 'p1', meansId };
  return signProof(key, claim, 'localOffline');
}

const txSpecArb = fc.record({ meansId: fc.constantFrom('m1', 'm2', 'm3'), payee: fc.constantFrom('shop', 'cafe', 'game'), amountMinor: fc.integer({ min: 1, max: 5_000 }) });
const txsArb = fc.array(txSpecArb, { maxLength: 30 }).map((specs) => specs.map((s, i) => localTx(i + 1, s.meansId, s.payee, s.amountMinor)));

const policyArb: fc.Arbitrary<RemittancePolicy> = fc.record({ mode: fc.constantFrom('grouped' as const, 'aggregate' as const), maxBatchSize: fc.integer({ min: 1, max: 6 }) }).map((p) => ({
  ...defaultRemittancePolicy,
  ...p,
}));

/** The transaction ids a remittance request names, whatever its mode. */
function idsOf(request: RemitRequest): string[] {
  return request.mode === 'grouped' ? request.transactions.map((t) => t.txId) : request.aggregates.flatMap((a) => a.txIds);
}

describe('remittance: aggregates', () => {
  it('makes one aggregate per (means, payee) whose sum is exactly the sum of the transactions it names [INV-4 aggregate sum]', () => {
    runProperty(
      fc.property(txsArb, (txs) => {
        const entries = aggregateEntries(txs);
        const named = entries.flatMap((e) => e.txIds);
        expect(named.slice().sort()).toEqual(txs.map((t) => t.txId).sort());
        expect(new Set(entries.map((e) => `${e.meansId}/${e.payee}`)).size).toBe(entries.length);
        for (const entry of entries) {
          const covered = txs.filter((t) => t.meansId === entry.meansId && t.payee === entry.payee);
          expect(entry.txIds).toEqual(covered.map((t) => t.txId));
          expect(entry.sumMinor).toBe(covered.reduce((s, t) => s + t.amountMinor, 0));
          expect(aggregateMatches(entry, txs)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('refuses to match an aggregate whose sum or ids were changed [INV-4 aggregate sum]', () => {
    runProperty(
      fc.property(txsArb.filter((t) => t.length > 0), fc.integer({ min: 1, max: 1_000 }), fc.nat(), (txs, delta, pick) => {
        const entries = aggregateEntries(txs);
        const entry = entries[pick % entries.length]!;
        expect(aggregateMatches({ ...entry, sumMinor: entry.sumMinor + delta }, txs)).toBe(false);
        expect(aggregateMatches({ ...entry, txIds: [...entry.txIds, entry.txIds[0]!] }, txs)).toBe(false);
        if (entry.txIds.length > 1) expect(aggregateMatches({ ...entry, txIds: entry.txIds.slice(0, -1) }, txs)).toBe(false);
      }),
      { numRuns: 150 },
    );
  });
});

describe('remittance: forming remittances', () => {
  it('puts every pending transaction in exactly one signed request, per means, at most maxBatchSize each [INV-4]', () => {
    runProperty(
      fc.property(txsArb, policyArb, (txs, policy) => {
        const journal = txs.reduce(recordLocal, emptyJournal());
        const formed = formRemittances(journal, policy, signer, 1_000);
        expect(formed.pending).toEqual([]);
        expect(unremitted(formed)).toEqual(unremitted(journal));
        const seen = new Map<string, string>();
        for (const item of formed.outbox) {
          const request = item.request as RemitRequest;
          expect(request.kind).toBe('remit');
          expect(request.mode).toBe(policy.mode);
          expect(request.reqId).toBe(item.reqId);
          expect(verifyRequest('sim', key.publicKey, request)).toBe(true);
          expect(item.txs.length).toBeGreaterThan(0);
          expect(item.txs.length).toBeLessThanOrEqual(policy.maxBatchSize);
          // One means per request: a means lives on one shard.
          expect(item.txs.every((t) => t.meansId === item.meansId)).toBe(true);
          // The request names exactly the item's transactions; an aggregate's sums are theirs.
          expect(idsOf(request).slice().sort()).toEqual(item.txs.map((t) => t.txId).sort());
          if (request.mode === 'aggregate') for (const entry of request.aggregates) expect(aggregateMatches(entry, item.txs)).toBe(true);
          else expect(request.transactions).toEqual(item.txs);
          for (const tx of item.txs) {
            expect(seen.has(tx.txId), `${tx.txId} is in ${seen.get(tx.txId)} and ${item.reqId}`).toBe(false);
            seen.set(tx.txId, item.reqId);
          }
        }
        expect(seen.size).toBe(txs.length);
        expect(new Set(formed.outbox.map((i) => i.reqId)).size).toBe(formed.outbox.length);
        // No needless split: each means takes ⌈n / maxBatchSize⌉ requests.
        for (const meansId of new Set(txs.map((t) => t.meansId))) {
          const n = txs.filter((t) => t.meansId === meansId).length;
          expect(formed.outbox.filter((i) => i.meansId === meansId).length).toBe(Math.ceil(n / policy.maxBatchSize));
        }
      }),
      { numRuns: 200 },
    );
  });
});

type JournalOp =
  | { op: 'record'; spec: { meansId: string; payee: string; amountMinor: number } }
  | { op: 'form' }
  | { op: 'ack'; pick: number }
  | { op: 'ackAgain'; pick: number }
  | { op: 'ackUnknown' }
  | { op: 'send'; dtMs: number }
  | { op: 'expedite' };

const journalOpArb: fc.Arbitrary<JournalOp> = fc.oneof(
  { weight: 4, arbitrary: txSpecArb.map((spec) => ({ op: 'record' as const, spec })) },
  { weight: 2, arbitrary: fc.constant({ op: 'form' as const }) },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ op: 'ack' as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ op: 'ackAgain' as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ op: 'ackUnknown' as const }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 600_000 }).map((dtMs) => ({ op: 'send' as const, dtMs })) },
  { weight: 1, arbitrary: fc.constant({ op: 'expedite' as const }) },
);

describe('remittance: the journal under any sequence of acknowledgements', () => {
  it('never loses a transaction and never puts one in two remittances; repeated or unknown acks change nothing [INV-4]', () => {
    runProperty(
      fc.property(policyArb, fc.array(journalOpArb, { maxLength: 80 }), (policy, ops) => {
        let journal: Journal = emptyJournal();
        let t = 0;
        let counter = 0;
        const recorded = new Map<string, LocalTx>();
        const acknowledged = new Map<string, string>();
        const ackedReqIds: string[] = [];
        const everInItem = new Map<string, string>();
        for (const op of ops) {
          switch (op.op) {
            case 'record': {
              const tx = localTx(++counter, op.spec.meansId, op.spec.payee, op.spec.amountMinor);
              recorded.set(tx.txId, tx);
              journal = recordLocal(journal, tx);
              break;
            }
            case 'form':
              journal = formRemittances(journal, policy, signer, t);
              for (const item of journal.outbox) {
                for (const tx of item.txs) {
                  const before = everInItem.get(tx.txId);
                  // [INV-4] a transaction, once in a remittance, is never put in another one.
                  expect(before === undefined || before === item.reqId, `${tx.txId} in ${before} and ${item.reqId}`).toBe(true);
                  everInItem.set(tx.txId, item.reqId);
                }
              }
              break;
            case 'ack': {
              if (journal.outbox.length === 0) break;
              const item = journal.outbox[op.pick % journal.outbox.length]!;
              const { journal: next, item: removed } = acknowledge(journal, item.reqId);
              expect(removed?.reqId).toBe(item.reqId);
              expect(next.outbox.length).toBe(journal.outbox.length - 1);
              for (const tx of removed!.txs) acknowledged.set(tx.txId, item.reqId);
              ackedReqIds.push(item.reqId);
              journal = next;
              break;
            }
            case 'ackAgain': {
              if (ackedReqIds.length === 0) break;
              const { journal: next, item } = acknowledge(journal, ackedReqIds[op.pick % ackedReqIds.length]!);
              expect(item).toBeUndefined();
              expect(next).toEqual(journal);
              break;
            }
            case 'ackUnknown': {
              const { journal: next, item } = acknowledge(journal, 'p1:r-unknown');
              expect(item).toBeUndefined();
              expect(next).toEqual(journal);
              break;
            }
            case 'send':
              t += op.dtMs;
              journal = markSent(journal, journal.outbox.filter((i) => i.nextAttemptAtMs <= t).map((i) => i.reqId), policy.retry, t);
              for (const item of journal.outbox) expect(item.nextAttemptAtMs).toBeGreaterThanOrEqual(item.notBeforeMs);
              break;
            case 'expedite':
              journal = expediteAll(journal, t);
              for (const item of journal.outbox) expect(item.nextAttemptAtMs).toBeLessThanOrEqual(Math.max(t, item.notBeforeMs));
              break;
          }
          // Every recorded transaction is in exactly one place: pending, one outbox item, or acknowledged.
          const places = new Map<string, number>();
          const count = (txId: string) => places.set(txId, (places.get(txId) ?? 0) + 1);
          journal.pending.forEach((tx) => count(tx.txId));
          journal.outbox.forEach((item) => item.txs.forEach((tx) => count(tx.txId)));
          acknowledged.forEach((_, txId) => count(txId));
          expect([...places.keys()].sort()).toEqual([...recorded.keys()].sort());
          for (const [txId, n] of places) expect(n, `${txId} is in ${n} places`).toBe(1);
          const owed = [...recorded.values()].filter((tx) => !acknowledged.has(tx.txId));
          expect(unremitted(journal)).toEqual({ count: owed.length, amountMinor: owed.reduce((s, tx) => s + tx.amountMinor, 0) });
        }
      }),
      { numRuns: 150 },
    );
  });

  it('backs off exponentially with jitter in [½, 1] of the capped delay, and never beyond the cap', () => {
    runProperty(
      fc.property(
        fc.record({ initialMs: fc.integer({ min: 1, max: 10_000 }), maxMs: fc.integer({ min: 1, max: 1_000_000 }), multiplier: fc.integer({ min: 1, max: 4 }) }),
        fc.integer({ min: 1, max: 40 }),
        fc.string({ maxLength: 12 }),
        (retry, attempts, jitterKey) => {
          const capped = Math.min(retry.maxMs, retry.initialMs * retry.multiplier ** (attempts - 1));
          const delay = retryDelayMs(retry, attempts, jitterKey);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(capped / 2));
          expect(delay).toBeLessThanOrEqual(capped);
          expect(retryDelayMs(retry, attempts, jitterKey)).toBe(delay);
        },
      ),
      { numRuns: 200 },
    );
  });
});
