// Goal: the child process of the group-commit crash test (sqliteLedgerStoreBatch.test.ts): a payment server's
// ledger path — signed debits through `handleRequest` and the group-commit actor of serverProcess.ts, on the
// SQLite ledger with its row cache — answering batches until it is killed.
// Method: opens the ledger file argv[2] with the synchronous mode argv[3] and opens ten means (a no-op when an
// earlier child on the same file opened them). Then, batch after batch, sends eight signed debits to the real
// group-commit actor in one event-loop turn (so they share one commit, each request undone alone when refused:
// every fourth asks for more than its means holds) and prints `answered <reqId> <code> <txId> <counter>` for each
// answer the actor hands back, i.e. after the batch's commit; the next batch goes once all eight are answered.
// The test kills it with SIGKILL somewhere in that stream and checks the reopened file against what it printed.
// Ids carry the child's tag (argv[4]), so children started one after another on the same file never reuse one.

import { createActor, setup, type AnyActorRef } from 'xstate';
import { Ledger } from '../../machines/domain/ledger.ts';
import { signRequest } from '../../machines/domain/requests.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import type { DebitRequest } from '../../machines/messages.ts';
import type { LedgerActorInput, LedgerCommand, LedgerEvent } from '../../machines/server.ts';
import { createGroupCommitLedgerActor } from './groupCommit.ts';
import { SqliteLedgerStore, type SynchronousMode } from './sqliteLedgerStore.ts';

const BATCH_MEANS = 10;
const BATCH_OPENING_MINOR = 1_000_000;
const BATCH_SIZE = 8;

const [path, synchronous, tag] = process.argv.slice(2) as [string, SynchronousMode, string];
const ledger = new Ledger(new SqliteLedgerStore(path, { synchronous }));
for (let m = 0; m < BATCH_MEANS; m++) ledger.openMeans({ meansId: `m${m}`, kind: 'prepaid', openingBalanceMinor: BATCH_OPENING_MINOR, creditLimitMinor: 0 });

const proxyKey = keyFromSeed('sim', new Uint8Array(32).fill(1));
const input: LedgerActorInput = { key: keyFromSeed('sim', new Uint8Array(32).fill(9)), scheme: 'sim', publicKeyOf: () => proxyKey.publicKey, now: () => 1 };
let waiting = 0;
let next: () => void = () => undefined;
const machine = setup({ actors: { ledger: createGroupCommitLedgerActor(ledger) } }).createMachine({
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

// Each child counts from its own base, so the counters of successive children on one file never meet.
const counterBase = Number(tag.replace(/\D/g, '')) * 1_000_000;
for (let i = 0; ; i += BATCH_SIZE) {
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
