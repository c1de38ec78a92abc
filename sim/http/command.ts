// Goal: `payfleet http <scenario>` — the payment servers' HTTP interface over a scenario's ledgers on its own,
// so k6 (load/k6/) and other points of issue have something to spend from without a full mqtt run; and
// `openScenarioLedgers`, which gives the interface the ledgers, keys and registry of a scenario.
// Method: the means and keys come from the same derivation as a run's (sim/core/fleetKeys.ts), so a proof made
// in a run of the same scenario and seed verifies here. Ledgers are in memory, or SQLite files (one per shard)
// under --db-dir; the process serves until SIGINT or SIGTERM, then closes the server and the files.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadScenario } from '../scenario/load.ts';
import { parseDuration } from '../scenario/durations.ts';
import type { Scenario } from '../scenario/types.ts';
import { formatHelp, parseArgs, UsageError, type FlagSpec } from '../cli/args.ts';
import { registryOf, serverKeySeed } from '../core/fleetKeys.ts';
import { SqliteLedgerStore } from '../sd/sqliteLedgerStore.ts';
import { Ledger } from '../../machines/domain/ledger.ts';
import { MemoryLedgerStore, type LedgerStore } from '../../machines/domain/ledgerStore.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import { shardOf } from '../../machines/link.ts';
import type { PaymentApiOptions } from './paymentApi.ts';
import { createPaymentHttpServer } from './server.ts';

export interface ScenarioLedgers {
  options: PaymentApiOptions;
  ledgers: Ledger[];
  close(): void;
}

/** One ledger per shard with every means of the scenario opened, and the keys of its run. */
export function openScenarioLedgers(scenario: Scenario, dbDir?: string): ScenarioLedgers {
  const registry = registryOf(scenario);
  const stores: LedgerStore[] = Array.from({ length: registry.shards }, (_, shard) => {
    if (!dbDir) return new MemoryLedgerStore();
    mkdirSync(dbDir, { recursive: true });
    return new SqliteLedgerStore(join(dbDir, `http-shard-${shard}.sqlite`), { synchronous: 'normal' });
  });
  const ledgers = stores.map((store) => new Ledger(store));
  const ledgerOfMeans = (meansId: string): Ledger => ledgers[shardOf(meansId, registry.shards)]!;
  // Opening an opened means with the same figures is a no-op, so a restart over the same files is fine.
  for (const means of registry.means) ledgerOfMeans(means.meansId).openMeans(means);
  const options: PaymentApiOptions = {
    ledgerOfMeans,
    shards: registry.shards,
    storeKind: dbDir ? 'sqlite' : 'memory',
    scheme: scenario.crypto,
    serverKey: keyFromSeed(scenario.crypto, serverKeySeed(scenario)),
    publicKeyOf: (id) => registry.publicKeys[id],
  };
  return {
    options,
    ledgers,
    close() {
      for (const store of stores) if (store instanceof SqliteLedgerStore) store.close();
    },
  };
}

const flags: Record<string, FlagSpec> = {
  port: { kind: 'int', help: 'TCP port (0: any free port)', defaultText: '8080' },
  host: { kind: 'string', help: 'address to listen on', defaultText: '127.0.0.1' },
  'db-dir': { kind: 'string', help: 'keep the ledgers in SQLite files here (one per shard)', defaultText: 'in memory' },
  seed: { kind: 'int', help: 'seed of the keys and means', defaultText: "the scenario's" },
  help: { kind: 'boolean', help: 'show this help' },
};

const USAGE = 'payfleet http <scenario.yaml> [--port 8080] [--host 127.0.0.1] [--db-dir DIR]';

export async function httpCommand(argv: string[]): Promise<number> {
  const { positionals, flags: given } = parseArgs(argv, flags, (text) => {
    const parsed = parseDuration(text);
    return parsed.ok ? parsed.ms : undefined;
  });
  if (given.help) {
    console.log(formatHelp(USAGE, "Serves the payment servers' HTTP interface (authorisations, debits, proof verification, health, Prometheus metrics) over the ledgers of a scenario's means; see load/README.md.", flags));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
  const scenario = loadScenario(positionals[0]!);
  if (given.seed !== undefined) scenario.seed = given.seed as number;
  const ledgers = openScenarioLedgers(scenario, given['db-dir'] as string | undefined);
  const http = createPaymentHttpServer(ledgers.options);
  const url = await http.listen((given.port as number | undefined) ?? 8080, (given.host as string | undefined) ?? '127.0.0.1');
  console.log(`payfleet http: ${scenario.name} seed=${scenario.seed}: ${scenario.population.terminals} means on ${scenario.population.shards} shard(s), ${ledgers.options.storeKind} ledgers, crypto=${scenario.crypto}`);
  console.log(`payfleet http: listening on ${url}  (means m0…m${scenario.population.terminals - 1}; GET ${url}/v1/health, ${url}/metrics)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await http.close();
  ledgers.close();
  console.log('payfleet http: stopped');
  return 0;
}
