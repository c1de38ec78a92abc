// Goal: the ledger child of a payment server with group commit: one fsync per batch of requests instead of one
// per request, without ever sending an answer before its write is durable [INV-4 nothing lost] — and, on a store
// that syncs after the fact, without the event loop waiting in that fsync while the next batch could be applied.
// Method: see createGroupCommitLedgerActor; used by `payfleet server` (serverProcess.ts, `--commit group`) and by
// load/bench/server.ts, which measures it.

import type { Ledger } from '../../machines/domain/ledger.ts';
import { createLedgerActor, type LedgerEvent, type LedgerWork } from '../../machines/server.ts';

/** Makes every commit made before the call durable, then calls back (a deferred-sync store's `syncCommitted`). */
export type SyncCommitted = (done: (error: Error | null) => void) => void;

/**
 * The ledger child with group commit: the requests that arrive in one turn of the event loop are applied in one
 * store transaction (each request's own transaction becomes a savepoint inside it, so a refusal still rolls back
 * only that request), and their answers are handed back only after that one commit is durable. With synchronous
 * FULL this pays one fsync per batch instead of one per request, and keeps the rule of `createLedgerActor`: no
 * answer leaves before its write is on disk. A failure that is not a refusal (the file failing) rolls the whole
 * batch back, answers none of it (the senders resend) and is reported through `onFailure`.
 *
 * With `syncCommitted` (a store that commits without its fsync, sqliteLedgerStore.ts `deferSync`) the commits are
 * pipelined: a committed batch's answers wait for a sync started after its commit, and while that sync runs off
 * the event loop the next batches are applied and committed; they wait for the next sync, which covers all of
 * them (one fsync of the log flushes every commit before it). A batch applied on top of a commit not yet durable
 * can only be answered after a later sync, which makes the earlier one durable too, so no answer ever rests on
 * an undurable write. A failed sync answers nothing still waiting and is reported through `onFailure`.
 */
export function createGroupCommitLedgerActor(ledger: Ledger, onFailure: (error: unknown) => void = (error) => { throw error; }, syncCommitted?: SyncCommitted) {
  return createLedgerActor(ledger, () => {
    type Answer = { work: LedgerWork; event: LedgerEvent };
    let queue: LedgerWork[] = [];
    let pending: ReturnType<typeof setImmediate> | undefined;
    /** Answers of committed batches that no sync in flight covers yet. */
    let awaitingSync: Answer[] = [];
    let syncing = false;
    let stopped = false;
    const answerAll = (answers: readonly Answer[]) => {
      for (const { work, event } of answers) work.answer(event);
    };
    const startSync = () => {
      if (syncing || stopped || awaitingSync.length === 0) return;
      const covered = awaitingSync;
      awaitingSync = [];
      syncing = true;
      syncCommitted!((error) => {
        syncing = false;
        // Stopped meanwhile: the answers are dropped, as a queue is (their senders resend and get the stored answer).
        if (stopped) return;
        if (error) {
          awaitingSync = [];
          onFailure(error);
          return;
        }
        answerAll(covered);
        startSync();
      });
    };
    const flush = () => {
      pending = undefined;
      const batch = queue;
      queue = [];
      const answers: Answer[] = [];
      try {
        // On a store whose reads are round trips (PostgreSQL), a dry run of the batch learns the rows it reads and
        // loads them in one; apply() has no effect outside the store, and the dry run's writes are dropped (its
        // answers too: only the real run's, after the commit, go out).
        ledger.store.prefetch?.(() => {
          for (const work of batch) work.apply();
        });
        ledger.store.transaction(() => {
          for (const work of batch) answers.push({ work, event: work.apply() });
        });
      } catch (error) {
        onFailure(error);
        return;
      }
      // Committed (and durable, unless the store syncs afterwards): only then do the answers go out.
      if (!syncCommitted) return answerAll(answers);
      for (const answer of answers) awaitingSync.push(answer);
      startSync();
    };
    return {
      take(work) {
        queue.push(work);
        pending ??= setImmediate(flush);
      },
      // Stopped with requests queued: they were never applied, so dropping them is safe (their senders resend).
      stop() {
        stopped = true;
        if (pending) clearImmediate(pending);
        queue = [];
        awaitingSync = [];
      },
    };
  });
}
