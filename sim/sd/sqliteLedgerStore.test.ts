import { afterAll, describe, it, expect } from 'vitest';
import { errorOf, runUntilKilled } from './testSupport.ts';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Ledger, meansAccount } from '../../machines/domain/ledger.ts';
import { LedgerFileError, SCHEMA_VERSION, SqliteLedgerStore, type SynchronousMode } from './sqliteLedgerStore.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `ledger-${files++}.db`);

function fundedLedger(path: string, synchronous?: SynchronousMode) {
  const store = new SqliteLedgerStore(path, { synchronous });
  const ledger = new Ledger(store);
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
  ledger.openMeans({ meansId: 'm2', kind: 'postpaid', openingBalanceMinor: 0, creditLimitMinor: 500 });
  return { store, ledger };
}

describe('SqliteLedgerStore: the file', () => {
  it('is in WAL mode, synchronous FULL by default and NORMAL when asked', () => {
    const full = new SqliteLedgerStore(freshPath());
    expect(full.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(full.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(full.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    full.close();
    const normal = new SqliteLedgerStore(freshPath(), { synchronous: 'normal' });
    expect(normal.db.pragma('synchronous', { simple: true })).toBe(1);
    normal.close();
  });

  it('keeps every record across close and reopen, in insertion order, optional fields absent as they were', () => {
    const path = freshPath();
    const { store, ledger } = fundedLedger(path);
    ledger.debit({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 100, requestId: 'p1/r1', proxyId: 'p1' });
    ledger.hold({ txId: 't2', meansId: 'm2', payee: 'shop', amountMinor: 50, proxyId: 'p1' });
    ledger.postAggregate({ id: 'p1/r3#0', meansId: 'm1', payee: 'cafe', sumMinor: 30, txIds: ['t3', 't4'], requestId: 'p1/r3' });
    ledger.reverse({ txId: 't1', proxyId: 'p1', requestId: 'p1/r4' });
    ledger.reverse({ txId: 't9', proxyId: 'p1', requestId: 'p1/r5' });
    store.putCounterUse('p1', 7, 't1');
    store.putResult('p1', 'r1', { fingerprint: 'f', result: { kind: 'result', reqId: 'r1', to: 'p1', requestKind: 'debit', ok: true, code: 'ok', posted: ['t1'], serverSig: 's' } });
    const before = {
      accounts: ledger.accounts(), postings: ledger.postings(), aggregates: ledger.aggregates(), voids: ledger.voids(),
      hold: ledger.holdOf('t2'), transfer: store.getTransfer('tx:t1'),
    };
    store.close();

    const reopened = new SqliteLedgerStore(path);
    const again = new Ledger(reopened);
    expect(again.accounts()).toStrictEqual(before.accounts);
    expect(again.postings()).toStrictEqual(before.postings);
    expect(again.postings().map((p) => p.txId)).toEqual(['t1', 't3', 't4']);
    expect(again.postingOf('t3')).toStrictEqual({ txId: 't3', meansId: 'm1', payee: 'cafe', amountMinor: null, via: 'aggregate', requestId: 'p1/r3', aggregateId: 'p1/r3#0' });
    expect(again.postingOf('t1')?.reversedBy).toBe('p1/r4');
    expect(again.aggregates()).toStrictEqual(before.aggregates);
    expect(again.voids()).toStrictEqual(before.voids);
    expect(again.holdOf('t2')).toStrictEqual(before.hold);
    expect(reopened.getTransfer('tx:t1')).toStrictEqual(before.transfer);
    expect(reopened.getCounterUse('p1', 7)).toBe('t1');
    expect(reopened.getResult('p1', 'r1')?.result.posted).toEqual(['t1']);
    expect(again.sumOfBalancesMinor()).toBe(0);
    expect(reopened.sumOfBalancesMinor()).toBe(0);
    expect(again.balanceOf('m2').availableMinor).toBe(450);
    reopened.close();
  });

  it('checkpoints its log into the main file when closed', () => {
    const path = freshPath();
    const { store, ledger } = fundedLedger(path);
    for (let i = 0; i < 20; i++) ledger.debit({ txId: `t${i}`, meansId: 'm1', payee: 'shop', amountMinor: 1, requestId: `p1/${i}`, proxyId: 'p1' });
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
    store.close();
    expect(!existsSync(`${path}-wal`) || statSync(`${path}-wal`).size === 0).toBe(true);
  });

  it('serves a read-only reader alongside the writer, and refuses the reader’s writes', () => {
    const path = freshPath();
    const { store, ledger } = fundedLedger(path);
    const reader = new SqliteLedgerStore(path, { readonly: true });
    ledger.debit({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 100, requestId: 'p1/r1', proxyId: 'p1' });
    expect(new Ledger(reader).postingOf('t1')?.amountMinor).toBe(100);
    expect(reader.sumOfBalancesMinor()).toBe(0);
    expect((errorOf(() => reader.putCounterUse('p1', 1, 't1')) as { code?: string }).code).toBe('SQLITE_READONLY');
    reader.close();
    store.close();
  });

  it('counts the answers it stored, once per sender and reqId, for a reader while the writer goes on', () => {
    const path = freshPath();
    const { store } = fundedLedger(path);
    const reader = new SqliteLedgerStore(path, { readonly: true });
    const result = (reqId: string, to: string) => ({ kind: 'result' as const, reqId, to, requestKind: 'debit' as const, ok: true, code: 'ok', serverSig: 's' });
    expect(reader.answeredRequests()).toBe(0);
    store.putResult('p1', 'r1', { fingerprint: 'f', result: result('r1', 'p1') });
    store.putResult('p2', 'r1', { fingerprint: 'f', result: result('r1', 'p2') });
    expect(reader.answeredRequests()).toBe(2);
    // The same request stored again (an upsert) is still one answered request.
    store.putResult('p1', 'r1', { fingerprint: 'f', result: result('r1', 'p1') });
    store.putResult('p1', 'r2', { fingerprint: 'f', result: result('r2', 'p1') });
    expect(reader.answeredRequests()).toBe(3);
    reader.close();
    store.close();
  });

  it('refuses, naming the file, a missing file opened read-only, a file that is no ledger, and another schema version', () => {
    const missing = join(dir, 'nope.db');
    const e1 = errorOf(() => new SqliteLedgerStore(missing, { readonly: true }));
    expect(e1).toBeInstanceOf(LedgerFileError);
    expect(e1).toMatchObject({ code: 'noSuchFile', value: missing });
    expect(existsSync(missing)).toBe(false);

    const empty = freshPath();
    new Database(empty).close();
    expect(errorOf(() => new SqliteLedgerStore(empty, { readonly: true }))).toMatchObject({ code: 'notALedger', value: empty });

    const future = freshPath();
    const db = new Database(future);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(errorOf(() => new SqliteLedgerStore(future))).toMatchObject({ code: 'schemaVersion', value: SCHEMA_VERSION + 1 });
    expect(errorOf(() => new SqliteLedgerStore(future, { readonly: true }))).toMatchObject({ code: 'schemaVersion' });

    const text = freshPath();
    writeFileSync(text, 'not a database at all, just some text that is long enough to fill a header page');
    const e4 = errorOf(() => new SqliteLedgerStore(text));
    expect(e4).toMatchObject({ code: 'notALedger', value: text });
    expect((e4 as Error).message).toContain(text);

    const foreign = freshPath();
    const other = new Database(foreign);
    other.exec('CREATE TABLE customers (id INTEGER)');
    other.close();
    expect(errorOf(() => new SqliteLedgerStore(foreign))).toMatchObject({ code: 'notALedger', value: foreign });
    expect(new Database(foreign).prepare("SELECT COUNT(*) AS n FROM sqlite_schema WHERE type = 'table'").get()).toEqual({ n: 1 });
  });

  it('keeps meta facts about the file apart from the ledger', () => {
    const path = freshPath();
    const store = new SqliteLedgerStore(path);
    expect(store.getMeta('shards')).toBeUndefined();
    store.putMeta('shards', '0-3');
    store.close();
    const reopened = new SqliteLedgerStore(path, { readonly: true });
    expect(reopened.getMeta('shards')).toBe('0-3');
    reopened.close();
  });
});

const childScript = fileURLToPath(new URL('./crashWriter.child.ts', import.meta.url));

/**
 * Runs a crash writer until it has printed `commits` commits, then kills it with SIGKILL `delayMs` later (the
 * delays differ between rounds so the kill lands at different points of a transaction); returns what it printed.
 */
function writeUntilKilled(path: string, synchronous: SynchronousMode, tag: string, commits: number, delayMs: number): Promise<string[]> {
  return runUntilKilled(childScript, [path, synchronous, tag], (line) => (line.startsWith('committed ') ? line : undefined), commits, delayMs);
}

/** Checks the reopened ledger against every transaction the writers printed as committed. */
function checkLedger(store: SqliteLedgerStore, committed: readonly string[], rounds: number): void {
  expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
  const ledger = new Ledger(store);
  // [INV-4 nothing lost] every transaction a writer saw committed is on the reopened ledger.
  for (const line of committed) {
    const [, kind, id] = line.split(' ') as [string, string, string];
    if (kind === 'debit') expect(ledger.postingOf(id)?.via, id).toBe('debit');
    else expect(store.getAggregate(id)?.txIds, id).toHaveLength(5);
  }
  // At most the one transaction in flight at each kill may be there beyond what was printed.
  const debits = ledger.postings().filter((p) => p.via === 'debit');
  const aggregates = ledger.aggregates();
  const unprinted = debits.length + aggregates.length - committed.length;
  expect(unprinted).toBeGreaterThanOrEqual(0);
  expect(unprinted).toBeLessThanOrEqual(rounds);
  // Whole: a payment is on the ledger with its posting(s) and its transfer, or not at all.
  for (const debit of debits) expect(store.getTransfer(`tx:${debit.txId}`)?.amountMinor, debit.txId).toBe(debit.amountMinor);
  for (const aggregate of aggregates) {
    expect(aggregate.txIds.map((txId) => ledger.postingOf(txId)?.aggregateId)).toEqual(Array(5).fill(aggregate.id));
    expect(store.getTransfer(`agg:${aggregate.id}`)?.amountMinor).toBe(aggregate.postedMinor);
  }
  expect(ledger.postings()).toHaveLength(debits.length + 5 * aggregates.length);
  // [INV-3 conservation], and each means holds its opening balance less exactly what was posted from it.
  expect(ledger.sumOfBalancesMinor()).toBe(0);
  for (let m = 0; m < 10; m++) {
    const meansId = `m${m}`;
    const opening = store.getTransfer(`open:${meansId}`)!.amountMinor;
    const spent =
      debits.filter((p) => p.meansId === meansId).reduce((sum, p) => sum + p.amountMinor!, 0) +
      aggregates.filter((a) => a.meansId === meansId).reduce((sum, a) => sum + a.postedMinor, 0);
    expect(ledger.accountOf(meansAccount(meansId))?.balanceMinor, meansId).toBe(opening - spent);
  }
}

describe('SqliteLedgerStore: killed with SIGKILL in the middle of a stream of transactions', () => {
  const ROUNDS = 4;
  for (const synchronous of ['full', 'normal'] as const) {
    it(`loses no committed transaction and keeps every transaction whole, over ${ROUNDS} kills (synchronous ${synchronous})`, async () => {
      const path = freshPath();
      const committed: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const commits = (synchronous === 'full' ? 40 : 400) + 37 * round;
        const printed = await writeUntilKilled(path, synchronous, `r${round}.`, commits, round);
        expect(printed.length).toBeGreaterThanOrEqual(commits);
        committed.push(...printed);
        // A reader opens the dead writer's file as it was left (log not checkpointed) and finds it whole.
        const reader = new SqliteLedgerStore(path, { readonly: true });
        checkLedger(reader, committed, round + 1);
        reader.close();
      }
      const store = new SqliteLedgerStore(path);
      checkLedger(store, committed, ROUNDS);
      // The reopened ledger goes on where the dead writers stopped.
      new Ledger(store).debit({ txId: 'after', meansId: 'm0', payee: 'shop0', amountMinor: 1, requestId: 'p/after', proxyId: 'p' });
      expect(store.sumOfBalancesMinor()).toBe(0);
      store.close();
    });
  }
});

describe('SqliteLedgerStore: external transfers [INV-4 per-payee reconciliation]', () => {
  it('lists the spends through other points of issue, committed or read back, and nothing else', () => {
    const path = freshPath();
    const { store, ledger } = fundedLedger(path);
    ledger.spendElsewhere({ transferId: 'web1', meansId: 'm1', payee: 'shop', amountMinor: 30 });
    ledger.postPayment({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 20, requestId: 'p1/r1' }, 'remit');
    expect(ledger.payeeCredits()).toEqual({ balanceByPayee: new Map([['shop', 50]]), externalByPayee: new Map([['shop', 30]]) });
    store.close();
    const reader = new SqliteLedgerStore(path, { readonly: true });
    expect([...reader.externalTransfers()].map((t) => [t.id, t.creditAccount, t.amountMinor])).toEqual([['ext:web1', 'payee:shop', 30]]);
    reader.close();
  });
});
