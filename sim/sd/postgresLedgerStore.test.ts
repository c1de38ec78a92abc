import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { Ledger } from '../../machines/domain/ledger.ts';
import { LedgerUnavailableError, SyncPostgresConnection } from './postgresConnection.ts';
import { POSTGRES_SCHEMA_VERSION, PostgresLedgerStore } from './postgresLedgerStore.ts';
import { startPostgresTestCluster, type PostgresTestCluster } from './postgresTestCluster.ts';
import { LedgerFileError } from './sqliteLedgerStore.ts';
import { answerUntilKilled, errorOf, BATCH_CHILD, BATCH_SIZE, checkBatchLedger, parseBatchAnswer, runChildToEnd, runUntilKilled, type BatchAnswer } from './testSupport.ts';

let cluster: PostgresTestCluster;
beforeAll(async () => {
  cluster = await startPostgresTestCluster();
}, 120_000);
afterAll(() => cluster?.remove());

let schemas = 0;
const freshSchema = () => `t${schemas++}`;

describe('PostgresLedgerStore: the schema', () => {
  it('is made on first use with its version, and a reopened ledger has every record in first-written order', () => {
    const schema = freshSchema();
    const store = new PostgresLedgerStore(cluster.url, { schema });
    expect(store.connection.query(`SELECT value FROM ${schema}.meta WHERE key = 'schemaVersion'`)).toEqual([[String(POSTGRES_SCHEMA_VERSION)]]);
    const ledger = new Ledger(store);
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
    ledger.debit({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 100, requestId: "p1/r'1", proxyId: 'p1' });
    ledger.postAggregate({ id: 'p1/r3#0', meansId: 'm1', payee: 'cafe', sumMinor: 30, txIds: ['t3', 't4'], requestId: 'p1/r3' });
    ledger.reverse({ txId: 't9', proxyId: 'p1', requestId: 'p1/r5' });
    store.putResult('p1', 'r1', { fingerprint: 'f', result: { kind: 'result', reqId: 'r1', to: 'p1', requestKind: 'debit', ok: true, code: 'ok', posted: ['t1'], serverSig: 's' } });
    const before = { accounts: ledger.accounts(), postings: ledger.postings(), aggregates: ledger.aggregates(), voids: ledger.voids() };
    store.close();

    const reader = new PostgresLedgerStore(cluster.url, { schema, readonly: true });
    const again = new Ledger(reader);
    expect(again.accounts()).toStrictEqual(before.accounts);
    expect(again.postings()).toStrictEqual(before.postings);
    expect(again.postings().map((p) => p.txId)).toEqual(['t1', 't3', 't4']);
    expect(again.postingOf('t1')?.requestId).toBe("p1/r'1");
    expect(again.aggregates()).toStrictEqual(before.aggregates);
    expect(again.voids()).toStrictEqual(before.voids);
    expect(reader.getResult('p1', 'r1')?.result.posted).toEqual(['t1']);
    expect(reader.sumOfBalancesMinor()).toBe(0);
    expect(reader.answeredRequests()).toBe(1);
    // The session is read-only: a write is refused before it reaches PostgreSQL.
    expect((errorOf(() => reader.putMeta('k', 'v')) as LedgerFileError).code).toBe('cannotOpen');
    reader.close();
  });

  it('refuses a missing ledger to a reader, a schema of other tables, another schema version, and a second writer', () => {
    expect((errorOf(() => new PostgresLedgerStore(cluster.url, { schema: 'nothing_here', readonly: true })) as LedgerFileError).code).toBe('noSuchFile');
    const admin = new SyncPostgresConnection(cluster.url);
    admin.script('CREATE SCHEMA other; CREATE TABLE other.x (a int)');
    expect((errorOf(() => new PostgresLedgerStore(cluster.url, { schema: 'other' })) as LedgerFileError).code).toBe('notALedger');
    const schema = freshSchema();
    const writer = new PostgresLedgerStore(cluster.url, { schema });
    const second = errorOf(() => new PostgresLedgerStore(cluster.url, { schema })) as LedgerFileError;
    expect(second.code).toBe('cannotOpen');
    expect(second.message).toMatch(/another server/);
    writer.close();
    admin.script(`UPDATE ${schema}.meta SET value = '99' WHERE key = 'schemaVersion'`);
    expect((errorOf(() => new PostgresLedgerStore(cluster.url, { schema })) as LedgerFileError).code).toBe('schemaVersion');
    admin.close();
    expect((errorOf(() => new PostgresLedgerStore(cluster.url, { schema: 'Bad-Name' })) as LedgerFileError).code).toBe('cannotOpen');
  });
});

describe('PostgresLedgerStore: prefetch', () => {
  it('a dry run writes nothing and loads what it read in a round trip per round; the real run then only commits', () => {
    const schema = freshSchema();
    const first = new PostgresLedgerStore(cluster.url, { schema });
    const setup = new Ledger(first);
    setup.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
    setup.debit({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 100, requestId: 'p1/r1', proxyId: 'p1' });
    first.close();
    // A fresh store remembers nothing: every row the debit reads would be a round trip of its own.
    const store = new PostgresLedgerStore(cluster.url, { schema });
    const ledger = new Ledger(store);
    const pay = () => ledger.debit({ txId: 't2', meansId: 'm1', payee: 'shop', amountMinor: 50, requestId: 'p1/r2', proxyId: 'p1' });
    const before = store.connection.stats.requests;
    store.prefetch(pay);
    // One query per dry run that found rows to load (a guessed-absent account cuts the first one short).
    expect(store.connection.stats.requests - before).toBeGreaterThanOrEqual(1);
    expect(store.connection.stats.requests - before).toBeLessThanOrEqual(3);
    // Nothing of the dry run stayed: the balance is the committed one and t2 is not posted.
    expect(ledger.balanceOf('m1').availableMinor).toBe(900);
    expect(ledger.postingOf('t2')).toBeUndefined();
    const afterPrefetch = store.connection.stats.requests;
    store.transaction(pay);
    expect(store.connection.stats.requests - afterPrefetch).toBe(1);
    store.close();
    const reader = new PostgresLedgerStore(cluster.url, { schema, readonly: true });
    expect(new Ledger(reader).postings().map((p) => p.txId)).toEqual(['t1', 't2']);
    expect(reader.sumOfBalancesMinor()).toBe(0);
    reader.close();
  });
});

describe('PostgresLedgerStore: PostgreSQL away', () => {
  it('fails a commit after its deadline with nothing answered, then goes on from what PostgreSQL holds', () => {
    const schema = freshSchema();
    const store = new PostgresLedgerStore(cluster.url, { schema, deadlineMs: 300 });
    const ledger = new Ledger(store);
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
    ledger.debit({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 100, requestId: 'p1/r1', proxyId: 'p1' });
    cluster.stop('immediate');
    let failure: unknown;
    try {
      failure = errorOf(() => ledger.debit({ txId: 't2', meansId: 'm1', payee: 'shop', amountMinor: 50, requestId: 'p1/r2', proxyId: 'p1' }));
    } finally {
      cluster.start();
    }
    expect(failure).toBeInstanceOf(LedgerUnavailableError);
    expect((failure as LedgerUnavailableError).unreachable).toBe(true);
    // The failed transaction left nothing behind in the overlay: t2 is absent, the balance is the committed one.
    expect(ledger.postingOf('t2')).toBeUndefined();
    expect(ledger.balanceOf('m1').availableMinor).toBe(900);
    ledger.debit({ txId: 't2', meansId: 'm1', payee: 'shop', amountMinor: 50, requestId: 'p1/r2', proxyId: 'p1' });
    expect(ledger.postings().map((p) => p.txId)).toEqual(['t1', 't2']);
    expect(store.sumOfBalancesMinor()).toBe(0);
    store.close();
  }, 120_000);
});

describe('PostgresLedgerStore with group commit: crashes', () => {
  it('loses no answered request and pays nothing twice when PostgreSQL crashes (stop -m immediate) mid-stream and restarts', async () => {
    const schema = freshSchema();
    const ledgerUrl = `${cluster.url}?schema=${schema}`;
    let crashed = false;
    let answeredAtRestart: number | undefined;
    const answered: BatchAnswer[] = [];
    // The child answers on; after 40 answers PostgreSQL is crashed, left down a second and started again (the
    // child's requests wait and retry meanwhile); 40 answers after the restart the child is killed.
    const printed = await runUntilKilled(BATCH_CHILD, [ledgerUrl, 'full', 'k1.'], (line) => {
      const answer = parseBatchAnswer(line);
      if (answer) answered.push(answer);
      if (!crashed && answered.length >= 40) {
        crashed = true;
        cluster.stop('immediate');
        setTimeout(() => {
          cluster.start();
          answeredAtRestart = answered.length;
        }, 1000);
      }
      return answeredAtRestart !== undefined && answered.length >= answeredAtRestart + 40 ? answer : undefined;
    }, 1, 0);
    expect(printed.length).toBeGreaterThanOrEqual(1);
    expect(answered.length).toBeGreaterThanOrEqual(80);
    // It was a crash: the restarted server recovered from its WAL.
    expect(cluster.log()).toMatch(/not properly shut down; automatic recovery in progress/);
    const reader = new PostgresLedgerStore(cluster.url, { schema, readonly: true });
    checkBatchLedger(reader, answered, 2);
    reader.close();
  }, 180_000);

  it('a server SIGKILLed between its commit and its answers finds the stored answers when the batch is resent', async () => {
    const schema = freshSchema();
    const ledgerUrl = `${cluster.url}?schema=${schema}`;
    const died = await runChildToEnd(BATCH_CHILD, [ledgerUrl, 'full', 'd1.', 'die-after-commit:3']);
    expect(died.signal, died.stderr).toBe('SIGKILL');
    const answered = died.stdout.map(parseBatchAnswer).filter((a): a is BatchAnswer => a !== undefined);
    // Two batches answered; the third committed and never answered.
    expect(answered).toHaveLength(2 * BATCH_SIZE);
    const unanswered = Number(died.stdout.find((l) => l.startsWith('unanswered '))?.split(' ')[1]);
    expect(unanswered).toBe(2 * BATCH_SIZE);

    const before = new PostgresLedgerStore(cluster.url, { schema, readonly: true });
    const postingsBefore = before.allPostings().length;
    const stored = Array.from({ length: BATCH_SIZE }, (_, k) => before.getResult('p1', `d1.r${unanswered + k}`));
    // Committed before the kill: every request of the unanswered batch has its answer stored.
    expect(stored.every((s) => s !== undefined)).toBe(true);
    before.close();

    const resent = await runChildToEnd(BATCH_CHILD, [ledgerUrl, 'full', 'd1.', `resend:${unanswered}`]);
    expect(resent.code, resent.stderr).toBe(0);
    const again = resent.stdout.map(parseBatchAnswer).filter((a): a is BatchAnswer => a !== undefined);
    expect(again.map((a) => a.reqId)).toEqual(stored.map((_, k) => `d1.r${unanswered + k}`));
    // [INV-4 nothing twice] the same answers as stored, and not one posting more.
    expect(again.map((a) => a.code)).toEqual(stored.map((s) => s!.result.code));
    const after = new PostgresLedgerStore(cluster.url, { schema, readonly: true });
    expect(after.allPostings()).toHaveLength(postingsBefore);
    checkBatchLedger(after, [...answered, ...again], 1);
    after.close();
  }, 120_000);

  it('loses nothing over SIGKILLs of the writer mid-stream (as the SQLite crash test)', async () => {
    const schema = freshSchema();
    const ledgerUrl = `${cluster.url}?schema=${schema}`;
    const answered: BatchAnswer[] = [];
    for (let round = 0; round < 3; round++) {
      const printed = await answerUntilKilled(ledgerUrl, 'full', `c${round + 1}.`, 40 + 13 * round, round);
      expect(printed.length).toBeGreaterThanOrEqual(40);
      answered.push(...printed);
      const reader = new PostgresLedgerStore(cluster.url, { schema, readonly: true });
      checkBatchLedger(reader, answered, round + 1);
      reader.close();
    }
  }, 180_000);
});
