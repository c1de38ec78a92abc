// Goal: the child process of the SQLite crash test: writes ledger transactions in a loop until it is killed.
// Method: opens the ledger file given as argv[2] with the synchronous mode argv[3], opens ten means (a no-op
// when an earlier writer on the same file opened them), then
// alternates single debits with five-transaction aggregates and prints `committed <kind> <id>` on stdout after
// each transaction returns, i.e. after its commit. The test kills it with SIGKILL at some point in that stream
// and checks that every printed transaction is on the reopened ledger, whole. Ids carry the writer's tag
// (argv[4]), so writers started one after another on the same file never reuse an id.

import { Ledger } from '../../machines/domain/ledger.ts';
import { SqliteLedgerStore, type SynchronousMode } from './sqliteLedgerStore.ts';

const [path, synchronous, tag] = process.argv.slice(2) as [string, SynchronousMode, string];
const ledger = new Ledger(new SqliteLedgerStore(path, { synchronous }));
const CRASH_MEANS = 10;
const CRASH_OPENING_MINOR = 1_000_000_000;
for (let m = 0; m < CRASH_MEANS; m++) ledger.openMeans({ meansId: `m${m}`, kind: 'prepaid', openingBalanceMinor: CRASH_OPENING_MINOR, creditLimitMinor: 0 });
process.stdout.write('ready\n');

for (let i = 0; ; i++) {
  const meansId = `m${i % CRASH_MEANS}`;
  if (i % 2 === 0) {
    ledger.debit({ txId: `${tag}d${i}`, meansId, payee: `shop${i % 3}`, amountMinor: 1 + (i % 97), requestId: `p/${tag}.${i}`, proxyId: 'p' });
    process.stdout.write(`committed debit ${tag}d${i}\n`);
  } else {
    const txIds = Array.from({ length: 5 }, (_, k) => `${tag}a${i}.${k}`);
    ledger.postAggregate({ id: `${tag}agg${i}`, meansId, payee: 'shop0', sumMinor: 5 * (1 + (i % 13)), txIds, requestId: `p/${tag}.${i}` });
    process.stdout.write(`committed aggregate ${tag}agg${i}\n`);
  }
}
