// Goal: the runtime of `payfleet http <scenario>` (flags in sim/cli/commands/http.ts) — the payment servers' HTTP
// interface over a scenario's ledgers on its own, so k6 (load/k6/) and other points of issue have something to
// spend from without a full mqtt run; and `openScenarioLedgers`, which gives the interface the ledgers, keys and
// registry of a scenario.
// Method: the means and keys come from the same derivation as a run's (sim/core/fleetKeys.ts), so a proof made
// in a run of the same scenario and seed verifies here. Ledgers are in memory, SQLite files (one per shard) under a
// directory, or PostgreSQL schemas (one per shard, `<prefix>_<shard>`, as a server's ledger is one schema: each
// shard's conservation sum and float accounts are its own, and a store is the single writer of its schema); the
// durable ones keep the same durability, a killed process loses nothing (SQLite synchronous NORMAL, PostgreSQL
// synchronous_commit off), for this interface serves load tests. `serveScenario` serves until its stop signal,
// then closes the server and the ledgers.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from '../scenario/types.ts';
import { registryOf, serverKeySeed } from '../core/fleetKeys.ts';
import { SqliteLedgerStore } from '../sd/sqliteLedgerStore.ts';
import { redactUrl } from '../sd/postgresConnection.ts';
import { openLedgerStore, type DurableLedgerStore } from '../sd/ledgerSpec.ts';
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

/** Where the shards' ledgers are kept: in memory, SQLite files in a directory, or PostgreSQL schemas. */
export type HttpLedgers =
  | { readonly engine: 'memory' }
  | { readonly engine: 'sqlite'; readonly dir: string }
  /** Schemas `<schemaPrefix>_<shard>` in the database of `url` (without ?schema=). */
  | { readonly engine: 'postgres'; readonly url: string; readonly schemaPrefix: string };

/**
 * One ledger per shard with every means of the scenario opened, and the keys of its run. A string is a directory
 * of SQLite files (`--db-dir`). Throws LedgerFileError when a durable ledger cannot be opened; none is left open.
 */
export function openScenarioLedgers(scenario: Scenario, where: HttpLedgers | string = { engine: 'memory' }): ScenarioLedgers {
  const registry = registryOf(scenario);
  const place: HttpLedgers = typeof where === 'string' ? { engine: 'sqlite', dir: where } : where;
  const durable: DurableLedgerStore[] = [];
  const storeOf = (shard: number): LedgerStore => {
    if (place.engine === 'memory') return new MemoryLedgerStore();
    if (place.engine === 'sqlite') {
      mkdirSync(place.dir, { recursive: true });
      return new SqliteLedgerStore(join(place.dir, `http-shard-${shard}.sqlite`), { synchronous: 'normal' });
    }
    return openLedgerStore({ engine: 'postgres', url: place.url, schema: `${place.schemaPrefix}_${shard}` }, { synchronous: 'normal' });
  };
  const stores: LedgerStore[] = [];
  try {
    for (let shard = 0; shard < registry.shards; shard++) {
      const store = storeOf(shard);
      stores.push(store);
      if (place.engine !== 'memory') durable.push(store as DurableLedgerStore);
    }
  } catch (error) {
    for (const store of durable) store.close();
    throw error;
  }
  const ledgers = stores.map((store) => new Ledger(store));
  const ledgerOfMeans = (meansId: string): Ledger => ledgers[shardOf(meansId, registry.shards)]!;
  // Opening an opened means with the same figures is a no-op, so a restart over the same files is fine.
  for (const means of registry.means) ledgerOfMeans(means.meansId).openMeans(means);
  const options: PaymentApiOptions = {
    ledgerOfMeans,
    shards: registry.shards,
    storeKind: place.engine,
    scheme: scenario.crypto,
    serverKey: keyFromSeed(scenario.crypto, serverKeySeed(scenario)),
    publicKeyOf: (id) => registry.publicKeys[id],
  };
  return {
    options,
    ledgers,
    close() {
      for (const store of durable) store.close();
    },
  };
}

export interface ServeScenarioOptions {
  /** The shards' ledgers; in memory when absent. */
  ledgers?: HttpLedgers;
  port: number;
  host: string;
}

/**
 * Serves the HTTP interface over the scenario's ledgers until `signal` is aborted, then closes the server and the
 * files. `out` gets the lines saying what is served where.
 */
export async function serveScenario(scenario: Scenario, options: ServeScenarioOptions, signal: AbortSignal, out: (line: string) => void): Promise<void> {
  const ledgers = openScenarioLedgers(scenario, options.ledgers);
  const http = createPaymentHttpServer(ledgers.options);
  const url = await http.listen(options.port, options.host);
  const place = options.ledgers;
  const where = place?.engine === 'postgres' ? ` (schemas ${place.schemaPrefix}_0…${place.schemaPrefix}_${scenario.population.shards - 1} on ${redactUrl(place.url)})` : place?.engine === 'sqlite' ? ` (in ${place.dir})` : '';
  out(`payfleet http: ${scenario.name} seed=${scenario.seed}: ${scenario.population.terminals} means on ${scenario.population.shards} shard(s), ${ledgers.options.storeKind} ledgers${where}, crypto=${scenario.crypto}`);
  out(`payfleet http: listening on ${url}  (means m0…m${scenario.population.terminals - 1}; GET ${url}/v1/health, ${url}/metrics)`);
  if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  await http.close();
  ledgers.close();
  out('payfleet http: stopped');
}
