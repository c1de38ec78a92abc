// Goal: the runtime of `payfleet http <scenario>` (flags in sim/cli/commands/http.ts) — the payment servers' HTTP
// interface over a scenario's ledgers on its own, so k6 (load/k6/) and other points of issue have something to
// spend from without a full mqtt run; and `openScenarioLedgers`, which gives the interface the ledgers, keys and
// registry of a scenario.
// Method: the means and keys come from the same derivation as a run's (sim/core/fleetKeys.ts), so a proof made
// in a run of the same scenario and seed verifies here. Ledgers are in memory, or SQLite files (one per shard)
// under a directory; `serveScenario` serves until its stop signal, then closes the server and the files.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from '../scenario/types.ts';
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

export interface ServeScenarioOptions {
  /** Ledgers in SQLite files here (one per shard); in memory when absent. */
  dbDir?: string;
  port: number;
  host: string;
}

/**
 * Serves the HTTP interface over the scenario's ledgers until `signal` is aborted, then closes the server and the
 * files. `out` gets the lines saying what is served where.
 */
export async function serveScenario(scenario: Scenario, options: ServeScenarioOptions, signal: AbortSignal, out: (line: string) => void): Promise<void> {
  const ledgers = openScenarioLedgers(scenario, options.dbDir);
  const http = createPaymentHttpServer(ledgers.options);
  const url = await http.listen(options.port, options.host);
  out(`payfleet http: ${scenario.name} seed=${scenario.seed}: ${scenario.population.terminals} means on ${scenario.population.shards} shard(s), ${ledgers.options.storeKind} ledgers, crypto=${scenario.crypto}`);
  out(`payfleet http: listening on ${url}  (means m0…m${scenario.population.terminals - 1}; GET ${url}/v1/health, ${url}/metrics)`);
  if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  await http.close();
  ledgers.close();
  out('payfleet http: stopped');
}
