// Goal: `payfleet http <scenario>`: the payment servers' HTTP interface over a scenario's ledgers, on its own (for
// k6 and other points of issue), served by sim/http/serveScenario.ts until SIGINT or SIGTERM.
// Method: declare the flags, load the scenario (its seed overridden by --seed), and serve. The ledgers: in memory,
// SQLite files in a directory (--db-dir DIR, or --ledger sqlite:DIR), or PostgreSQL (--ledger postgres://…, a
// schema per shard named <prefix>_<shard>, the prefix from ?schema= or payfleet_http). Exit 0 when stopped, 2 bad
// input (a flag, or a ledger that cannot be opened: nothing was served).

import { defineFlags, UsageError } from '../args.ts';
import { defineCommand, EXIT_OK, InputError, withStopSignal } from '../command.ts';
import { portFlag } from './brokerFlags.ts';
import { loadScenario } from '../../scenario/load.ts';
import { ledgerSpecOf } from './server.ts';
import type { HttpLedgers } from '../../http/serveScenario.ts';

/** The schema prefix on PostgreSQL when the URL names none: schemas payfleet_http_0, payfleet_http_1, … */
const HTTP_SCHEMA_PREFIX = 'payfleet_http';

/** memory, sqlite:DIR (a file per shard in DIR) or postgres://…[?schema=PREFIX]; anything else a UsageError. */
function httpLedgersOf(text: string): HttpLedgers {
  if (text === 'memory') return { engine: 'memory' };
  const spec = ledgerSpecOf('ledger', text);
  if (spec.engine === 'postgres') return { engine: 'postgres', url: spec.url, schemaPrefix: spec.schema ?? HTTP_SCHEMA_PREFIX };
  // A bare path would read as one SQLite file, as `payfleet server --ledger` takes it; here it is a directory.
  if (!text.startsWith('sqlite:')) throw new UsageError(`--ledger: expected memory, sqlite:DIR (a file per shard in DIR) or postgres://user@host:port/db[?schema=PREFIX], got '${text}'`, 'ledger');
  return { engine: 'sqlite', dir: spec.path };
}

export const httpCommand = defineCommand({
  summary: "serve the payment servers' HTTP interface over a scenario's ledger",
  usage: 'payfleet http <scenario.yaml> [--port 8080] [--host 127.0.0.1] [--db-dir DIR | --ledger SPEC]',
  description: "Serves the payment servers' HTTP interface (authorisations, debits, proof verification, health, Prometheus metrics) over the ledgers of a scenario's means; see load/README.md.",
  footer: 'Runs until SIGINT or SIGTERM.',
  flags: defineFlags({
    port: portFlag('TCP port (0: any free port)', '8080'),
    host: { kind: 'string', help: 'address to listen on', defaultText: '127.0.0.1' },
    'db-dir': { kind: 'string', placeholder: 'DIR', help: 'keep the ledgers in SQLite files here (one per shard); the same as --ledger sqlite:DIR', defaultText: 'in memory' },
    ledger: {
      kind: 'string',
      parse: httpLedgersOf,
      placeholder: 'SPEC',
      help: `memory, sqlite:DIR (a file per shard), or postgres://user@host:port/db[?schema=PREFIX] (a schema per shard, PREFIX_<shard>, made on first use; default prefix ${HTTP_SCHEMA_PREFIX})`,
      defaultText: 'memory',
    },
    seed: { kind: 'int', help: 'seed of the keys and means', defaultText: "the scenario's" },
  }),
  positionals: true,
  async run({ positionals, flags }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
    const scenario = loadScenario(positionals[0]!);
    if (flags.seed !== undefined) scenario.seed = flags.seed;
    if (flags['db-dir'] !== undefined && flags.ledger !== undefined) throw new UsageError('--db-dir and --ledger: give one of them, not both', 'ledger');
    const ledgers: HttpLedgers = flags['db-dir'] !== undefined ? { engine: 'sqlite', dir: flags['db-dir'] } : (flags.ledger ?? { engine: 'memory' });
    const { serveScenario } = await import('../../http/serveScenario.ts');
    const { LedgerFileError } = await import('../../sd/sqliteLedgerStore.ts');
    const options = { ledgers, port: flags.port ?? 8080, host: flags.host ?? '127.0.0.1' };
    try {
      await withStopSignal(io, (signal) => serveScenario(scenario, options, signal, io.out));
    } catch (error) {
      // Nothing was served: the ledgers are opened before the port is.
      if (error instanceof LedgerFileError) throw new InputError(`--${flags['db-dir'] !== undefined ? 'db-dir' : 'ledger'}: ${error.message}`);
      throw error;
    }
    return EXIT_OK;
  },
});
