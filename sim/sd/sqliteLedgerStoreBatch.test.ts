import { afterAll, describe, it, expect } from 'vitest';
import { runUntilKilled } from './testSupport.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ledger, meansAccount } from '../../machines/domain/ledger.ts';
import { SqliteLedgerStore, type SynchronousMode } from './sqliteLedgerStore.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-batch-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const childScript = fileURLToPath(new URL('./sqliteLedgerStoreBatch.child.ts', import.meta.url));
// As in the child (importing it would run it).
const MEANS = 10;
const OPENING_MINOR = 1_000_000;
const BATCH = 8;

interface Answer { reqId: string; code: string; txId: string; counter: number }

/** Runs the batch writer until it has printed `answers` answers, then kills it with SIGKILL `delayMs` later. */
function answerUntilKilled(path: string, synchronous: SynchronousMode, tag: string, answers: number, delayMs: number): Promise<Answer[]> {
  return runUntilKilled(childScript, [path, synchronous, tag], (line) => {
    const [word, reqId, code, txId, counter] = line.split(' ');
    return word === 'answered' ? { reqId: reqId!, code: code!, txId: txId!, counter: Number(counter) } : undefined;
  }, answers, delayMs);
}

/** Checks a ledger file against every answer the killed writers handed back. */
function check(store: SqliteLedgerStore, answered: readonly Answer[], kills: number): void {
  expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
  const ledger = new Ledger(store);
  for (const a of answered) {
    // [INV-4 nothing lost] an answer that left the process is on disk, with the same outcome.
    expect(store.getResult('p1', a.reqId)?.result.code, a.reqId).toBe(a.code);
    if (a.code === 'ok') {
      expect(ledger.postingOf(a.txId)?.via, a.txId).toBe('debit');
      expect(store.getCounterUse('p1', a.counter), a.txId).toBe(a.txId);
    } else {
      // A refusal rolled back only itself: its counter use and anything else it wrote are gone.
      expect(a.code).toBe('insufficientFunds');
      expect(ledger.postingOf(a.txId), a.txId).toBeUndefined();
      expect(store.getCounterUse('p1', a.counter), a.txId).toBeUndefined();
    }
  }
  // Beyond what was printed, at most the batch in flight at each kill may have been committed.
  const postings = ledger.postings();
  const printedOk = answered.filter((a) => a.code === 'ok').length;
  expect(postings.length).toBeGreaterThanOrEqual(printedOk);
  expect(postings.length - printedOk).toBeLessThanOrEqual(BATCH * kills);
  // [INV-3 conservation], and each means holds its opening balance less exactly what was posted from it.
  expect(store.sumOfBalancesMinor()).toBe(0);
  for (let m = 0; m < MEANS; m++) {
    const spent = postings.filter((p) => p.meansId === `m${m}`).reduce((sum, p) => sum + p.amountMinor!, 0);
    expect(store.getAccount(meansAccount(`m${m}`))?.balanceMinor).toBe(OPENING_MINOR - spent);
  }
}

describe('SQLite ledger with the row cache and group commit: killed with SIGKILL in the middle of a batch', () => {
  const ROUNDS = 3;
  it(`loses no answered request, keeps refusals undone, and every batch whole, over ${ROUNDS} kills (synchronous full)`, async () => {
    const path = join(dir, 'ledger.db');
    const answered: Answer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const printed = await answerUntilKilled(path, 'full', `c${round + 1}.`, 60 + 29 * round, round);
      expect(printed.length).toBeGreaterThanOrEqual(60);
      expect(printed.some((a) => a.code === 'insufficientFunds')).toBe(true);
      answered.push(...printed);
      const reader = new SqliteLedgerStore(path, { readonly: true });
      check(reader, answered, round + 1);
      reader.close();
    }
    // Reopened for writing, the file goes on where the dead writers stopped, and the cache starts from the file.
    const store = new SqliteLedgerStore(path);
    check(store, answered, ROUNDS);
    const ledger = new Ledger(store);
    const before = ledger.balanceOf('m0').availableMinor;
    ledger.debit({ txId: 'after', meansId: 'm0', payee: 'shop0', amountMinor: 1, requestId: 'p1/after', proxyId: 'p1' });
    expect(store.transaction(() => ledger.balanceOf('m0').availableMinor)).toBe(before - 1);
    expect(store.sumOfBalancesMinor()).toBe(0);
    store.close();
  });
});
