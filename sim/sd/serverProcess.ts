// Goal: `payfleet server`, one payment-server (SD) process of an mqtt run, serving a range of shards with its
// ledger in a SQLite file, so that killing it (SIGKILL) and starting it again on the same file loses and
// doubles nothing.
// Method: check the flags, read the run registry, open the SQLite ledger and open (idempotently, in one
// transaction) every means of the registry that falls in the range; then run the domain's server machine with
// the MQTT link and a ledger child over that ledger. `handleRequest` applies each request and stores its signed
// answer inside one store transaction. With `--commit each` the child is the domain's `createLedgerActor`: that
// transaction is the outermost one, so better-sqlite3 commits it before `handleRequest` returns, and only then
// does the child hand the answer to the machine, which sends it over the link. With `--commit group` (the
// default) the requests of one event-loop turn run inside one outer transaction (each request's own becomes a
// savepoint) and their answers are handed over after that commit: the same rule, one fsync per batch. Either
// way an answer that left the process is on disk (fsynced, with synchronous FULL), and a request resent after a
// crash finds its stored answer and gets the same one [INV-4 nothing lost, nothing twice]. The process prints
// `payfleet server: shards R ready on URL` once its link is up (subscriptions granted), counts the requests it
// answered per shard, and on SIGTERM or SIGINT stops the machine, closes the file and prints its counts. The
// same link carries the harness's control commands for its shards (payments through other points of issue),
// which serverControl.ts applies to the same ledger under the same commit-before-answer rule.
// Exit status: 0 stopped cleanly, 1 a failure while serving, 2 bad input (flag, registry or ledger file).

import { parseArgs } from 'node:util';
import { createActor } from 'xstate';
import { Ledger } from '../../machines/domain/ledger.ts';
import { DomainError } from '../../machines/domain/money.ts';
import { shardOf } from '../../machines/link.ts';
import type { ServerRequest } from '../../machines/messages.ts';
import { createLedgerActor, serverMachine, type LedgerEvent, type LedgerWork, type ServerEmitted } from '../../machines/server.ts';
import { createLinkStats, createMqttLink } from '../../broker/mqttLink.ts';
import { formatShardRange, MAX_SHARD, parseShardRange, serverIdentity, usernameOf } from '../../broker/topics.ts';
import { meansOfShards, publicKeyLookup, readRegistry, RegistryError, serverKeyOf, type RunRegistry } from './registry.ts';
import { LedgerFileError, SqliteLedgerStore, type SynchronousMode } from './sqliteLedgerStore.ts';
import { wallEpochMs } from '../core/realTime.ts';
import { createServerControl } from './serverControl.ts';

export const SERVER_USAGE = `Usage: payfleet server --shards RANGE --broker URL --secret S --db PATH --registry FILE [options]

Runs a payment server (SD) for a range of shards: answers the requests published on pf/v1/sd/{shard}/req/+,
each committed to the SQLite ledger in --db before its answer is sent, and the harness's payments through
other points of issue published on pf/v1/ctl/sd/{shard}/cmd. Killed and restarted on the same --db, it
resumes with nothing lost or doubled. Prints "payfleet server: shards RANGE ready on URL" once connected.

Options:
  --shards RANGE          the shards to serve, e.g. 0-3 or 0,2,5-7 (each below the registry's shard count)
  --broker URL            the MQTT broker, mqtt://host:port or ws://host:port
  --secret S              the run's secret credentials derive from (default: $PAYFLEET_BROKER_SECRET)
  --db PATH               the SQLite ledger file (created if missing)
  --registry FILE         the run registry (sim/sd/registry.ts): keys, shard count, means to open
  --synchronous MODE      full (default: a commit survives power loss) or normal (survives a killed process only)
  --commit MODE           group (default: the requests of one event-loop turn share one commit) or each
                          (one commit per request); either way an answer is sent only after its commit
  --seed N                seed of the reconnect jitter (default 0)
  -h, --help              show this help

Runs until SIGINT or SIGTERM. Exit status: 0 stopped, 1 failed while serving, 2 bad input.
`;

export interface ServerCommandIo {
  out(line: string): void;
  err(line: string): void;
  env: Record<string, string | undefined>;
  /** Stops the server when aborted; by default SIGINT and SIGTERM do. */
  signal?: AbortSignal;
}

const defaultIo: ServerCommandIo = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  env: process.env,
};

class UsageError extends Error {}

export interface ServerOptions {
  shards: number[];
  brokerUrl: string;
  secret: string;
  dbPath: string;
  registryPath: string;
  synchronous: SynchronousMode;
  commit: 'group' | 'each';
  seed: number;
}

/** Parses the flags; throws UsageError naming the flag. Returns undefined for --help. */
export function parseServerFlags(argv: readonly string[], env: Record<string, string | undefined>): ServerOptions | undefined {
  const { values, positionals } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      shards: { type: 'string' },
      broker: { type: 'string' },
      secret: { type: 'string' },
      db: { type: 'string' },
      registry: { type: 'string' },
      synchronous: { type: 'string' },
      commit: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (every option is a --flag)`);
  const required = (name: 'shards' | 'broker' | 'db' | 'registry'): string => {
    const value = values[name];
    if (value === undefined || value.trim() === '') throw new UsageError(`--${name}: required`);
    return value;
  };
  const shards = parseShardRange(required('shards'));
  if (!shards || shards.length === 0) throw new UsageError(`--shards: expected a range such as 0-3 or 0,2,5-7 (shards 0 to ${MAX_SHARD}), got ${JSON.stringify(values.shards)}`);
  const brokerUrl = required('broker');
  let protocol: string;
  try {
    protocol = new URL(brokerUrl).protocol;
  } catch {
    throw new UsageError(`--broker: expected a URL such as mqtt://127.0.0.1:1883, got ${JSON.stringify(brokerUrl)}`);
  }
  if (!['mqtt:', 'ws:', 'mqtts:', 'wss:'].includes(protocol)) throw new UsageError(`--broker: expected an mqtt://, mqtts://, ws:// or wss:// URL, got ${JSON.stringify(brokerUrl)}`);
  const secret = values.secret ?? env.PAYFLEET_BROKER_SECRET;
  if (!secret) throw new UsageError('--secret: required (or set PAYFLEET_BROKER_SECRET)');
  const synchronous = values.synchronous ?? 'full';
  if (synchronous !== 'full' && synchronous !== 'normal') throw new UsageError(`--synchronous: expected full or normal, got ${JSON.stringify(synchronous)}`);
  const commit = values.commit ?? 'group';
  if (commit !== 'group' && commit !== 'each') throw new UsageError(`--commit: expected group or each, got ${JSON.stringify(commit)}`);
  let seed = 0;
  if (values.seed !== undefined) {
    if (!/^\d{1,9}$/.test(values.seed)) throw new UsageError(`--seed: expected an integer from 0 to 999999999, got ${JSON.stringify(values.seed)}`);
    seed = Number(values.seed);
  }
  return { shards, brokerUrl, secret, dbPath: required('db'), registryPath: required('registry'), synchronous, commit, seed };
}

/**
 * The ledger child with group commit: the requests that arrive in one turn of the event loop are applied in one
 * store transaction (each request's own transaction becomes a savepoint inside it, so a refusal still rolls back
 * only that request), and their answers are handed back only after that one commit. With synchronous FULL this
 * pays one fsync per batch instead of one per request, and keeps the rule of `createLedgerActor`: no answer
 * leaves before its write is committed. A failure that is not a refusal (the file failing) rolls the whole batch
 * back, answers none of it (the senders resend) and is reported through `onFailure`.
 */
export function createGroupCommitLedgerActor(ledger: Ledger, onFailure: (error: unknown) => void = (error) => { throw error; }) {
  return createLedgerActor(ledger, () => {
    let queue: LedgerWork[] = [];
    let pending: ReturnType<typeof setImmediate> | undefined;
    const flush = () => {
      pending = undefined;
      const batch = queue;
      queue = [];
      const answers: Array<{ work: LedgerWork; event: LedgerEvent }> = [];
      try {
        ledger.store.transaction(() => {
          for (const work of batch) answers.push({ work, event: work.apply() });
        });
      } catch (error) {
        onFailure(error);
        return;
      }
      // Committed: only now do the answers go out.
      for (const { work, event } of answers) work.answer(event);
    };
    return {
      take(work) {
        queue.push(work);
        pending ??= setImmediate(flush);
      },
      // Stopped with requests queued: they were never applied, so dropping them is safe (their senders resend).
      stop() {
        if (pending) clearImmediate(pending);
        queue = [];
      },
    };
  });
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
 * Opens the file and checks that it belongs to this server: a file made for another shard range, shard count or
 * server key would answer with another ledger's figures. Then opens every means of the range in one commit.
 */
function openLedger(options: ServerOptions, registry: RunRegistry): { store: SqliteLedgerStore; ledger: Ledger; opened: number } {
  const store = new SqliteLedgerStore(options.dbPath, { synchronous: options.synchronous });
  try {
    const facts: Record<string, string> = {
      shards: formatShardRange(options.shards),
      shardCount: String(registry.shards),
      serverPublicKey: serverKeyOf(registry).publicKey,
    };
    for (const [key, value] of Object.entries(facts)) {
      const stored = store.getMeta(key);
      if (stored !== undefined && stored !== value) {
        throw new UsageError(`--db: ${options.dbPath} is the ledger of another server (${key} ${stored}, this one ${key === 'serverPublicKey' ? 'has another key' : value})`);
      }
    }
    const ledger = new Ledger(store);
    const means = meansOfShards(registry, options.shards);
    store.transaction(() => {
      for (const [key, value] of Object.entries(facts)) store.putMeta(key, value);
      for (const m of means) {
        try {
          ledger.openMeans(m);
        } catch (error) {
          if (error instanceof DomainError) {
            throw new UsageError(`--registry: ${options.registryPath}: means ${m.meansId} cannot be opened on ${options.dbPath}: ${error.message}`);
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

function untilStopped(signal: AbortSignal | undefined, failed: Promise<string>): Promise<string> {
  if (signal) {
    return Promise.race([
      failed,
      new Promise<string>((resolve) => {
        if (signal.aborted) resolve('abort');
        else signal.addEventListener('abort', () => resolve('abort'), { once: true });
      }),
    ]);
  }
  return Promise.race([
    failed,
    new Promise<string>((resolve) => {
      const stop = (name: string) => () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        resolve(name);
      };
      const onInt = stop('SIGINT');
      const onTerm = stop('SIGTERM');
      process.once('SIGINT', onInt);
      process.once('SIGTERM', onTerm);
    }),
  ]);
}

/** Runs `payfleet server` with `argv` (the arguments after `server`); resolves with the exit status. */
export async function serverCommand(argv: readonly string[], io: ServerCommandIo = defaultIo): Promise<number> {
  let options: ServerOptions | undefined;
  let registry: RunRegistry;
  let opened: ReturnType<typeof openLedger>;
  try {
    options = parseServerFlags(argv, io.env);
    if (!options) {
      io.out(SERVER_USAGE);
      return 0;
    }
    registry = readRegistry(options.registryPath);
    const outside = options.shards.filter((s) => s >= registry.shards);
    if (outside.length > 0) {
      throw new UsageError(`--shards: shard ${outside[0]} is outside the ${registry.shards} shards of the registry ${options.registryPath} (0-${registry.shards - 1})`);
    }
    opened = openLedger(options, registry);
  } catch (error) {
    const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (usage || error instanceof RegistryError) {
      io.err(`payfleet server: ${(error as Error).message}`);
      if (usage) io.err('Run `payfleet server --help` for the options.');
      return 2;
    }
    if (error instanceof LedgerFileError) {
      io.err(`payfleet server: --db: ${error.message}`);
      return 2;
    }
    throw error;
  }

  const { store, ledger } = opened;
  const range = formatShardRange(options.shards);
  const counts: ServerCounts = { handled: {}, refused: {}, rejected: 0 };
  const linkStats = createLinkStats();
  let reportFailure: (why: string) => void = () => undefined;
  const failed = new Promise<string>((resolve) => (reportFailure = resolve));
  const control = createServerControl({
    ledger,
    meta: store,
    identity: serverIdentity(options.shards),
    shardCount: registry.shards,
    onFailure: (error) => reportFailure(`failed: ${(error as Error).message}`),
    log: (line) => io.out(`payfleet server: shards ${range}: ${line}`),
  });
  const machine = serverMachine.provide({
    actors: {
      link: createMqttLink({ url: options.brokerUrl, secret: options.secret, seed: options.seed, stats: linkStats, control: control.channel }),
      // Either way the answer is sent after the commit: createLedgerActor's handleRequest commits before it returns.
      ledger: options.commit === 'group' ? createGroupCommitLedgerActor(ledger, (error) => reportFailure(`failed: ${(error as Error).message}`)) : createLedgerActor(ledger),
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
  const watchLink = () => {
    while (linkUps < linkStats.connects) {
      linkUps++;
      // The coordinator waits for this exact line; later reconnects get their own line.
      io.out(linkUps === 1 ? `payfleet server: shards ${range} ready on ${options.brokerUrl}` : `payfleet server: shards ${range} link up again (${linkUps})`);
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
  io.out(`payfleet server: shards ${range}: ${opened.opened} means open on ${options.dbPath} (synchronous ${options.synchronous}, commit ${options.commit}); connecting to ${options.brokerUrl} as ${usernameOf(serverIdentity(options.shards))}`);
  actor.start();

  const why = await untilStopped(io.signal, failed);
  actor.stop();
  control.stop();
  store.close();
  const elsewhere = { applied: control.counts.applied, refused: control.counts.refused, rejected: control.counts.rejected, unsent: control.counts.unsent };
  const summary = `handled ${JSON.stringify(counts.handled)}, refused ${JSON.stringify(counts.refused)}, rejected ${counts.rejected}, elsewhere ${JSON.stringify(elsewhere)}, link ${JSON.stringify({ connects: linkStats.connects, disconnects: linkStats.disconnects, sent: linkStats.sent, received: linkStats.received })}`;
  if (why.startsWith('failed')) {
    io.err(`payfleet server: shards ${range} ${why}; ${summary}`);
    return 1;
  }
  io.out(`payfleet server: shards ${range} stopped (${why}); ${summary}`);
  return 0;
}
