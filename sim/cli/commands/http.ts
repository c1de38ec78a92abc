// Goal: `payfleet http <scenario>`: the payment servers' HTTP interface over a scenario's ledgers, on its own (for
// k6 and other points of issue), served by sim/http/serveScenario.ts until SIGINT or SIGTERM.
// Method: declare the flags, load the scenario (its seed overridden by --seed), and serve. Exit 0 when stopped,
// 2 bad input.

import { defineFlags, UsageError } from '../args.ts';
import { defineCommand, EXIT_OK, withStopSignal } from '../command.ts';
import { portFlag } from './brokerFlags.ts';
import { loadScenario } from '../../scenario/load.ts';

export const httpCommand = defineCommand({
  summary: "serve the payment servers' HTTP interface over a scenario's ledger",
  usage: 'payfleet http <scenario.yaml> [--port 8080] [--host 127.0.0.1] [--db-dir DIR]',
  description: "Serves the payment servers' HTTP interface (authorisations, debits, proof verification, health, Prometheus metrics) over the ledgers of a scenario's means; see load/README.md.",
  footer: 'Runs until SIGINT or SIGTERM.',
  flags: defineFlags({
    port: portFlag('TCP port (0: any free port)', '8080'),
    host: { kind: 'string', help: 'address to listen on', defaultText: '127.0.0.1' },
    'db-dir': { kind: 'string', placeholder: 'DIR', help: 'keep the ledgers in SQLite files here (one per shard)', defaultText: 'in memory' },
    seed: { kind: 'int', help: 'seed of the keys and means', defaultText: "the scenario's" },
  }),
  positionals: true,
  async run({ positionals, flags }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
    const scenario = loadScenario(positionals[0]!);
    if (flags.seed !== undefined) scenario.seed = flags.seed;
    const { serveScenario } = await import('../../http/serveScenario.ts');
    const options = { dbDir: flags['db-dir'], port: flags.port ?? 8080, host: flags.host ?? '127.0.0.1' };
    await withStopSignal(io, (signal) => serveScenario(scenario, options, signal, io.out));
    return EXIT_OK;
  },
});
