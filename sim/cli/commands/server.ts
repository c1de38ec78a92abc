// Goal: `payfleet server`: its flags and help, checked here, then one payment-server process run by
// sim/sd/serverProcess.ts's `runServer` until SIGINT or SIGTERM.
// Method: declare the flags, turn them into ServerOptions (a range, broker URLs (several: one connection to each), the secret from --secret or
// PAYFLEET_BROKER_SECRET, the ledger from --db PATH or --ledger sqlite:PATH|postgres://…), and map how the server ended to an exit status: 0 stopped, 1 failed while serving,
// 2 bad input (a flag, or a registry or ledger file that does not fit the flags: nothing was served).

import { defineFlags, UsageError, type FlagValues } from '../args.ts';
import { defineCommand, EXIT_OK, EXIT_VIOLATION, InputError, withStopSignal } from '../command.ts';
import { brokerUrlsOf, secretOf } from './brokerFlags.ts';
import { formatShardRange, MAX_SHARD, parseShardRange } from '../../../broker/topics.ts';
import type { ServerOptions } from '../../sd/serverProcess.ts';
import { LedgerSpecError, parseLedgerSpec, schemaForShards, withDefaultSchema, type LedgerSpec } from '../../sd/ledgerSpec.ts';

/** A shard range such as 0-3 or 0,2,5-7. */
function shardRangeOf(text: string): number[] {
  const shards = parseShardRange(text);
  if (!shards || shards.length === 0) throw new UsageError(`--shards: expected a range such as 0-3 or 0,2,5-7 (shards 0 to ${MAX_SHARD}), got '${text}'`, 'shards');
  return shards;
}

/** A ledger spec, sqlite:PATH or postgres://…[?schema=NAME]; a bad one is a UsageError naming `flag`. */
export function ledgerSpecOf(flag: string, text: string): LedgerSpec {
  try {
    return parseLedgerSpec(text);
  } catch (error) {
    if (error instanceof LedgerSpecError) throw new UsageError(`--${flag}: ${error.message}`, flag);
    throw error;
  }
}

export const serverFlags = defineFlags({
  shards: { kind: 'string', required: true, parse: shardRangeOf, placeholder: 'RANGE', help: "the shards to serve, e.g. 0-3 or 0,2,5-7 (each below the registry's shard count)" },
  broker: {
    kind: 'string',
    required: true,
    parse: (text) => brokerUrlsOf('broker', text),
    placeholder: 'URL[,URL…]',
    help: 'the MQTT broker, mqtt://host:port or ws://host:port; several separated by commas: subscribed on each (give one broker of a Redis cluster)',
  },
  secret: { kind: 'string', placeholder: 'S', help: "the run's secret credentials derive from", defaultText: '$PAYFLEET_BROKER_SECRET' },
  db: { kind: 'string', placeholder: 'PATH', help: 'the SQLite ledger file (created if missing); the same as --ledger sqlite:PATH' },
  ledger: {
    kind: 'string',
    parse: (text) => ledgerSpecOf('ledger', text),
    placeholder: 'SPEC',
    help: 'sqlite:PATH, or postgres://user@host:port/db[?schema=NAME] (the schema is made on first use; default payfleet_shards_<range>)',
  },
  registry: { kind: 'string', required: true, placeholder: 'FILE', help: 'the run registry (sim/sd/registry.ts): keys, shard count, means to open' },
  synchronous: {
    kind: 'string',
    oneOf: ['full', 'normal'],
    help: 'full: a commit survives power loss; normal: survives a killed process only (on PostgreSQL: synchronous_commit off)',
    defaultText: 'full',
  },
  commit: {
    kind: 'string',
    oneOf: ['group', 'each'],
    help: 'group: the requests of one event-loop turn share one commit; each: one commit per request. Either way an answer is sent only after its commit',
    defaultText: 'group',
  },
  seed: { kind: 'int', max: 999_999_999, help: 'seed of the reconnect jitter', defaultText: '0' },
});

/** ServerOptions from the parsed flags; throws UsageError naming the flag. */
export function serverOptionsOf(flags: FlagValues<typeof serverFlags>, env: Record<string, string | undefined>): ServerOptions {
  const secret = secretOf(flags.secret, env);
  if (!secret) throw new UsageError('--secret: required (or set PAYFLEET_BROKER_SECRET)', 'secret');
  if (flags.db === undefined && flags.ledger === undefined) throw new UsageError('--db: required (or --ledger SPEC)', 'db');
  if (flags.db !== undefined && flags.ledger !== undefined) throw new UsageError('--db and --ledger: give one of them, not both', 'ledger');
  if (flags.db !== undefined && flags.db.trim() === '') throw new UsageError('--db: required', 'db');
  // A Postgres ledger without a schema of its own gets one per shard range, as each range has its own SQLite file.
  const named: LedgerSpec = flags.db !== undefined ? { engine: 'sqlite', path: flags.db } : flags.ledger!;
  const ledger = withDefaultSchema(named, schemaForShards('payfleet_shards', formatShardRange(flags.shards)));
  return {
    shards: flags.shards,
    brokerUrl: flags.broker,
    secret,
    ledger,
    registryPath: flags.registry,
    synchronous: flags.synchronous ?? 'full',
    commit: flags.commit ?? 'group',
    seed: flags.seed ?? 0,
  };
}

export const serverCommand = defineCommand({
  summary: 'run a payment-server process for a range of shards',
  usage: 'payfleet server --shards RANGE --broker URL (--db PATH | --ledger SPEC) --registry FILE [--secret S] [options]',
  description: [
    'Runs a payment server (SD) for a range of shards: answers the requests published on pf/v1/sd/{shard}/req/+,',
    'each committed to its ledger (SQLite file or PostgreSQL schema) before its answer is sent, and the harness\'s',
    'payments through other points of issue published on pf/v1/ctl/sd/{shard}/cmd. Killed and restarted on the same ledger, it',
    'resumes with nothing lost or doubled. Prints "payfleet server: shards RANGE ready on URL" once connected.',
  ].join('\n'),
  footer: 'Runs until SIGINT or SIGTERM. Exit status: 0 stopped, 1 failed while serving, 2 bad input.',
  flags: serverFlags,
  async run({ flags }, io) {
    const options = serverOptionsOf(flags, io.env);
    const { runServer, ServerInputError, ledgerFlagOf } = await import('../../sd/serverProcess.ts');
    const { RegistryError } = await import('../../sd/registry.ts');
    const { LedgerFileError } = await import('../../sd/sqliteLedgerStore.ts');
    try {
      const outcome = await withStopSignal(io, (signal) => runServer(options, { out: io.out, err: io.err, signal }));
      return outcome === 'stopped' ? EXIT_OK : EXIT_VIOLATION;
    } catch (error) {
      if (error instanceof ServerInputError) throw new UsageError(error.message);
      if (error instanceof RegistryError) throw new InputError(error.message);
      if (error instanceof LedgerFileError) throw new InputError(`${ledgerFlagOf(options.ledger)}: ${error.message}`);
      throw error;
    }
  },
});
