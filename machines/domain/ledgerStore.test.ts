import { describe, it, expect } from 'vitest';
import { MemoryLedgerStore, type Account } from './ledgerStore.ts';

const account = (id: string, balanceMinor: number): Account => ({ id, kind: 'beneficiary', balanceMinor, creditLimitMinor: 0, heldMinor: 0, version: 0 });

describe('MemoryLedgerStore.transaction', () => {
  it('keeps every write of a transaction that returns', () => {
    const store = new MemoryLedgerStore();
    const value = store.transaction(() => {
      store.putAccount(account('a', 5));
      store.putCounterUse('p1', 3, 'tx1');
      return 42;
    });
    expect(value).toBe(42);
    expect(store.getAccount('a')?.balanceMinor).toBe(5);
    expect(store.getCounterUse('p1', 3)).toBe('tx1');
  });

  it('undoes inserts and updates when the function throws, and rethrows', () => {
    const store = new MemoryLedgerStore();
    store.putAccount(account('a', 5));
    expect(() =>
      store.transaction(() => {
        store.putAccount(account('a', 7));
        store.putAccount(account('a', 9));
        store.putAccount(account('b', 1));
        store.putPosting({ txId: 't', meansId: 'm', payee: 'p', amountMinor: 1, via: 'remit', requestId: 'r' });
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(store.getAccount('a')?.balanceMinor).toBe(5);
    expect(store.getAccount('b')).toBeUndefined();
    expect(store.getPosting('t')).toBeUndefined();
    expect([...store.allAccounts()]).toHaveLength(1);
  });

  it('rolls back only the inner transaction when it throws and the outer one catches', () => {
    const store = new MemoryLedgerStore();
    store.transaction(() => {
      store.putAccount(account('a', 1));
      try {
        store.transaction(() => {
          store.putAccount(account('a', 2));
          store.putAccount(account('b', 2));
          throw new Error('inner');
        });
      } catch {
        // the outer transaction goes on
      }
      expect(store.getAccount('a')?.balanceMinor).toBe(1);
      expect(store.getAccount('b')).toBeUndefined();
    });
    expect(store.getAccount('a')?.balanceMinor).toBe(1);
  });

  it('undoes a committed inner transaction when the outer one throws', () => {
    const store = new MemoryLedgerStore();
    store.putAccount(account('a', 1));
    expect(() =>
      store.transaction(() => {
        store.transaction(() => {
          store.putAccount(account('a', 2));
          store.putAccount(account('c', 3));
        });
        store.putAccount(account('a', 4));
        throw new Error('outer');
      }),
    ).toThrow('outer');
    expect(store.getAccount('a')?.balanceMinor).toBe(1);
    expect(store.getAccount('c')).toBeUndefined();
  });

  it('refuses an async function and undoes what it wrote before its first await', async () => {
    const store = new MemoryLedgerStore();
    let pending: Promise<void> | undefined;
    expect(() =>
      store.transaction(() => {
        store.putAccount(account('a', 1));
        pending = Promise.resolve();
        return pending;
      }),
    ).toThrow('synchronous');
    await pending;
    expect(store.getAccount('a')).toBeUndefined();
  });

  it('keeps stored records out of the caller’s reach', () => {
    const store = new MemoryLedgerStore();
    const record = account('a', 1);
    store.putAccount(record);
    (record as { balanceMinor: number }).balanceMinor = 99;
    expect(store.getAccount('a')?.balanceMinor).toBe(1);
    expect(Object.isFrozen(store.getAccount('a'))).toBe(true);
  });

  it('returns a stored result that later changes to the caller’s copy do not reach', () => {
    const store = new MemoryLedgerStore();
    const result = { kind: 'result' as const, reqId: 'r', to: 'p', requestKind: 'sync' as const, ok: true, code: 'ok', posted: ['t1'], serverSig: 's' };
    store.putResult('p', 'r', { fingerprint: 'f', result });
    store.getResult('p', 'r')?.result.posted?.push('t2');
    result.posted.push('t3');
    expect(store.getResult('p', 'r')?.result.posted).toEqual(['t1']);
  });

  it('keys pairs without ambiguity', () => {
    const store = new MemoryLedgerStore();
    store.putResult('a/b', 'c', { fingerprint: '1', result: {} as never });
    expect(store.getResult('a', 'b/c')).toBeUndefined();
    store.putCounterUse('p', 1, 'tx');
    expect(store.getCounterUse('p', 2)).toBeUndefined();
  });
});

describe('MemoryLedgerStore: void records', () => {
  it('keys a void by proxy and txId, freezes it, and undoes it with its transaction', () => {
    const store = new MemoryLedgerStore();
    store.putVoid({ proxyId: 'p1', txId: 't1', requestId: 'p1/v1' });
    expect(store.getVoid('p1', 't1')).toEqual({ proxyId: 'p1', txId: 't1', requestId: 'p1/v1' });
    expect(store.getVoid('p2', 't1')).toBeUndefined();
    expect(Object.isFrozen(store.getVoid('p1', 't1'))).toBe(true);
    expect(() =>
      store.transaction(() => {
        store.putVoid({ proxyId: 'p2', txId: 't1', requestId: 'p2/v1' });
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(store.getVoid('p2', 't1')).toBeUndefined();
    expect([...store.allVoids()]).toEqual([{ proxyId: 'p1', txId: 't1', requestId: 'p1/v1' }]);
  });
});
