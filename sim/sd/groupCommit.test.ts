import { afterAll, describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, setup, type AnyActorRef } from 'xstate';
import { Ledger } from '../../machines/domain/ledger.ts';
import { signRequest } from '../../machines/domain/requests.ts';
import { keyFromSeed, type PaymentClaim } from '../../machines/domain/signature.ts';
import type { DebitRequest, ServerRequest } from '../../machines/messages.ts';
import type { LedgerActorInput, LedgerCommand, LedgerEvent } from '../../machines/server.ts';
import { createGroupCommitLedgerActor } from './groupCommit.ts';
import { SqliteLedgerStore } from './sqliteLedgerStore.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-group-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const proxyKey = keyFromSeed('sim', new Uint8Array(32).fill(1));
const serverKey = keyFromSeed('sim', new Uint8Array(32).fill(9));
const input: LedgerActorInput = { key: serverKey, scheme: 'sim', publicKeyOf: (id) => (id === 'p1' ? proxyKey.publicKey : undefined), now: () => 1_000 };

/** A real SQLite store that counts its commits (outermost transactions that returned). */
class CountingStore extends SqliteLedgerStore {
  depth = 0;
  commits = 0;
  /** When set, writing the answer to this reqId fails as a broken file would. */
  failOn: string | undefined;
  override transaction<T>(fn: () => T): T {
    this.depth++;
    try {
      const result = super.transaction(fn);
      if (this.depth === 1) this.commits++;
      return result;
    } finally {
      this.depth--;
    }
  }
  override putResult(...args: Parameters<SqliteLedgerStore['putResult']>): void {
    if (args[1] === this.failOn) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
    super.putResult(...args);
  }
}

function debit(reqId: string, counter: number, amountMinor: number): DebitRequest {
  const claim: PaymentClaim = { txId: `t${counter}`, amountMinor, payee: 'shop', timeMs: 1, counter, proxyId: 'p1', meansId: 'm1' };
  return signRequest<DebitRequest>(proxyKey, { kind: 'debit', from: 'p1', reqId, claim });
}

function setupActor() {
  const path = join(dir, `ledger-${files++}.db`);
  const store = new CountingStore(path);
  const ledger = new Ledger(store);
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
  const reader = new SqliteLedgerStore(path, { readonly: true });
  const failures: unknown[] = [];
  const received: Array<{ event: LedgerEvent; onDisk: boolean; commitsThen: number }> = [];
  const machine = setup({ actors: { ledger: createGroupCommitLedgerActor(ledger, (error) => failures.push(error)) } }).createMachine({
    invoke: { src: 'ledger', id: 'ledger', input },
    on: {
      'ledger.result': {
        actions: ({ event }) => {
          const e = event as unknown as LedgerEvent;
          // Another connection to the file sees the answer as soon as it is handed back: it was committed.
          received.push({ event: e, onDisk: reader.getResult(e.request.from, e.request.reqId) !== undefined, commitsThen: store.commits });
        },
      },
    },
  });
  const actor = createActor(machine).start();
  const send = (request: ServerRequest) => (actor.getSnapshot().children.ledger as AnyActorRef).send({ type: 'ledger.apply', request } satisfies LedgerCommand);
  const settle = () => new Promise((r) => setTimeout(r, 20));
  const close = () => {
    actor.stop();
    reader.close();
    store.close();
  };
  return { store, ledger, send, settle, received, failures, close };
}

describe('group-commit ledger actor', () => {
  it('applies the requests of one turn in one commit and hands their answers back only after it', async () => {
    const s = setupActor();
    const commitsBefore = s.store.commits;
    const requests = [debit('r1', 1, 100), debit('r2', 2, 5_000), debit('r3', 3, 200), debit('r1', 1, 100)];
    for (const r of requests) s.send(r);
    expect(s.received).toEqual([]);
    await s.settle();
    expect(s.store.commits - commitsBefore).toBe(1);
    expect(s.received.map((r) => [r.event.request.reqId, r.event.result.code])).toEqual([['r1', 'ok'], ['r2', 'insufficientFunds'], ['r3', 'ok'], ['r1', 'ok']]);
    expect(s.received.every((r) => r.onDisk && r.commitsThen === commitsBefore + 1)).toBe(true);
    // The duplicate in the same batch got the very same answer; the refusal rolled back only itself.
    expect(s.received[3]!.event.result).toEqual(s.received[0]!.event.result);
    expect(s.ledger.balanceOf('m1').availableMinor).toBe(700);
    expect(s.ledger.sumOfBalancesMinor()).toBe(0);
    // A later turn is a later batch.
    s.send(debit('r4', 4, 1));
    await s.settle();
    expect(s.store.commits - commitsBefore).toBe(2);
    s.close();
  });

  it('answers none of a batch and commits none of it when the file fails, and reports the failure', async () => {
    const s = setupActor();
    s.store.failOn = 'r2';
    for (const r of [debit('r1', 1, 100), debit('r2', 2, 100), debit('r3', 3, 100)]) s.send(r);
    await s.settle();
    expect(s.received).toEqual([]);
    expect(s.failures).toHaveLength(1);
    expect((s.failures[0] as { code?: string }).code).toBe('SQLITE_IOERR');
    expect(s.ledger.postings()).toEqual([]);
    expect(s.store.getResult('p1', 'r1')).toBeUndefined();
    expect(s.ledger.balanceOf('m1').availableMinor).toBe(1000);
    s.close();
  });
});

describe('group-commit ledger actor with deferred syncs', () => {
  it('answers a batch only after a sync started after its commit, and applies the next batch while that sync runs', async () => {
    const path = join(dir, `ledger-${files++}.db`);
    const store = new CountingStore(path, { deferSync: true });
    const ledger = new Ledger(store);
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1000, creditLimitMinor: 0 });
    // Syncs that finish only when the test says so, each remembering how many commits there were when it began.
    const syncs: Array<{ commitsAtStart: number; done: (error: Error | null) => void }> = [];
    const received: Array<{ reqId: string; commitsThen: number }> = [];
    const failures: unknown[] = [];
    const machine = setup({ actors: { ledger: createGroupCommitLedgerActor(ledger, (error) => failures.push(error), (done) => syncs.push({ commitsAtStart: store.commits, done })) } }).createMachine({
      invoke: { src: 'ledger', id: 'ledger', input },
      on: { 'ledger.result': { actions: ({ event }) => received.push({ reqId: (event as unknown as LedgerEvent).request.reqId, commitsThen: store.commits }) } },
    });
    const actor = createActor(machine).start();
    const send = (request: ServerRequest) => (actor.getSnapshot().children.ledger as AnyActorRef).send({ type: 'ledger.apply', request } satisfies LedgerCommand);
    const settle = () => new Promise((r) => setTimeout(r, 20));
    const commitsBefore = store.commits;

    send(debit('r1', 1, 100));
    await settle();
    // Committed, one sync asked for, nothing answered yet.
    expect(store.commits - commitsBefore).toBe(1);
    expect(syncs).toHaveLength(1);
    expect(received).toEqual([]);
    // While that sync runs, two more batches are applied and committed; they wait, and no second sync starts yet.
    send(debit('r2', 2, 100));
    await settle();
    send(debit('r3', 3, 100));
    await settle();
    expect(store.commits - commitsBefore).toBe(3);
    expect(syncs).toHaveLength(1);
    expect(received).toEqual([]);
    // The first sync answers only its batch and starts one sync for both batches committed meanwhile.
    syncs[0]!.done(null);
    expect(received.map((r) => r.reqId)).toEqual(['r1']);
    expect(syncs).toHaveLength(2);
    expect(syncs[1]!.commitsAtStart - commitsBefore).toBe(3);
    syncs[1]!.done(null);
    expect(received.map((r) => r.reqId)).toEqual(['r1', 'r2', 'r3']);
    // A failed sync answers nothing it covered and is reported.
    send(debit('r4', 4, 100));
    await settle();
    syncs[2]!.done(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    expect(received.map((r) => r.reqId)).toEqual(['r1', 'r2', 'r3']);
    expect((failures[0] as { code?: string }).code).toBe('EIO');
    actor.stop();
    store.close();
  });

  it('makes a deferred-sync store commit without its fsync and sync the WAL when asked', async () => {
    const deferred = new SqliteLedgerStore(join(dir, `ledger-${files++}.db`), { deferSync: true });
    const synced = new SqliteLedgerStore(join(dir, `ledger-${files++}.db`));
    expect(deferred.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(synced.db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    deferred.transaction(() => deferred.putMeta('k', 'v'));
    await expect(new Promise((resolve) => deferred.syncCommitted(resolve))).resolves.toBeNull();
    // A store that syncs each commit itself has nothing left to sync: it calls back at once.
    let calledBack = false;
    synced.syncCommitted(() => (calledBack = true));
    expect(calledBack).toBe(true);
    deferred.close();
    synced.close();
  });
});
