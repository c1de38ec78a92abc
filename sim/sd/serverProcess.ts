// Goal: the runtime of `payfleet server`, one payment-server (SD) process of an mqtt run, serving a range of
// shards with its ledger in a SQLite file or a PostgreSQL schema, so that killing it (SIGKILL) and starting it
// again on the same ledger loses and doubles nothing. Its flags are parsed by sim/cli/commands/server.ts (`--db`
// or `--ledger`, turned into a LedgerSpec), which calls `runServer`.
// Method: read the run registry, open the durable ledger (ledgerSpec.ts) and open (idempotently, in one
// transaction) every means of the registry that falls in the range; then run the domain's server machine with
// the MQTT link and a ledger child over that ledger. `handleRequest` applies each request and stores its signed
// answer inside one store transaction. With `--commit each` the child is the domain's `createLedgerActor`: that
// transaction is the outermost one, so better-sqlite3 commits it before `handleRequest` returns, and only then
// does the child hand the answer to the machine, which sends it over the link. With `--commit group` (the
// default) the requests of one event-loop turn run inside one outer transaction (each request's own becomes a
// savepoint) and their answers are handed over after that commit is durable: the same rule, one fsync per batch,
// which on SQLite runs off the event loop while the next batch is applied (groupCommit.ts, pipelined commits). On
// PostgreSQL the outermost transaction is one PostgreSQL transaction too (postgresLedgerStore.ts); while the
// database is unreachable a batch waits (the store retries until its deadline), and past the deadline it is
// dropped unanswered and the server serves on: the senders resend, and nothing was answered that is not committed. Either
// way an answer that left the process is on disk (fsynced, with synchronous FULL), and a request resent after a
// crash finds its stored answer and gets the same one [INV-4 nothing lost, nothing twice]. The process prints
// `payfleet server: shards R ready on URL` once its link is up (subscriptions granted), counts the requests it
// answered per shard, and when its stop signal is aborted (SIGTERM or SIGINT, through the CLI) stops the machine,
// closes the file and prints its counts. The
// same link carries the harness's control commands for its shards (payments through other points of issue),
// which serverControl.ts applies to the same ledger under the same commit-before-answer rule.
// `runServer` resolves 'stopped' or 'failed' (a failure while serving), and throws before serving for bad input
// (registry or ledger file).

import { createActor } from 'xstate';
import { Ledger } from '../../machines/domain/ledger.ts';
import { DomainError } from '../../machines/domain/money.ts';
import { shardOf } from '../../machines/link.ts';
import type { ServerRequest } from '../../machines/messages.ts';
import { createLedgerActor, serverMachine, type ServerEmitted } from '../../machines/server.ts';
import { createMqttLink } from '../../broker/mqttLink.ts';
import { createLinkStats } from '../../broker/linkOptions.ts';
import { brokerUrlList } from '../../broker/linkPolicy.ts';
import { formatShardRange, serverIdentity, usernameOf } from '../../broker/topics.ts';
import { meansOfShards, publicKeyLookup, topUpRulesOf, readRegistry, serverKeyOf, type RunRegistry } from './registry.ts';
import type { SynchronousMode } from './sqliteLedgerStore.ts';
import { formatLedgerSpec, openLedgerStore as openStoreOfSpec, type DurableLedgerStore, type LedgerSpec } from './ledgerSpec.ts';
import { LedgerUnavailableError } from './postgresConnection.ts';
import { PostgresLedgerStore } from './postgresLedgerStore.ts';
import { createGroupCommitLedgerActor } from './groupCommit.ts';
import { wallEpochMs } from '../core/realTime.ts';
import { createServerControl } from './serverControl.ts';

export interface ServerOptions {
  shards: number[];
  brokerUrl: string;
  secret: string;
  /** The durable ledger: a SQLite file (`--db PATH`, `--ledger sqlite:PATH`) or a PostgreSQL schema. */
  ledger: LedgerSpec;
  registryPath: string;
  synchronous: SynchronousMode;
  commit: 'group' | 'each';
  seed: number;
}

/** What the process needs to be told, and where its stop comes from. */
export interface ServerIo {
  out(line: string): void;
  err(line: string): void;
  /** Stops the server when aborted; a string reason ('SIGTERM') is printed as why it stopped. */
  signal: AbortSignal;
}

/** Bad input found while opening (a registry or ledger file that does not fit the flags): nothing was served. */
export class ServerInputError extends Error {
  constructor(
    readonly code: 'shardOutsideRegistry' | 'ledgerOfAnotherServer' | 'meansCannotOpen',
    message: string,
    readonly value: unknown,
  ) {
    super(message);
    this.name = 'ServerInputError';
  }
}

/** The shard a request is for: the shard of the means it names (capture and release: of their hold or posting). */
export function shardOfRequest(request: ServerRequest, ledger: Ledger, shardCount: number): number | undefined {
  let meansId: string | undefined;
  switch (request.kind) {
    case 'auth':
    case 'debit':
      meansId = request.claim?.meansId;
      break;
    case 'sync':
      meansId = request.meansId;
      break;
    case 'settle':
      meansId = request.proofs?.[0]?.meansId;
      break;
    case 'remit':
      meansId = request.mode === 'grouped' ? request.transactions?.[0]?.meansId : request.aggregates?.[0]?.meansId;
      break;
    case 'capture':
    case 'release':
      meansId = ledger.holdOf(request.txId)?.meansId ?? ledger.postingOf(request.txId)?.meansId;
      break;
  }
  return typeof meansId === 'string' ? shardOf(meansId, shardCount) : undefined;
}

/** What the process counted while serving. */
export interface ServerCounts {
  /**
   * Answers sent, by shard. `unknown` when the request names no means the ledger knows: a release of a txId SD never
   * saw (it names none; the answer voids the txId), or a malformed request.
   */
  handled: Record<string, number>;
  /** Answers that refused, by code. */
  refused: Record<string, number>;
  /** Link messages that were not requests, or failed validation. */
  rejected: number;
}

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

/**
 * The ledger's store: the SQLite file or the PostgreSQL schema `options.ledger` names (`--db` / `--ledger`). One
 * place, so that the kind of store is chosen here and nowhere else. Throws LedgerFileError when it cannot open.
 */
function openLedgerStore(options: ServerOptions): DurableLedgerStore {
  // Group commit pipelines its commits: a SQLite file syncs each batch after the fact, off the event loop.
  return openStoreOfSpec(options.ledger, { synchronous: options.synchronous, deferSync: options.commit === 'group' });
}

/** The flag that named the ledger, for messages: `--db` for a SQLite file, `--ledger` for PostgreSQL. */
export function ledgerFlagOf(ledger: LedgerSpec): '--db' | '--ledger' {
  return ledger.engine === 'sqlite' ? '--db' : '--ledger';
}

/**
 * Opens the file and checks that it belongs to this server: a file made for another shard range, shard count or
 * server key would answer with another ledger's figures. Then opens every means of the range in one commit.
 */
function openLedger(options: ServerOptions, registry: RunRegistry): { store: DurableLedgerStore; ledger: Ledger; opened: number } {
  const store = openLedgerStore(options);
  // Where the ledger is, for messages: a Postgres URL's password is never printed.
  const where = options.ledger.engine === 'sqlite' ? options.ledger.path : formatLedgerSpec(options.ledger, true);
  try {
    const facts: Record<string, string> = {
      shards: formatShardRange(options.shards),
      shardCount: String(registry.shards),
      serverPublicKey: serverKeyOf(registry).publicKey,
    };
    for (const [key, value] of Object.entries(facts)) {
      const stored = store.getMeta(key);
      if (stored !== undefined && stored !== value) {
        throw new ServerInputError('ledgerOfAnotherServer', `${ledgerFlagOf(options.ledger)}: ${where} is the ledger of another server (${key} ${stored}, this one ${key === 'serverPublicKey' ? 'has another key' : value})`, stored);
      }
    }
    const means = meansOfShards(registry, options.shards);
    // The means' auto-reload agreements: a posting that leaves one below its threshold is topped up in its transaction.
    const ledger = new Ledger(store, topUpRulesOf(registry, means));
    store.transaction(() => {
      for (const [key, value] of Object.entries(facts)) store.putMeta(key, value);
      for (const m of means) {
        try {
          ledger.openMeans(m);
        } catch (error) {
          if (error instanceof DomainError) {
            throw new ServerInputError('meansCannotOpen', `--registry: ${options.registryPath}: means ${m.meansId} cannot be opened on ${where}: ${error.message}`, m.meansId);
          }
          throw error;
        }
      }
    });
    return { store, ledger, opened: means.length };
  } catch (error) {
    store.close();
    throw error;
  }
}

/**
 * Opens what the flags name, checking that it fits them: the registry (RegistryError), the shard range against
 * it, and the ledger file (LedgerFileError, or ServerInputError when it belongs to another server). Nothing is
 * served yet, so each of these is bad input.
 */
function openServer(options: ServerOptions): { registry: RunRegistry } & ReturnType<typeof openLedger> {
  const registry = readRegistry(options.registryPath);
  const outside = options.shards.filter((s) => s >= registry.shards);
  if (outside.length > 0) {
    throw new ServerInputError('shardOutsideRegistry', `--shards: shard ${outside[0]} is outside the ${registry.shards} shards of the registry ${options.registryPath} (0-${registry.shards - 1})`, outside[0]);
  }
  return { registry, ...openLedger(options, registry) };
}

/**
 * Runs the payment server until `io.signal` is aborted or serving fails; resolves with how it ended. Throws,
 * before serving anything, RegistryError, LedgerFileError or ServerInputError for bad input (see openServer).
 */
export async function runServer(options: ServerOptions, io: ServerIo): Promise<'stopped' | 'failed'> {
  const opened = openServer(options);
  const registry = opened.registry;
  const { store, ledger } = opened;
  // The means opened above are durable before anything is served (a store that defers its fsyncs syncs them now).
  const syncCommitted = store.syncCommitted?.bind(store);
  if (syncCommitted) {
    try {
      await new Promise<void>((resolve, reject) => syncCommitted((error) => (error ? reject(error) : resolve())));
    } catch (error) {
      store.close();
      throw error;
    }
  }
  const range = formatShardRange(options.shards);
  const counts: ServerCounts = { handled: {}, refused: {}, rejected: 0 };
  const linkStats = createLinkStats();
  // A failure while serving aborts this one; the server stops on whichever comes first.
  const failure = new AbortController();
  const reportFailure = (why: string) => failure.abort(why);
  const control = createServerControl({
    ledger,
    meta: store,
    identity: serverIdentity(options.shards),
    shardCount: registry.shards,
    syncCommitted,
    onFailure: (error) => reportFailure(`failed: ${(error as Error).message}`),
    log: (line) => io.out(`payfleet server: shards ${range}: ${line}`),
  });
  // A database out of reach past the store's deadline costs one batch, unanswered (its senders resend); any
  // other failure of the ledger stops the server.
  const onBatchFailure = (error: unknown) => {
    if (error instanceof LedgerUnavailableError && error.unreachable) io.out(`payfleet server: shards ${range}: ledger unavailable, batch left unanswered: ${error.message}`);
    else reportFailure(`failed: ${(error as Error).message}`);
  };
  const machine = serverMachine.provide({
    actors: {
      link: createMqttLink({ url: options.brokerUrl, secret: options.secret, seed: options.seed, stats: linkStats, control: control.channel }),
      // Either way the answer is sent after the commit: createLedgerActor's handleRequest commits before it returns.
      ledger: options.commit === 'group' ? createGroupCommitLedgerActor(ledger, onBatchFailure, syncCommitted) : createLedgerActor(ledger),
    },
  });

  const actor = createActor(machine, {
    id: usernameOf(serverIdentity(options.shards)),
    input: {
      serverId: usernameOf(serverIdentity(options.shards)),
      shards: options.shards,
      key: serverKeyOf(registry),
      scheme: registry.scheme,
      publicKeyOf: publicKeyLookup(registry),
      now: wallEpochMs,
    },
  });
  // The link counts each connection and loss in `linkStats` just before it sends the machine `link.up` or
  // `link.down`, and the machine's observers hear of every event it takes: comparing the counts there finds each
  // up and down. (An `inspect` callback would find them too, but makes XState build an inspection event for every
  // event, snapshot and action of every actor: a cost on each request.)
  let linkUps = 0;
  let linkDowns = 0;
  // On several brokers (one connection each) the server is ready once subscribed on every one of them.
  const brokerCount = brokerUrlList(options.brokerUrl).length;
  const watchLink = () => {
    while (linkUps < linkStats.connects) {
      linkUps++;
      if (linkUps < brokerCount) continue;
      // The coordinator waits for this exact line; later reconnects get their own line.
      io.out(linkUps === brokerCount ? `payfleet server: shards ${range} ready on ${options.brokerUrl}` : `payfleet server: shards ${range} link up again (${linkUps - brokerCount + 1})`);
    }
    if (linkDowns < linkStats.disconnects) {
      linkDowns = linkStats.disconnects;
      io.out(`payfleet server: shards ${range} link down`);
    }
  };
  actor.on('server.handled', (event: Extract<ServerEmitted, { type: 'server.handled' }>) => {
    bump(counts.handled, String(shardOfRequest(event.request, ledger, registry.shards) ?? 'unknown'));
    if (!event.result.ok) bump(counts.refused, event.result.code);
  });
  actor.on('server.rejected', () => counts.rejected++);
  // A failure inside the machine (the ledger file failing, say) stops it; the process must not live on deaf.
  actor.subscribe({ next: watchLink, error: (error) => reportFailure(`failed: ${(error as Error).message}`) });
  io.out(`payfleet server: shards ${range}: ${opened.opened} means open on ${formatLedgerSpec(options.ledger, true)} (synchronous ${options.synchronous}, commit ${options.commit}); connecting to ${options.brokerUrl} as ${usernameOf(serverIdentity(options.shards))}`);
  actor.start();

  const stop = AbortSignal.any([io.signal, failure.signal]);
  const why = await new Promise<string>((resolve) => {
    const reason = () => resolve(typeof stop.reason === 'string' ? stop.reason : 'abort');
    if (stop.aborted) reason();
    else stop.addEventListener('abort', reason, { once: true });
  });
  actor.stop();
  control.stop();
  store.close();
  const elsewhere = { applied: control.counts.applied, refused: control.counts.refused, rejected: control.counts.rejected, unsent: control.counts.unsent };
  // On PostgreSQL: its commits, and the round trips that found the database away (stopped, crashed, restarting) and
  // waited for it — the requests the server delayed rather than answer before their commit.
  const database = store instanceof PostgresLedgerStore ? `, postgres ${JSON.stringify({ commits: store.stats.commits, waitedForDatabase: store.connection.stats.retried })}` : '';
  const summary = `handled ${JSON.stringify(counts.handled)}, refused ${JSON.stringify(counts.refused)}, rejected ${counts.rejected}, elsewhere ${JSON.stringify(elsewhere)}, link ${JSON.stringify({ connects: linkStats.connects, disconnects: linkStats.disconnects, sent: linkStats.sent, received: linkStats.received })}${database}`;
  if (why.startsWith('failed')) {
    io.err(`payfleet server: shards ${range} ${why}; ${summary}`);
    return 'failed';
  }
  io.out(`payfleet server: shards ${range} stopped (${why}); ${summary}`);
  return 'stopped';
}
