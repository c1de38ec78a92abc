// Goal: ledger read-back of an mqtt run — what the coordinator learns from the payment servers' SQLite files:
// once a minute the sum of balances [INV-3] and the requests answered since the last sample; at the end every
// posting, aggregate and stored answer, for the end checks and the ledger figures of summary.json.
// Method: read-only connections (WAL): a reader never blocks its server, and the coordinator never writes (a
// second writer would break the server's deferred transactions). At the end, after every server stopped, each
// file is opened as a `Ledger` and handed to the same `checkAtEnd` as the virtual mode; transactions posted twice
// are found as the virtual mode finds them — two different requests whose answers name the same posting — from
// the answers SD stored beside every request, through the run record's one INV-4 check.

import { Ledger } from '../../machines/domain/ledger.ts';
import { shardOf } from '../../machines/link.ts';
import type { ServerResult } from '../../machines/messages.ts';
import type { Scenario } from '../scenario/types.ts';
import { registryOf } from '../core/fleetKeys.ts';
import type { InvariantBook } from '../check/checkers.ts';
import { checkAtEnd, type EndCheckInput, type LedgerFigures } from '../check/endChecks.ts';
import type { Metrics } from '../run/metrics.ts';
import type { RunRecord } from '../run/runRecord.ts';
import { SqliteLedgerStore } from '../sd/sqliteLedgerStore.ts';
import type { Adversary } from './adversary.ts';
import type { ServerGroup } from './supervisor.ts';

/** Read-only connections to the servers' ledgers during the run, for the per-minute figures. */
export class LedgerReaders {
  private readers: Array<SqliteLedgerStore | undefined> = [];
  /** Answers each server had stored at the last sample: the requests it answered since are the difference. */
  private answeredAtLastSample: number[] = [];

  constructor(private readonly log: (line: string) => void) {}

  open(servers: readonly ServerGroup[]): void {
    this.readers = servers.map((s) => this.openReader(s.dbPath));
  }

  /** A reader never blocks the server (WAL); a second writer would break its deferred transactions. */
  private openReader(dbPath: string): SqliteLedgerStore | undefined {
    try {
      return new SqliteLedgerStore(dbPath, { readonly: true });
    } catch (error) {
      this.log(`  no conservation sums during the run for ${dbPath}: ${(error as Error).message}`);
      return undefined;
    }
  }

  sample(servers: readonly ServerGroup[], book: InvariantBook, metrics: Metrics): void {
    for (const [i, reader] of this.readers.entries()) {
      if (!reader) continue;
      // [INV-3 conservation] once a minute, on what the server has committed so far (one SQL sum).
      const sum = reader.sumOfBalancesMinor();
      book.check('INV-3', sum === 0, () => `server ${servers[i]!.range}: sum of balances ${sum}`);
      // Requests answered, measured: the answers the server stored since the last sample (one per sender and
      // reqId; resends answered from a stored answer are not counted again). A process serving several shards
      // counts under its first: a stored answer does not say which shard's topic its request came through.
      const answered = reader.answeredRequests();
      const before = this.answeredAtLastSample[i] ?? 0;
      if (answered > before) metrics.recordServerRequest(servers[i]!.shards[0]!, answered - before);
      this.answeredAtLastSample[i] = Math.max(answered, before);
    }
  }

  close(): void {
    for (const reader of this.readers) reader?.close();
    this.readers = [];
  }
}

export interface ReadBackInput {
  scenario: Scenario;
  servers: readonly ServerGroup[];
  book: InvariantBook;
  record: RunRecord;
  /** What every worker's journals and POS units still held (their final reports). */
  journals: Pick<EndCheckInput, 'terminals' | 'pos'>;
  adversary: Adversary;
}

/** The end checks on the stopped servers' ledger files; returns the ledger figures of the summary. */
export function checkLedgersAtEnd(input: ReadBackInput): LedgerFigures {
  const { scenario, servers, book, record } = input;
  const stores = servers.map((s) => new SqliteLedgerStore(s.dbPath, { readonly: true }));
  try {
    const ledgers = stores.map((store) => new Ledger(store));
    const ledgerOfMeans = (meansId: string): Ledger => {
      const shard = shardOf(meansId, scenario.population.shards);
      return ledgers[servers.findIndex((s) => s.shards.includes(shard))]!;
    };
    for (const store of stores) checkStoredAnswers(store, book, record);
    const registry = registryOf(scenario);
    const figures = checkAtEnd({
      book,
      ledgers: ledgers.map((ledger, i) => ({ label: `server ${servers[i]!.range}`, ledger })),
      ledgerOfMeans,
      approved: record.approved,
      posProofs: record.posProofs,
      terminals: input.journals.terminals,
      pos: input.journals.pos,
      publicKeyOf: (id) => registry.publicKeys[id],
      scheme: scenario.crypto,
      duplicatedPostings: record.duplicatedPostings,
    });
    input.adversary.check(book, ledgerOfMeans);
    return figures;
  } finally {
    for (const store of stores) store.close();
  }
}

/** [INV-4 nothing twice] on the answers SD committed beside every request, in the order it stored them. */
function checkStoredAnswers(store: SqliteLedgerStore, book: InvariantBook, record: RunRecord): void {
  const rows = store.db.prepare('SELECT sender, req_id, result FROM results ORDER BY rowid').all() as Array<{ sender: string; req_id: string; result: string }>;
  for (const row of rows) {
    const result = JSON.parse(row.result) as ServerResult;
    if (!result.ok || !result.posted) continue;
    record.checkPostedOnce(book, `${row.sender}/${row.req_id}`, row.sender, result.posted);
  }
}
