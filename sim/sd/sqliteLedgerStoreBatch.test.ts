import { afterAll, describe, it, expect } from 'vitest';
import { answerUntilKilled, checkBatchLedger as check, type BatchAnswer } from './testSupport.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '../../machines/domain/ledger.ts';
import { SqliteLedgerStore } from './sqliteLedgerStore.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-batch-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SQLite ledger with the row cache and group commit: killed with SIGKILL in the middle of a batch', () => {
  const ROUNDS = 3;
  it.each([
    ['synchronous full', 'full', 'ledger.db'],
    ['synchronous full, fsync after the commit (pipelined)', 'full-deferred', 'ledger-deferred.db'],
  ] as const)(`loses no answered request, keeps refusals undone, and every batch whole, over ${ROUNDS} kills (%s)`, async (_name, durability, file) => {
    const path = join(dir, file);
    const answered: BatchAnswer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const printed = await answerUntilKilled(path, durability, `c${round + 1}.`, 60 + 29 * round, round);
      expect(printed.length).toBeGreaterThanOrEqual(60);
      expect(printed.some((a) => a.code === 'insufficientFunds')).toBe(true);
      answered.push(...printed);
      const reader = new SqliteLedgerStore(path, { readonly: true });
      expect(reader.db.pragma('integrity_check', { simple: true })).toBe('ok');
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
