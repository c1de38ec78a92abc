// Goal: what a caller gives an mqtt-mode run and gets back (options, progress figures, result), and the error a
// run ends with when the harness itself fails.
// Method: plain types, apart from `HarnessError`, which carries a reason code and the offending value.

import type { Scenario } from '../scenario/types.ts';
import type { RunSummary } from '../run/summary.ts';
import type { RunProgress } from '../run/progress.ts';
import type { BenchControl } from './benchControl.ts';
import type { LedgerSpec } from '../sd/ledgerSpec.ts';
import type { DatabaseControl } from '../sd/postgresControl.ts';

export type MqttProgress = RunProgress;

/** Crash control of a broker the caller runs (a test's Mosquitto); without it an external broker is not crashed. */
export interface BrokerControl {
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** A run spread over `payfleet agent` processes (agentFleet.ts). */
export interface AgentRunOptions {
  /** Agents to wait for. */
  count: number;
  /** Where the coordinator listens for them (and the embedded broker listens for their children). */
  host: string;
  /** 0: any free port (the URL is printed). */
  port: number;
  /** How long to wait for them before the run is refused. */
  waitRealMs: number;
}

export interface MqttRunOptions {
  scenario: Scenario;
  file?: string;
  outDir: string;
  timeScale: number;
  /**
   * URL of an external broker, or several separated by commas (terminals spread over them by index and fail over
   * to the next; servers subscribe on each); the embedded broker is started when absent.
   */
  brokerUrl?: string;
  /**
   * The brokers the servers subscribe on instead of `brokerUrl`'s (brokers clustered with them through Redis); the
   * terminals fail over to these too, after their own.
   */
  serverBrokerUrl?: string;
  /** The secret every credential derives from; a fresh one when absent (required with an external broker). */
  secret?: string;
  brokerControl?: BrokerControl;
  /** Number of swarm worker processes (default: by fleet size, at most the cores, at most 2). */
  workers?: number;
  onProgress?: (p: MqttProgress) => void;
  log?: (line: string) => void;
  /**
   * A benchmark's own safety phase (load/bench/mqtt): called once every worker is connected and started, in
   * place of playing the scenario's duration; the drain, the end checks and the summary follow as in any run.
   */
  driver?: (control: BenchControl) => Promise<void>;
  /** Real time the workers may take to connect every endpoint before the run starts anyway (default 60 s). */
  connectTimeoutRealMs?: number;
  /** The servers' SQLite durability (`payfleet server --synchronous`); their default (full) when absent. */
  serverSynchronous?: 'full' | 'normal';
  /**
   * The servers' ledgers: SQLite files in the out directory (default), or a PostgreSQL database, where each server
   * gets a schema of its own named after this run and its shard range (printed, so psql can find the postings).
   */
  ledger?: LedgerSpec;
  /**
   * Over agents on other hosts: the coordinator runs only the broker (unless external) and places every worker and
   * server on them (requires `secret`: the agents' token derives from it).
   */
  agents?: AgentRunOptions;
  /** Crash control of the PostgreSQL of `ledger` (`--ledger-pgdata`), which a `databaseCrash` fault needs. */
  databaseControl?: DatabaseControl;
}

export interface MqttRunResult {
  summary: RunSummary;
  timeseriesCsv: string;
}

export class HarnessError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly value: unknown,
  ) {
    super(message);
    this.name = 'HarnessError';
  }
}
