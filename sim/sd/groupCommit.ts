// Goal: the ledger child of a payment server with group commit: one fsync per batch of requests instead of one
// per request, without ever sending an answer before its write is committed [INV-4 nothing lost].
// Method: see createGroupCommitLedgerActor; used by `payfleet server` (serverProcess.ts, `--commit group`) and by
// load/bench/server.ts, which measures it.

import type { Ledger } from '../../machines/domain/ledger.ts';
import { createLedgerActor, type LedgerEvent, type LedgerWork } from '../../machines/server.ts';

/**
 * The ledger child with group commit: the requests that arrive in one turn of the event loop are applied in one
 * store transaction (each request's own transaction becomes a savepoint inside it, so a refusal still rolls back
 * only that request), and their answers are handed back only after that one commit. With synchronous FULL this
 * pays one fsync per batch instead of one per request, and keeps the rule of `createLedgerActor`: no answer
 * leaves before its write is committed. A failure that is not a refusal (the file failing) rolls the whole batch
 * back, answers none of it (the senders resend) and is reported through `onFailure`.
 */
export function createGroupCommitLedgerActor(ledger: Ledger, onFailure: (error: unknown) => void = (error) => { throw error; }) {
  return createLedgerActor(ledger, () => {
    let queue: LedgerWork[] = [];
    let pending: ReturnType<typeof setImmediate> | undefined;
    const flush = () => {
      pending = undefined;
      const batch = queue;
      queue = [];
      const answers: Array<{ work: LedgerWork; event: LedgerEvent }> = [];
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
      // Committed: only now do the answers go out.
      for (const { work, event } of answers) work.answer(event);
    };
    return {
      take(work) {
        queue.push(work);
        pending ??= setImmediate(flush);
      },
      // Stopped with requests queued: they were never applied, so dropping them is safe (their senders resend).
      stop() {
        if (pending) clearImmediate(pending);
        queue = [];
      },
    };
  });
}
