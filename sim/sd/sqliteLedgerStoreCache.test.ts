import { afterAll, describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger, meansAccount } from '../../machines/domain/ledger.ts';
import { MemoryLedgerStore, type LedgerStore } from '../../machines/domain/ledgerStore.ts';
import { DomainError } from '../../machines/domain/money.ts';
import { signRequest } from '../../machines/domain/requests.ts';
import { handleRequest, type ServerContext } from '../../machines/domain/serverRules.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import type { DebitRequest } from '../../machines/messages.ts';
import { SqliteLedgerStore } from './sqliteLedgerStore.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `ledger-${files++}.db`);

// ------------------------------------------------------------------ a random program over both stores

const KEYS = ['k0', 'k1', 'k2'];
const PROXIES = ['p0', 'p1'];
const TABLES = ['account', 'transfer', 'hold', 'posting', 'aggregate', 'void', 'counter', 'result'] as const;
type Table = (typeof TABLES)[number];
type Step =
  | { kind: 'put'; table: Table; key: number; proxy: number; value: number }
  | { kind: 'get'; table: Table; key: number; proxy: number }
  | { kind: 'tx'; steps: Step[]; fail: boolean; caught: boolean };

class Refused extends Error {}

function put(store: LedgerStore, s: Extract<Step, { kind: 'put' }>): void {
  const key = KEYS[s.key]!;
  const proxy = PROXIES[s.proxy]!;
  const v = s.value;
  switch (s.table) {
    case 'account': return store.putAccount({ id: key, kind: 'means', balanceMinor: v - 5, creditLimitMinor: v, heldMinor: v % 3, version: v });
    case 'transfer': return store.putTransfer({ id: key, debitAccount: 'a', creditAccount: 'b', amountMinor: v, fingerprint: `f${v}`, note: `n${v}` });
    case 'hold': return store.putHold({ txId: key, meansId: 'm', payee: 'shop', amountMinor: v, proxyId: proxy, state: v % 2 ? 'held' : 'captured' });
    case 'posting':
      return store.putPosting(v % 2
        ? { txId: key, meansId: 'm', payee: 'shop', amountMinor: v, via: 'debit', requestId: `r${v}`, proxyId: proxy }
        : { txId: key, meansId: 'm', payee: 'shop', amountMinor: null, via: 'aggregate', requestId: `r${v}`, aggregateId: `g${v}`, reversedBy: `x${v}` });
    case 'aggregate': return store.putAggregate({ id: key, meansId: 'm', payee: 'shop', sumMinor: v, txIds: [`t${v}`, 'u'], postedMinor: v });
    case 'void': return store.putVoid({ proxyId: proxy, txId: key, requestId: `r${v}` });
    case 'counter': return store.putCounterUse(proxy, s.key, `t${v}`);
    case 'result':
      return store.putResult(proxy, key, { fingerprint: `f${v}`, result: { kind: 'result', reqId: key, to: proxy, requestKind: 'debit', ok: v % 2 === 0, code: 'ok', posted: [`t${v}`], serverSig: `s${v}` } });
  }
}

function get(store: LedgerStore, table: Table, key: string, proxy: string, counter: number): unknown {
  switch (table) {
    case 'account': return store.getAccount(key);
    case 'transfer': return store.getTransfer(key);
    case 'hold': return store.getHold(key);
    case 'posting': return store.getPosting(key);
    case 'aggregate': return store.getAggregate(key);
    case 'void': return store.getVoid(proxy, key);
    case 'counter': return store.getCounterUse(proxy, counter);
    case 'result': return store.getResult(proxy, key);
  }
}

/** Everything a store holds, by every read it offers. */
function contents(store: LedgerStore) {
  const points: unknown[] = [];
  for (const table of TABLES) {
    for (const [k, key] of KEYS.entries()) for (const proxy of PROXIES) points.push([table, key, proxy, get(store, table, key, proxy, k)]);
  }
  return { accounts: [...store.allAccounts()], postings: [...store.allPostings()], aggregates: [...store.allAggregates()], voids: [...store.allVoids()], points };
}

/** Runs the steps on a store; the reads it made are returned, so both stores must have read the same. */
function run(store: LedgerStore, steps: readonly Step[], reads: unknown[]): void {
  for (const s of steps) {
    if (s.kind === 'put') put(store, s);
    else if (s.kind === 'get') reads.push(get(store, s.table, KEYS[s.key]!, PROXIES[s.proxy]!, s.key));
    else {
      try {
        store.transaction(() => {
          run(store, s.steps, reads);
          if (s.fail) throw new Refused('refused');
        });
      } catch (error) {
        if (!(error instanceof Refused) || !s.caught) throw error;
        reads.push('refused');
      }
    }
  }
}

const leaf = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), table: fc.constantFrom(...TABLES), key: fc.nat(2), proxy: fc.nat(1), value: fc.nat(20) }),
  fc.record({ kind: fc.constant('get' as const), table: fc.constantFrom(...TABLES), key: fc.nat(2), proxy: fc.nat(1) }),
);
const stepAt = (depth: number): fc.Arbitrary<Step> =>
  depth === 0
    ? leaf
    : fc.oneof(leaf, leaf, fc.record({ kind: fc.constant('tx' as const), steps: fc.array(stepAt(depth - 1), { maxLength: 6 }), fail: fc.boolean(), caught: fc.boolean() }));
/** Top level: writes outside any transaction, and outermost transactions (always caught here). */
const program = fc.array(
  fc.oneof(leaf, fc.record({ kind: fc.constant('tx' as const), steps: fc.array(stepAt(3), { maxLength: 6 }), fail: fc.boolean(), caught: fc.constant(true) })),
  { maxLength: 8 },
);

describe('SqliteLedgerStore: row cache and nested transactions without savepoints', () => {
  it('reads, writes and rolls back exactly as the in-memory store does, in the file and in the cache, at any depth', () => {
    fc.assert(
      fc.property(program, (steps) => {
        const memory = new MemoryLedgerStore();
        const path = freshPath();
        const sqlite = new SqliteLedgerStore(path);
        try {
          const memoryReads: unknown[] = [];
          const sqliteReads: unknown[] = [];
          run(memory, steps, memoryReads);
          run(sqlite, steps, sqliteReads);
          expect(sqliteReads).toStrictEqual(memoryReads);
          // The writer answers from its cache inside a transaction: the same there as outside it.
          expect(sqlite.transaction(() => contents(sqlite))).toStrictEqual(contents(memory));
          expect(contents(sqlite)).toStrictEqual(contents(memory));
          // And the file holds exactly that, as another connection reads it.
          const reader = new SqliteLedgerStore(path, { readonly: true });
          expect(contents(reader)).toStrictEqual(contents(memory));
          reader.close();
        } finally {
          sqlite.close();
        }
      }),
      { numRuns: 150, seed: 20261126 },
    );
  });

  it('rolls back a refused request inside a batch and leaves no trace of it, in the file or the cache', () => {
    const path = freshPath();
    const store = new SqliteLedgerStore(path);
    const ledger = new Ledger(store);
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
    const proxyKey = keyFromSeed('sim', new Uint8Array(32).fill(1));
    const ctx: ServerContext = { scheme: 'sim', serverKey: keyFromSeed('sim', new Uint8Array(32).fill(9)), publicKeyOf: () => proxyKey.publicKey, nowMs: 1 };
    const debit = (counter: number, amountMinor: number) =>
      signRequest<DebitRequest>(proxyKey, { kind: 'debit', from: 'p1', reqId: `r${counter}`, claim: { txId: `t${counter}`, amountMinor, payee: 'shop', timeMs: 1, counter, proxyId: 'p1', meansId: 'm1' } });
    const counterRow = store.db.prepare('SELECT tx_id FROM counter_uses WHERE proxy_id = ? AND counter = ?');
    const codes = store.transaction(() => {
      const first = handleRequest(ledger, debit(1, 100), ctx).code;
      // Its counter is written before the ledger finds the funds short: that write must be undone.
      const refused = handleRequest(ledger, debit(2, 5_000), ctx).code;
      expect(store.getCounterUse('p1', 2)).toBeUndefined();
      expect(counterRow.get('p1', 2)).toBeUndefined();
      expect(store.getPosting('t2')).toBeUndefined();
      expect(ledger.balanceOf('m1').availableMinor).toBe(900);
      const third = handleRequest(ledger, debit(3, 200), ctx).code;
      return [first, refused, third];
    });
    expect(codes).toEqual(['ok', 'insufficientFunds', 'ok']);
    const reader = new SqliteLedgerStore(path, { readonly: true });
    for (const s of [store, reader]) {
      expect(s.getCounterUse('p1', 2)).toBeUndefined();
      expect(s.getPosting('t2')).toBeUndefined();
      expect(s.getResult('p1', 'r2')?.result.code).toBe('insufficientFunds');
      expect(s.getAccount(meansAccount('m1'))?.balanceMinor).toBe(700);
      expect(s.sumOfBalancesMinor()).toBe(0);
    }
    expect(store.transaction(() => store.getAccount(meansAccount('m1')))).toStrictEqual(reader.getAccount(meansAccount('m1')));
    reader.close();
    store.close();
  });

  it('forgets its accounts when another connection wrote the file', () => {
    const path = freshPath();
    const a = new SqliteLedgerStore(path);
    const ledger = new Ledger(a);
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
    expect(a.transaction(() => ledger.balanceOf('m1').availableMinor)).toBe(1000);
    const b = new SqliteLedgerStore(path);
    new Ledger(b).debit({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 300, requestId: 'p1/r1', proxyId: 'p1' });
    b.close();
    expect(a.transaction(() => ledger.balanceOf('m1').availableMinor)).toBe(700);
    // And the next debit through the first connection starts from the other's figure [INV-3 conservation].
    ledger.debit({ txId: 't2', meansId: 'm1', payee: 'shop', amountMinor: 100, requestId: 'p1/r2', proxyId: 'p1' });
    expect(ledger.balanceOf('m1').availableMinor).toBe(600);
    expect(a.sumOfBalancesMinor()).toBe(0);
    a.close();
  });

  it('refuses to go on, and commits nothing, once SQLite dropped the transaction under a nested one', () => {
    const path = freshPath();
    const store = new SqliteLedgerStore(path);
    const ledger = new Ledger(store);
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
    const outcome = (() => {
      try {
        return store.transaction(() => {
          ledger.debit({ txId: 't1', meansId: 'm1', payee: 'shop', amountMinor: 100, requestId: 'p1/r1', proxyId: 'p1' });
          try {
            store.transaction(() => {
              store.putCounterUse('p1', 1, 't1');
              // As an I/O error would: SQLite rolls the whole transaction back by itself.
              store.db.prepare('ROLLBACK').run();
              throw new DomainError('insufficientFunds', 'short', 1);
            });
          } catch (error) {
            if (!(error instanceof DomainError)) throw error;
          }
          // A caller that goes on after the refusal must not write outside any transaction.
          store.putCounterUse('p1', 2, 't2');
          return 'committed';
        });
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(outcome).toMatch(/rolled the transaction back by itself/);
    expect(store.getPosting('t1')).toBeUndefined();
    expect(store.getCounterUse('p1', 2)).toBeUndefined();
    expect(ledger.balanceOf('m1').availableMinor).toBe(1000);
    // The store works again afterwards.
    ledger.debit({ txId: 't3', meansId: 'm1', payee: 'shop', amountMinor: 10, requestId: 'p1/r3', proxyId: 'p1' });
    expect(store.transaction(() => ledger.balanceOf('m1').availableMinor)).toBe(990);
    store.close();
  });
});
