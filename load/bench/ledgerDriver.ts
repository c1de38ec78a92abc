// Goal: drive a payment server's ledger path — the domain's rules (`handleRequest`: signatures, counters, the
// double-entry ledger, stored answers) through the group-commit ledger actor that `payfleet server` runs, on its
// durable store (SQLite or PostgreSQL) — with signed requests of every kind, and time each batch: the driver of
// `payfleet calibrate`, built on the machinery of `npm run bench:server` (load/bench/server.ts).
// Method: as bench:server does, proxies' keys from fixed seeds, one prepaid means per proxy opened as the server
// opens them, requests made and signed before they are timed, then sent to the real group-commit actor in one
// event-loop turn per batch (so one commit each), the next batch only once every answer of the previous one came
// back. The store's outermost transaction is wrapped (as groupCommitBatch.child.ts does) to time the commit itself:
// BEGIN…COMMIT less the batch's work inside it, the fsync included. Benchmarks read the clock; the code under
// test never does.

import { performance } from 'node:perf_hooks';
import { createActor, setup, type AnyActorRef } from 'xstate';
import { Ledger, type TopUpRules } from '../../machines/domain/ledger.ts';
import type { LedgerStore } from '../../machines/domain/ledgerStore.ts';
import { signRequest, type Unsigned } from '../../machines/domain/requests.ts';
import { keyFromSeed, signClaim, type PaymentClaim, type SignatureScheme, type SigningKey } from '../../machines/domain/signature.ts';
import type { Proof, ServerRequest } from '../../machines/messages.ts';
import type { LedgerActorInput, LedgerCommand, LedgerEvent } from '../../machines/server.ts';
import { createGroupCommitLedgerActor } from '../../sim/sd/groupCommit.ts';

export const DRIVER_OPENING_MINOR = 1_000_000_000;

export interface BatchTiming {
  /** From the batch sent to its last answer back (µs): what its senders wait. */
  wallUs: number;
  /** The outermost transaction's own time (µs): BEGIN and COMMIT, without the requests applied inside it. */
  commitUs: number;
  /** Per answer of the batch: 'ok' for an answer with ok true (whatever its code), else its refusal code. */
  codes: string[];
}

export interface LedgerDriver {
  readonly ledger: Ledger;
  /** Sends the batch in one event-loop turn and resolves once every answer came back. */
  send(batch: readonly ServerRequest[]): Promise<BatchTiming>;
  /** Fresh, validly signed requests of each kind (each call a new transaction, counter and request id). */
  make: RequestMaker;
  stop(): void;
}

export interface RequestMaker {
  debit(): ServerRequest;
  auth(): ServerRequest;
  /** A capture (or release) of an authorisation answered earlier; undefined when none is left. */
  capture(): ServerRequest | undefined;
  release(): ServerRequest | undefined;
  sync(): ServerRequest;
  remitGrouped(items: number): ServerRequest;
  remitAggregate(items: number): ServerRequest;
  settle(items: number): ServerRequest;
}

const seed = (n: number) => new Uint8Array(32).fill(n);

/** Opens `means` means on the store and starts the group-commit actor over it. */
export function startLedgerDriver(store: LedgerStore, options: { scheme: SignatureScheme; means: number; payees?: number; topUpRules?: TopUpRules }): LedgerDriver {
  const { scheme, means } = options;
  const payees = options.payees ?? 20;
  const serverKey = keyFromSeed(scheme, seed(200));
  const proxyKeys: SigningKey[] = Array.from({ length: means }, (_, i) => keyFromSeed(scheme, seed(i % 199)));
  const posKey = keyFromSeed(scheme, seed(201));
  const keyIndex = new Map(proxyKeys.map((_, i) => [`p${i}`, i]));
  const input: LedgerActorInput = {
    key: serverKey,
    scheme,
    publicKeyOf: (id) => (id === 'pos0' ? posKey.publicKey : keyIndex.has(id) ? proxyKeys[keyIndex.get(id)!]!.publicKey : undefined),
    // A fixed time: the server stamps nothing with it that the driver reads.
    now: () => 1_700_000_000_000,
  };
  const ledger = new Ledger(store, options.topUpRules);
  store.transaction(() => {
    for (let m = 0; m < means; m++) ledger.openMeans({ meansId: `m${m}`, kind: 'prepaid', openingBalanceMinor: DRIVER_OPENING_MINOR, creditLimitMinor: 0 });
  });

  // The commit's own time: the outermost transaction less the work done inside it.
  let depth = 0;
  let commitUs = 0;
  const transaction = store.transaction.bind(store);
  store.transaction = <T>(fn: () => T): T => {
    if (depth > 0) return transaction(fn);
    depth++;
    let innerMs = 0;
    const started = performance.now();
    try {
      return transaction(() => {
        const innerStart = performance.now();
        try {
          return fn();
        } finally {
          innerMs = performance.now() - innerStart;
        }
      });
    } finally {
      depth--;
      commitUs += (performance.now() - started - innerMs) * 1000;
    }
  };

  let waiting = 0;
  let release: () => void = () => undefined;
  let codes: string[] = [];
  const machine = setup({ actors: { ledger: createGroupCommitLedgerActor(ledger) } }).createMachine({
    invoke: { src: 'ledger', id: 'ledger', input },
    on: {
      'ledger.result': {
        actions: ({ event }) => {
          const { result } = event as unknown as LedgerEvent;
          codes.push(result.ok ? 'ok' : result.code);
          if (--waiting === 0) release();
        },
      },
    },
  });
  const actor = createActor(machine).start();
  const ledgerRef = actor.getSnapshot().children.ledger as AnyActorRef;

  const send = async (batch: readonly ServerRequest[]): Promise<BatchTiming> => {
    const answered = new Promise<void>((resolve) => (release = resolve));
    waiting = batch.length;
    codes = [];
    commitUs = 0;
    const sent = performance.now();
    for (const request of batch) ledgerRef.send({ type: 'ledger.apply', request } satisfies LedgerCommand);
    await answered;
    return { wallUs: (performance.now() - sent) * 1000, commitUs, codes };
  };

  // ------------------------------------------------------------------ requests
  const counters = new Array<number>(means).fill(0);
  let next = 0;
  let reqSeq = 0;
  const holds: Array<{ m: number; txId: string; amountMinor: number }> = [];
  const nextMeans = () => next++ % means;
  const claimOf = (m: number, amountMinor: number): PaymentClaim => {
    const counter = ++counters[m]!;
    return { txId: `p${m}.t${counter}`, amountMinor, payee: `shop${counter % payees}`, timeMs: counter, counter, proxyId: `p${m}`, meansId: `m${m}` };
  };
  const signed = <R extends ServerRequest>(key: SigningKey, unsigned: Unsigned<R>): R => signRequest<R>(key, unsigned);
  const request = (m: number, body: Record<string, unknown>): ServerRequest =>
    signed(proxyKeys[m]!, { ...body, from: `p${m}`, reqId: `r${++reqSeq}` } as Unsigned<ServerRequest>);
  const proofs = (m: number, items: number): Proof[] =>
    Array.from({ length: items }, () => {
      const claim = claimOf(m, 1 + (reqSeq % 97));
      return { ...claim, sig: signClaim(proxyKeys[m]!, claim), path: 'localOffline' as const };
    });

  const make: RequestMaker = {
    debit: () => {
      const m = nextMeans();
      return request(m, { kind: 'debit', claim: claimOf(m, 1 + (reqSeq % 97)) });
    },
    auth: () => {
      const m = nextMeans();
      const claim = claimOf(m, 100 + (reqSeq % 97));
      holds.push({ m, txId: claim.txId, amountMinor: claim.amountMinor });
      return request(m, { kind: 'auth', claim });
    },
    capture: () => {
      const hold = holds.shift();
      return hold && request(hold.m, { kind: 'capture', txId: hold.txId, amountMinor: hold.amountMinor });
    },
    release: () => {
      const hold = holds.shift();
      return hold && request(hold.m, { kind: 'release', txId: hold.txId });
    },
    sync: () => {
      const m = nextMeans();
      return request(m, { kind: 'sync', meansId: `m${m}` });
    },
    remitGrouped: (items) => {
      const m = nextMeans();
      return request(m, { kind: 'remit', mode: 'grouped', transactions: proofs(m, items) });
    },
    remitAggregate: (items) => {
      const m = nextMeans();
      const list = proofs(m, items);
      const aggregate = { meansId: `m${m}`, payee: 'shop-aggregate', sumMinor: list.reduce((sum, p) => sum + p.amountMinor, 0), txIds: list.map((p) => p.txId), counters: list.map((p) => p.counter) };
      return request(m, { kind: 'remit', mode: 'aggregate', aggregates: [aggregate] });
    },
    settle: (items) => {
      const m = nextMeans();
      return signed(posKey, { kind: 'settle', from: 'pos0', reqId: `s${++reqSeq}`, proofs: proofs(m, items) } as Unsigned<ServerRequest>);
    },
  };

  return {
    ledger,
    send,
    make,
    stop: () => {
      actor.stop();
      store.transaction = transaction;
    },
  };
}
