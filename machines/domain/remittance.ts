// Goal: K2, the deferred interaction — the proxy's journal of locally approved transactions and its outbox of
// requests that must reach SD (remittances and deferred captures), with the triggers that start a remittance
// and the retry schedule that keeps resending until SD acknowledges.
// Method: plain data and pure functions. A transaction moves from `pending` into exactly one outbox item, which
// keeps its request id and payload for every retry, so SD can recognise a resend; the item leaves the outbox
// only on SD's acknowledgement. Nothing here relies on the broker delivering anything.

import { sumMinor, type Minor } from './money.ts';
import type { Unsigned } from './requests.ts';
import type { AggregateEntry, CaptureRequest, Proof, ReleaseRequest, RemitRequest, ServerRequest } from '../messages.ts';

/** A locally approved transaction awaiting remittance; its proof is what SD will post. */
export type LocalTx = Proof;

export interface OutboxItem {
  reqId: string;
  request: ServerRequest;
  /** The means the item concerns: it decides the shard the request goes to. */
  meansId: string;
  /** The local transactions this item remits (empty for a capture or a reversal). */
  txs: LocalTx[];
  /** Not sent before this time (a deferred capture waits for delivery of the goods). */
  notBeforeMs: number;
  attempts: number;
  nextAttemptAtMs: number;
  createdAtMs: number;
}

export interface Journal {
  /** Approved locally, not yet in any remittance. */
  pending: LocalTx[];
  /** Sent or to be sent, until acknowledged. */
  outbox: OutboxItem[];
  /** Sequence for request ids made by this proxy. */
  nextSeq: number;
}

export type RemittanceMode = 'grouped' | 'aggregate';

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

export interface RemittanceTriggers {
  /** The next payment while in coverage remits the backlog. */
  onPayment: boolean;
  onCoverageRegained: boolean;
  /** Remit at this interval (a date trigger); null for never. */
  everyMs: number | null;
  /** Remit as soon as this many transactions are pending. */
  backlogCount: number;
}

export interface RemittancePolicy {
  mode: RemittanceMode;
  maxBatchSize: number;
  triggers: RemittanceTriggers;
  retry: RetryPolicy;
}

export type RemittanceTrigger = 'payment' | 'coverageRegained' | 'serverRequest' | 'schedule' | 'backlog';

export const defaultRemittancePolicy: RemittancePolicy = {
  mode: 'grouped',
  maxBatchSize: 50,
  triggers: { onPayment: true, onCoverageRegained: true, everyMs: 3_600_000, backlogCount: 10 },
  retry: { initialMs: 2_000, maxMs: 300_000, multiplier: 2 },
};

export function emptyJournal(): Journal {
  return { pending: [], outbox: [], nextSeq: 1 };
}

/** Does this trigger start a remittance now? Explicit requests from the server always do. */
export function isRemittanceDue(journal: Journal, trigger: RemittanceTrigger, policy: RemittancePolicy): boolean {
  if (journal.pending.length === 0) return false;
  switch (trigger) {
    case 'payment':
      return policy.triggers.onPayment;
    case 'coverageRegained':
      return policy.triggers.onCoverageRegained;
    case 'schedule':
      return policy.triggers.everyMs !== null;
    case 'backlog':
      return journal.pending.length >= policy.triggers.backlogCount;
    case 'serverRequest':
      return true;
  }
}

export function recordLocal(journal: Journal, tx: LocalTx): Journal {
  const pending = journal.pending.slice();
  pending.push(tx);
  return { ...journal, pending };
}

/** Local transactions SD has not acknowledged yet, for a means or in total: the money at risk. */
export function unremitted(journal: Journal, meansId?: string): { count: number; amountMinor: Minor } {
  // Plain loops: this runs on every order and every balance figure, so it allocates nothing but its answer.
  let count = 0;
  let amountMinor = 0;
  for (const tx of journal.pending) {
    if (meansId === undefined || tx.meansId === meansId) {
      count++;
      amountMinor += tx.amountMinor;
    }
  }
  for (const item of journal.outbox) {
    for (const tx of item.txs) {
      if (meansId === undefined || tx.meansId === meansId) {
        count++;
        amountMinor += tx.amountMinor;
      }
    }
  }
  return { count, amountMinor };
}

/** The unremitted amount of one means (as `unremitted(journal, meansId).amountMinor`, without the answer object). */
export function unremittedMinor(journal: Journal, meansId: string): Minor {
  let amountMinor = 0;
  for (const tx of journal.pending) if (tx.meansId === meansId) amountMinor += tx.amountMinor;
  for (const item of journal.outbox) for (const tx of item.txs) if (tx.meansId === meansId) amountMinor += tx.amountMinor;
  return amountMinor;
}

/** Groups transactions by (means, payee) into aggregate entries: their sums plus the ids they cover. */
export function aggregateEntries(txs: readonly LocalTx[]): AggregateEntry[] {
  const byKey = new Map<string, AggregateEntry>();
  for (const tx of txs) {
    const key = `${tx.meansId}\u0000${tx.payee}`;
    let entry = byKey.get(key);
    if (!entry) {
      entry = { meansId: tx.meansId, payee: tx.payee, sumMinor: 0, txIds: [], counters: [] };
      byKey.set(key, entry);
    }
    entry.sumMinor += tx.amountMinor;
    entry.txIds.push(tx.txId);
    entry.counters.push(tx.counter);
  }
  return [...byKey.values()];
}

/** [INV-4 aggregate sum] An aggregate equals the sum of the transactions it covers, and names their counters. */
export function aggregateMatches(entry: AggregateEntry, txs: readonly LocalTx[]): boolean {
  const covered = new Map(txs.map((tx) => [tx.txId, tx]));
  if (entry.txIds.length !== new Set(entry.txIds).size || entry.counters.length !== entry.txIds.length) return false;
  const amounts: Minor[] = [];
  for (const [i, id] of entry.txIds.entries()) {
    const tx = covered.get(id);
    if (!tx || tx.meansId !== entry.meansId || tx.payee !== entry.payee || tx.counter !== entry.counters[i]) return false;
    amounts.push(tx.amountMinor);
  }
  return sumMinor(amounts) === entry.sumMinor;
}

export interface RequestSigner {
  proxyId: string;
  sign<R extends ServerRequest>(unsigned: Unsigned<R>): R;
}

/**
 * Moves every pending transaction into remittance requests, one means at a time (a means lives on one shard) and
 * at most `maxBatchSize` transactions each, ready to send now. Grouped requests carry the signed transactions;
 * aggregate requests carry sums and ids.
 */
export function formRemittances(journal: Journal, policy: RemittancePolicy, signer: RequestSigner, nowMs: number): Journal {
  if (journal.pending.length === 0) return journal;
  const byMeans = new Map<string, LocalTx[]>();
  for (const tx of journal.pending) {
    const list = byMeans.get(tx.meansId);
    if (list) list.push(tx);
    else byMeans.set(tx.meansId, [tx]);
  }
  const outbox = [...journal.outbox];
  let seq = journal.nextSeq;
  for (const [meansId, txsOfMeans] of byMeans) {
    for (let i = 0; i < txsOfMeans.length; i += policy.maxBatchSize) {
      const txs = txsOfMeans.slice(i, i + policy.maxBatchSize);
      const reqId = `${signer.proxyId}:r${seq++}`;
      const request =
        policy.mode === 'grouped'
          ? signer.sign<RemitRequest>({ kind: 'remit', mode: 'grouped', reqId, from: signer.proxyId, transactions: txs })
          : signer.sign<RemitRequest>({ kind: 'remit', mode: 'aggregate', reqId, from: signer.proxyId, aggregates: aggregateEntries(txs) });
      outbox.push({ reqId, request, meansId, txs, notBeforeMs: nowMs, attempts: 0, nextAttemptAtMs: nowMs, createdAtMs: nowMs });
    }
  }
  return { pending: [], outbox, nextSeq: seq };
}

/** Adds a request that must reach SD (a capture or a reversal), not sent before `notBeforeMs`. */
export function queueRequest(journal: Journal, request: ServerRequest, meansId: string, notBeforeMs: number, nowMs: number): Journal {
  return withQueued(journal, request, meansId, notBeforeMs, nowMs, journal.nextSeq);
}

/** The journal with one more outbox item and `nextSeq` set: one new journal object, not one per change. */
function withQueued(journal: Journal, request: ServerRequest, meansId: string, notBeforeMs: number, nowMs: number, nextSeq: number): Journal {
  const item: OutboxItem = { reqId: request.reqId, request, meansId, txs: [], notBeforeMs, attempts: 0, nextAttemptAtMs: notBeforeMs, createdAtMs: nowMs };
  const outbox = journal.outbox.slice();
  outbox.push(item);
  return { ...journal, outbox, nextSeq };
}

/** Queues the deferred confirmation of an authorised remote payment. */
export function queueCapture(journal: Journal, signer: RequestSigner, claim: { txId: string; amountMinor: Minor; meansId: string }, notBeforeMs: number, nowMs: number): Journal {
  const reqId = `${signer.proxyId}:c${journal.nextSeq}`;
  const request = signer.sign<CaptureRequest>({ kind: 'capture', reqId, from: signer.proxyId, txId: claim.txId, amountMinor: claim.amountMinor });
  return withQueued(journal, request, claim.meansId, notBeforeMs, nowMs, journal.nextSeq + 1);
}

/** Queues the reversal of a remote payment whose answer never came, so SD undoes a hold or debit it made. */
export function queueReversal(journal: Journal, signer: RequestSigner, claim: { txId: string; meansId: string }, nowMs: number): Journal {
  const reqId = `${signer.proxyId}:v${journal.nextSeq}`;
  const request = signer.sign<ReleaseRequest>({ kind: 'release', reqId, from: signer.proxyId, txId: claim.txId });
  return withQueued(journal, request, claim.meansId, nowMs, nowMs, journal.nextSeq + 1);
}

/** A number in [0,1) from a string, so retry jitter is deterministic without carrying a random generator. */
function hash01(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h / 0x1_0000_0000;
}

/** Exponential backoff with jitter in [½, 1] of the capped delay: retries of many proxies spread out. */
export function retryDelayMs(policy: RetryPolicy, attempts: number, jitterKey: string): number {
  const capped = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** Math.max(0, attempts - 1));
  return Math.round(capped * (0.5 + 0.5 * hash01(`${jitterKey}#${attempts}`)));
}

/** Items due for (re)sending at `nowMs`. */
export function dueItems(journal: Journal, nowMs: number): OutboxItem[] {
  return journal.outbox.filter((item) => item.nextAttemptAtMs <= nowMs);
}

/** Marks items as sent now and schedules their next retry. */
export function markSent(journal: Journal, reqIds: readonly string[], policy: RetryPolicy, nowMs: number): Journal {
  if (reqIds.length === 0) return journal;
  const sent = new Set(reqIds);
  return {
    ...journal,
    outbox: journal.outbox.map((item) => {
      if (!sent.has(item.reqId)) return item;
      const attempts = item.attempts + 1;
      return { ...item, attempts, nextAttemptAtMs: nowMs + retryDelayMs(policy, attempts, item.reqId) };
    }),
  };
}

/** Makes every outbox item due now (coverage came back: no reason to wait out a backoff meant for an outage). */
export function expediteAll(journal: Journal, nowMs: number): Journal {
  return { ...journal, outbox: journal.outbox.map((item) => ({ ...item, nextAttemptAtMs: Math.max(item.notBeforeMs, Math.min(item.nextAttemptAtMs, nowMs)) })) };
}

/** Removes an acknowledged item; returns the journal and the item (undefined for an unknown or repeated ack). */
export function acknowledge(journal: Journal, reqId: string): { journal: Journal; item: OutboxItem | undefined } {
  const index = journal.outbox.findIndex((item) => item.reqId === reqId);
  if (index < 0) return { journal, item: undefined };
  const outbox = journal.outbox.slice();
  const [item] = outbox.splice(index, 1);
  return { journal: { ...journal, outbox }, item };
}

/** Earliest time an outbox item wants sending, or undefined when there is nothing to send. */
export function nextDueMs(journal: Journal): number | undefined {
  let earliest: number | undefined;
  for (const item of journal.outbox) if (earliest === undefined || item.nextAttemptAtMs < earliest) earliest = item.nextAttemptAtMs;
  return earliest;
}

/** Nothing waits to reach SD: pending empty and outbox empty [INV-7 liveness]. */
export function isDrained(journal: Journal): boolean {
  return journal.pending.length === 0 && journal.outbox.length === 0;
}
