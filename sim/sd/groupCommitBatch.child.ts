// Goal: the child process of the group-commit crash tests (sqliteLedgerStoreBatch.test.ts, postgresLedgerStore.test.ts):
// a payment server's ledger path — signed debits through `handleRequest` and the group-commit actor of
// serverProcess.ts, on the durable ledger (SQLite with its row cache, or PostgreSQL with its overlay) — answering
// batches until it is killed.
// Method: opens the ledger argv[2] (a SQLite path, `sqlite:PATH` or `postgres://…?schema=S`) with the synchronous
// mode argv[3] (`full-deferred`: FULL with the fsync after the commit, as a server's pipelined group commit) and
// opens ten means (a no-op when an earlier child on the same ledger opened them). Then, batch after batch, sends
// eight signed debits to the real group-commit actor in one event-loop turn (so they share one commit, each request
// undone alone when refused: every fourth asks for more than its means holds) and prints `answered <reqId> <code>
// <txId> <counter>` for each answer the actor hands back, i.e. after the batch's commit; the next batch goes once
// all eight are answered. The test kills it with SIGKILL somewhere in that stream and checks the reopened ledger
// against what it printed. Ids carry the child's tag (argv[4]), so children started one after another on the same
// ledger never reuse one. Two more modes (argv[5]): `die-after-commit:N` kills the process itself (SIGKILL) right
// after the Nth batch's commit returned and before any of its answers is handed back, printing `unanswered <first
// index>` first; `resend:I` sends the one batch starting at index I again (the same signed requests), prints its
// answers and exits 0 — a restarted server receiving the senders' resends.

import { createActor, setup, type AnyActorRef } from 'xstate';
import { Ledger } from '../../machines/domain/ledger.ts';
import { signRequest } from '../../machines/domain/requests.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import type { DebitRequest } from '../../machines/messages.ts';
import type { LedgerActorInput, LedgerCommand, LedgerEvent } from '../../machines/server.ts';
import { createGroupCommitLedgerActor } from './groupCommit.ts';
import { openLedgerStore, parseLedgerSpec } from './ledgerSpec.ts';
import type { SynchronousMode } from './sqliteLedgerStore.ts';

const BATCH_MEANS = 10;
const BATCH_OPENING_MINOR = 1_000_000;
const BATCH_SIZE = 8;

const [spec, durability, tag, mode = ''] = process.argv.slice(2) as [string, SynchronousMode | 'full-deferred', string, string?];
// `full-deferred`: synchronous FULL with the server's pipelined commits (the fsync after the commit, off the loop).
const deferred = durability === 'full-deferred';
const store = openLedgerStore(parseLedgerSpec(spec), { synchronous: deferred ? 'full' : durability, deferSync: deferred });
const ledger = new Ledger(store);
for (let m = 0; m < BATCH_MEANS; m++) ledger.openMeans({ meansId: `m${m}`, kind: 'prepaid', openingBalanceMinor: BATCH_OPENING_MINOR, creditLimitMinor: 0 });

let batchStart = 0;
const dieAfter = mode.startsWith('die-after-commit:') ? Number(mode.slice('die-after-commit:'.length)) : 0;
if (dieAfter > 0) {
  // Every outermost transaction from here on is one batch's commit (the means are open): the Nth returning is the
  // moment between a commit and its answers, where this child dies.
  let depth = 0;
  let commits = 0;
  // A prefetch's dry run (PostgreSQL) runs the batch's transactions only to undo them: those are no commits.
  const prefetch = store.prefetch?.bind(store);
  if (prefetch) {
    store.prefetch = (fn: () => void): void => {
      depth++;
      try {
        prefetch(fn);
      } finally {
        depth--;
      }
    };
  }
  const transaction = store.transaction.bind(store);
  store.transaction = <T>(fn: () => T): T => {
    depth++;
    let result: T;
    try {
      result = transaction(fn);
    } finally {
      depth--;
    }
    if (depth === 0 && ++commits === dieAfter) {
      process.stdout.write(`unanswered ${batchStart}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
    return result;
  };
}

const proxyKey = keyFromSeed('sim', new Uint8Array(32).fill(1));
const input: LedgerActorInput = { key: keyFromSeed('sim', new Uint8Array(32).fill(9)), scheme: 'sim', publicKeyOf: () => proxyKey.publicKey, now: () => 1 };
let waiting = 0;
let next: () => void = () => undefined;
const machine = setup({ actors: { ledger: createGroupCommitLedgerActor(ledger, undefined, store.syncCommitted?.bind(store)) } }).createMachine({
  invoke: { src: 'ledger', id: 'ledger', input },
  on: {
    'ledger.result': {
      actions: ({ event }) => {
        const { request, result } = event as unknown as LedgerEvent;
        const claim = (request as DebitRequest).claim;
        process.stdout.write(`answered ${request.reqId} ${result.code} ${claim.txId} ${claim.counter}\n`);
        if (--waiting === 0) next();
      },
    },
  },
});
const ledgerRef = createActor(machine).start().getSnapshot().children.ledger as AnyActorRef;
process.stdout.write('ready\n');

// Each child counts from its own base, so the counters of successive children on one ledger never meet.
const counterBase = Number(tag.replace(/\D/g, '')) * 1_000_000;
async function sendBatch(i: number): Promise<void> {
  batchStart = i;
  const answered = new Promise<void>((resolve) => (next = resolve));
  waiting = BATCH_SIZE;
  for (let k = i; k < i + BATCH_SIZE; k++) {
    const amountMinor = k % 4 === 3 ? BATCH_OPENING_MINOR * 2 : 1 + (k % 7);
    const counter = counterBase + k;
    const claim = { txId: `${tag}t${k}`, amountMinor, payee: `shop${k % 3}`, timeMs: 1, counter, proxyId: 'p1', meansId: `m${k % BATCH_MEANS}` };
    ledgerRef.send({ type: 'ledger.apply', request: signRequest<DebitRequest>(proxyKey, { kind: 'debit', from: 'p1', reqId: `${tag}r${k}`, claim }) } satisfies LedgerCommand);
  }
  await answered;
}

if (mode.startsWith('resend:')) {
  await sendBatch(Number(mode.slice('resend:'.length)));
  store.close();
  process.exit(0);
}
for (let i = 0; ; i += BATCH_SIZE) await sendBatch(i);
