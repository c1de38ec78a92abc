// Goal: ledger read-back of an mqtt run — what the coordinator learns from the payment servers' ledgers (SQLite
// files, or PostgreSQL schemas over read-only sessions, both opened through sim/sd/ledgerSpec.ts):
// once a minute the sum of balances [INV-3] and the requests answered since the last sample; at the end every
// posting, aggregate and stored answer, for the end checks and the ledger figures of summary.json.
// Method: read-only connections (WAL): a reader never blocks its server, and the coordinator never writes (a
// second writer would break the server's deferred transactions). At the end, after every server stopped, each
// file is opened as a `Ledger` and handed, with the coordinator's run record, to the same `checkAtEnd` as the
// virtual mode. The answers SD stored beside every request go, in the order each server committed them and across
// every server (a transaction posted by two servers is posted twice too), through the virtual mode's INV-4 checker
// `AnswersOfSd`: it finds a transaction posted by two different requests and collects the payments SD reversed
// (released holds), which the end checks require to be reversed on the ledger.

import { Ledger } from '../../machines/domain/ledger.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import { shardOf } from '../../machines/link.ts';
import type { ServerResult } from '../../machines/messages.ts';
import type { Scenario } from '../scenario/types.ts';
import { registryOf, terminalPlans, type RunRegistry } from '../core/fleetKeys.ts';
import { checkPursesReconcile, type PurseAtEnd } from '../check/localValueCheck.ts';
import { exposuresOf, lossAccountOf, purseLossesOf, sharedMeansOf, type LossAccountFigures, type SharedMeansFigures } from '../check/lossAccount.ts';
import type { InvariantBook } from '../check/invariantBook.ts';
import { checkAtEnd, type LedgerFigures } from '../check/endChecks.ts';
import { checkLedgerConserves } from '../check/inv3Conservation.ts';
import { AnswersOfSd } from '../check/inv4NothingLostNothingTwice.ts';
import type { Metrics } from '../run/metrics.ts';
import { wallEpochMs } from '../core/realTime.ts';
import type { RunRecord, EndOfRun } from '../run/runRecord.ts';
import { LedgerUnavailableError } from '../sd/postgresConnection.ts';
import { formatLedgerSpec, openLedgerStore, storedAnswers, type DurableLedgerStore, type LedgerSpec } from '../sd/ledgerSpec.ts';
import type { Adversary } from './adversary.ts';
import type { ServerGroup } from './supervisor.ts';

/** How long a sample's read waits for an unreachable PostgreSQL, and how long after that the samples leave it be. */
const READER_DEADLINE_REAL_MS = 500;
const READER_BACKOFF_REAL_MS = 2_000;

/** Read-only connections to the servers' ledgers during the run, for the per-minute figures. */
export class LedgerReaders {
  private readers: Array<DurableLedgerStore | undefined> = [];
  /** Answers each server had stored at the last sample: the requests it answered since are the difference. */
  private answeredAtLastSample: number[] = [];
  /**
   * Wall-clock ms before which no sample tries the database again, after it was unreachable. A reader's query is
   * synchronous: every try at a crashed PostgreSQL blocks the coordinator (its clock, its workers' reports, the
   * fault's own pg_ctl) for the reader's deadline, and at ×60 a sample comes every real second.
   */
  private retryAfterEpochMs = 0;

  constructor(private readonly log: (line: string) => void) {}

  open(servers: readonly ServerGroup[]): void {
    // A server on an agent with a SQLite ledger has no file here until the end: the agent reads it for us.
    this.readers = servers.map((s) => (s.remoteFigures ? undefined : this.openReader(s.ledger)));
  }

  /**
   * A reader never blocks the server (SQLite WAL; a read-only PostgreSQL session); a second writer would break its
   * deferred transactions. On PostgreSQL a sample gives up after half a second of the database away rather than
   * stall the run.
   */
  private openReader(ledger: LedgerSpec): DurableLedgerStore | undefined {
    try {
      return openLedgerStore(ledger, { readonly: true, deadlineMs: READER_DEADLINE_REAL_MS });
    } catch (error) {
      this.log(`  no conservation sums during the run for ${formatLedgerSpec(ledger, true)}: ${(error as Error).message}`);
      return undefined;
    }
  }

  /**
   * One minute's sample. A server on an agent with its SQLite ledger on the agent's disk is asked for the same two
   * figures over the agent's channel (at most 2 s; a sample it misses is skipped, the end checks read it all).
   */
  async sample(servers: readonly ServerGroup[], book: InvariantBook, metrics: Metrics): Promise<void> {
    if (wallEpochMs() < this.retryAfterEpochMs) return;
    const remote = await Promise.all(servers.map((s) => (s.remoteFigures ? withDeadline(s.remoteFigures(), 2_000).catch((error: Error) => error) : undefined)));
    for (const [i, server] of servers.entries()) {
      const reader = this.readers[i];
      const figures = remote[i];
      let answered: number;
      if (figures instanceof Error) {
        this.log(`  sample: ledger of server ${server.range} on ${server.process.host ?? 'its agent'} unavailable: ${figures.message}`);
        continue;
      } else if (figures) {
        // [INV-3 conservation] once a minute, the agent's sum over what the server has committed so far.
        checkLedgerConserves(book, `server ${server.range}`, { sumOfBalancesMinor: () => figures.sumOfBalancesMinor });
        answered = figures.answeredRequests;
      } else {
        if (!reader) continue;
        try {
          // [INV-3 conservation] once a minute, on what the server has committed so far (one SQL sum).
          checkLedgerConserves(book, `server ${server.range}`, reader);
          // Requests answered, measured: the answers the server stored since the last sample (one per sender and
          // reqId; resends answered from a stored answer are not counted again). A process serving several shards
          // counts under its first: a stored answer does not say which shard's topic its request came through.
          answered = reader.answeredRequests();
        } catch (error) {
          // A database that is down skips this sample; the end checks read it all anyway.
          if (!(error instanceof LedgerUnavailableError)) throw error;
          this.log(`  sample: ledger of server ${server.range} unavailable: ${error.message}`);
          if (!error.unreachable) continue;
          // Every server of a run keeps its ledger on the same PostgreSQL: the others are away too.
          this.retryAfterEpochMs = wallEpochMs() + READER_BACKOFF_REAL_MS;
          return;
        }
      }
      const before = this.answeredAtLastSample[i] ?? 0;
      if (answered > before) metrics.recordServerRequest(server.shards[0]!, answered - before);
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
  journals: Pick<EndOfRun, 'terminals' | 'pos' | 'unansweredOrders'> & { purses?: PurseAtEnd[] };
  adversary: Adversary;
}

function withDeadline<T>(work: Promise<T>, deadlineMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** The end checks' figures, and the loss account and shared means read from the same ledgers. */
export interface ReadBackFigures {
  ledger: LedgerFigures;
  lossAccount: LossAccountFigures;
  sharedMeans: SharedMeansFigures;
}

/** Whether a means of the registry has a top-up agreement (INV-3's top-up check). */
function hasAgreementIn(registry: RunRegistry): (meansId: string) => boolean {
  const agreed = new Set(registry.means.filter((m) => m.topUp !== undefined).map((m) => m.meansId));
  return (meansId) => agreed.has(meansId);
}

/** The end checks on the stopped servers' ledgers (files or schemas); returns the ledger figures of the summary. */
export function checkLedgersAtEnd(input: ReadBackInput): ReadBackFigures {
  const { scenario, servers, book, record } = input;
  const stores = servers.map((s) => openLedgerStore(s.ledger, { readonly: true }));
  try {
    const ledgers = stores.map((store) => new Ledger(store));
    const ledgerOfMeans = (meansId: string): Ledger => {
      const shard = shardOf(meansId, scenario.population.shards);
      return ledgers[servers.findIndex((s) => s.shards.includes(shard))]!;
    };
    // The adversary's injections carry their reqId (unique to it) but not the identity it spoke as.
    const injected = new Set(input.adversary.injections.map((i) => i.reqId));
    const answers = answersOfSd(stores, book, (requestId) => injected.has(requestId.slice(requestId.lastIndexOf('/') + 1)));
    const registry = registryOf(scenario);
    const figures = checkAtEnd(
      record.endCheckInput(answers, {
        book,
        ledgers: ledgers.map((ledger, i) => ({ label: `server ${servers[i]!.range}`, ledger })),
        terminals: input.journals.terminals,
        pos: input.journals.pos,
        unansweredOrders: input.journals.unansweredOrders,
        publicKeyOf: (id) => registry.publicKeys[id],
        serverPublicKey: keyFromSeed(scenario.crypto, Buffer.from(registry.serverKeySeedHex, 'hex')).publicKey,
        scheme: scenario.crypto,
        ...(registry.topUpSeed === undefined ? {} : { hasTopUpAgreement: hasAgreementIn(registry) }),
      }),
    );
    // [INV-6 signatures] every adversarial message the coordinator sent was refused and changed nothing.
    input.adversary.check(book, ledgerOfMeans);
    // [INV-4 local value] each purse on a SIM is worth what its server's books say.
    checkPursesReconcile(book, input.journals.purses ?? [], (meansId) => ledgerOfMeans(meansId).accountOf(`means:${meansId}`)?.balanceMinor ?? 0);
    const plans = terminalPlans(scenario);
    const purseLosses = ledgers.flatMap((ledger, i) => purseLossesOf(ledger, storedAnswers(stores[i]!)));
    const exposures = exposuresOf(plans);
    return {
      ledger: figures,
      lossAccount: lossAccountOf(ledgers, (meansId) => exposures.get(meansId), purseLosses),
      sharedMeans: sharedMeansOf(plans, record.approved.values()),
    };
  } finally {
    for (const store of stores) store.close();
  }
}

/**
 * [INV-4 nothing twice] SD's answers as every server stored them beside its requests, read in the order each
 * committed them (SQLite by rowid; PostgreSQL by sender and reqId: its results table keeps no order, and the
 * checker's verdict does not depend on it), through one `AnswersOfSd` for the whole run: the virtual mode's checker (a transaction posted
 * by two different requests, on one server or two; what SD reversed) on them.
 */
function answersOfSd(stores: readonly DurableLedgerStore[], book: InvariantBook, isInjected: (requestId: string) => boolean): AnswersOfSd {
  const answers = new AnswersOfSd(book, isInjected);
  for (const store of stores) {
    for (const row of storedAnswers(store)) answers.seeAnswer(row.sender, row.reqId, JSON.parse(row.resultJson) as ServerResult);
  }
  return answers;
}
