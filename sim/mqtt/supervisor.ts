// Goal: process supervision of an mqtt run — the embedded broker (unless one is given) and one payment-server
// process per shard range: started, restarted after a crash, restarted when one exits by itself (counted, as a
// supervisor would), and stopped at the end.
// Method: each is a `ManagedProcess` (processes.ts) on a fixed port or ledger (a SQLite file in the run directory,
// or a PostgreSQL schema of its own named after the run and its shard range), so a restart comes back where
// every client expects it. The run's secret travels in the environment, never on argv: argv is readable by every
// user through `ps`, and a value beginning with '-' would be read as a flag. Work started on the processes (a
// crash, a restart) is tracked, so the drain and the stop can wait for it.

import { hostname } from 'node:os';
import { join } from 'node:path';
import { formatShardRange } from '../../broker/topics.ts';
import { wallEpochMs } from '../core/realTime.ts';
import { formatLedgerSpec, schemaForShards, withDefaultSchema, type LedgerSpec } from '../sd/ledgerSpec.ts';
import { ManagedProcess, type ControlledProcess } from './processes.ts';
import { MAX_SERVER_PROCESSES, shardGroups } from './identities.ts';
import type { RunLog } from './runLog.ts';

export interface ServerGroup {
  shards: number[];
  range: string;
  /**
   * Its ledger, handed to it as `--ledger` and read back by ledgerReadBack.ts. A server placed on an agent keeps a
   * SQLite ledger on the agent's disk; this path is where the agent's copy is written once the server stopped.
   */
  ledger: LedgerSpec;
  process: ControlledProcess;
  /** For a server on an agent with a SQLite ledger: the figures the agent reads from it now, for the minute sample. */
  remoteFigures?: () => Promise<RemoteLedgerFigures>;
  /** For a server on an agent with a SQLite ledger: fetches the agent's copy into `ledger`'s path (after it stopped). */
  fetchLedger?: () => Promise<void>;
}

/** What an agent reads from a ledger on its disk for the minute sample [INV-3]. */
export interface RemoteLedgerFigures {
  sumOfBalancesMinor: number;
  answeredRequests: number;
}

/** What a server placed elsewhere needs to be started there (its ledger is the agent's, unless a database). */
export interface ServerPlacementRequest {
  shards: number[];
  range: string;
  brokerUrl: string;
  /** A PostgreSQL ledger every host reaches; undefined for a SQLite file on the hosting agent's disk. */
  database: LedgerSpec | undefined;
  synchronous: 'full' | 'normal' | undefined;
  /** Where the coordinator keeps the agent's ledger copy (SQLite) at the end. */
  ledger: LedgerSpec;
  onUnexpectedExit(code: number | null, signal: string | null): void;
}

/** Places a server on an agent (returns its group), or leaves it here (undefined). */
export type PlaceServer = (request: ServerPlacementRequest) => Omit<ServerGroup, 'shards' | 'range' | 'ledger'> | undefined;

export type ProcessFailure = 'serverFailures' | 'brokerFailures';

export interface SupervisorOptions {
  outDir: string;
  logDir: string;
  secret: string;
  serverSynchronous?: 'full' | 'normal';
  /** A PostgreSQL database for the servers' ledgers (a schema each); SQLite files in outDir when absent. */
  ledger?: LedgerSpec;
  runLog: RunLog;
  /** A server or the broker exited by itself. */
  onFailure(kind: ProcessFailure): void;
  /** The servers' brokers when they are not the terminals' (see runOptions.ts `serverBrokerUrl`). */
  serverBrokerUrl?: string;
}

export class ProcessSupervisor {
  /** The embedded broker; undefined with an external one. */
  broker: ManagedProcess | undefined;
  /** The terminals' brokers: one URL, or several separated by commas (their failover order). */
  brokerUrl = '';
  /** The servers' brokers, subscribed on each. */
  serverBrokerUrl = '';
  servers: ServerGroup[] = [];
  private stopping = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: SupervisorOptions) {}

  /**
   * Starts the embedded broker on a free port (on `host`, where agents on other hosts reach it; 127.0.0.1 when
   * absent), or takes the external broker's URL.
   */
  async startBroker(externalUrl: string | undefined, host?: string): Promise<void> {
    if (externalUrl) {
      this.brokerUrl = externalUrl;
    } else {
      const broker: ManagedProcess = new ManagedProcess({
        name: 'broker',
        args: ['broker', '--port', '0', ...(host ? ['--host', host] : [])],
        env: { ...process.env, PAYFLEET_BROKER_SECRET: this.options.secret },
        ready: /listening on (mqtt:\/\/(\S+):(\d+))/,
        logDir: this.options.logDir,
        onUnexpectedExit: (code, signal) => this.supervise(broker, 'brokerFailures', code ?? signal),
      });
      this.broker = broker;
      const match = await broker.start();
      // A broker on a wildcard address is reached by this host's name (agents on other hosts dial it).
      this.brokerUrl = host === '0.0.0.0' || host === '::' ? `mqtt://${hostname()}:${match[3]!}` : match[1]!;
      // A restarted broker must come back where every client expects it.
      broker.options.args.splice(2, 1, match[3]!);
    }
    this.serverBrokerUrl = this.options.serverBrokerUrl ?? this.brokerUrl;
    this.options.runLog.log(`  broker ${this.brokerUrl}${this.broker ? ` (embedded, pid ${this.broker.pid})` : ' (external)'}${this.serverBrokerUrl !== this.brokerUrl ? `; servers on ${this.serverBrokerUrl}` : ''}`);
  }

  /**
   * The servers' brokers that are not the terminals': clustered with theirs, so a terminal whose own brokers are
   * all gone fails over to them (broker/linkOptions.ts `failoverUrl`); undefined when there are none.
   */
  get failoverBrokerUrl(): string | undefined {
    const own = this.brokerUrl.split(',');
    const failover = this.serverBrokerUrl.split(',').filter((url) => !own.includes(url));
    return failover.length > 0 ? failover.join(',') : undefined;
  }

  /** The broker the harness's own connections use (control messages, the adversary): the servers' first one. */
  get harnessBrokerUrl(): string {
    return this.serverBrokerUrl.split(',')[0]!;
  }

  /**
   * One server process per shard range, each on its own ledger: a file in the run directory, or a schema. With
   * `place`, a server may run on an agent (agentHub.ts) instead of here.
   */
  async startServers(shardCount: number, registryPath: string, place?: PlaceServer): Promise<void> {
    // A schema per server and run on PostgreSQL: a run never reopens the ledger of an earlier one.
    const runTag = `payfleet_run_${Math.floor(wallEpochMs()).toString(36)}`;
    const database = this.options.ledger;
    this.servers = shardGroups(shardCount, MAX_SERVER_PROCESSES).map((shards) => {
      const range = formatShardRange(shards);
      const ledger: LedgerSpec =
        database?.engine === 'postgres'
          ? withDefaultSchema({ ...database, schema: undefined }, schemaForShards(runTag, range))
          : { engine: 'sqlite', path: join(this.options.outDir, `ledger-${range.replace(/,/g, '_')}.sqlite`) };
      const placed = place?.({
        shards,
        range,
        brokerUrl: this.serverBrokerUrl,
        database: database?.engine === 'postgres' ? ledger : undefined,
        synchronous: this.options.serverSynchronous,
        ledger,
        onUnexpectedExit: (code, signal) => this.supervise(placed!.process, 'serverFailures', code ?? signal),
      });
      if (placed) return { shards, range, ledger, ...placed };
      const args = ['server', '--shards', range, '--broker', this.serverBrokerUrl, '--ledger', formatLedgerSpec(ledger), '--registry', registryPath];
      if (this.options.serverSynchronous) args.push('--synchronous', this.options.serverSynchronous);
      const server: ManagedProcess = new ManagedProcess({
        name: `server-${range}`,
        args,
        env: { ...process.env, PAYFLEET_BROKER_SECRET: this.options.secret },
        ready: /ready on/,
        logDir: this.options.logDir,
        onUnexpectedExit: (code, signal) => this.supervise(server, 'serverFailures', code ?? signal),
      });
      return { shards, range, ledger, process: server };
    });
    if (database?.engine === 'postgres') this.options.runLog.log(`  ledgers ${this.servers.map((s) => formatLedgerSpec(s.ledger, true)).join(', ')}`);
    await Promise.all(this.servers.map((s) => s.process.start()));
    this.options.runLog.log(`  servers ${this.servers.map((s) => `${s.range} (pid ${s.process.pid}${s.process.host ? ` on agent ${s.process.host}` : ''})`).join(', ')}`);
  }

  serverOfShard(shard: number): ServerGroup | undefined {
    return this.servers.find((s) => s.shards.includes(shard));
  }

  /**
   * A server or the broker exited by itself (not a fault of the scenario): that is reported, counted, and — as a
   * supervisor would — it is started again, so the run can still say whether anything was lost.
   */
  private supervise(managed: ControlledProcess, kind: ProcessFailure, how: unknown): void {
    if (this.stopping) return;
    this.options.onFailure(kind);
    this.options.runLog.log(`  ${managed.name} exited by itself (${String(how)}); restarting it (see ${join(this.options.logDir, `${managed.name}.log`)})`);
    this.track(new Promise((r) => setTimeout(r, 200)).then(() => (this.stopping || managed.alive ? undefined : this.restart(managed))));
  }

  /** Starts a crashed process again; a failed start is retried, for a restart must not be lost. */
  async restart(managed: ControlledProcess): Promise<void> {
    const runLog = this.options.runLog;
    for (let attempt = 1; ; attempt++) {
      try {
        runLog.event(`starting ${managed.name} again`);
        await managed.start();
        runLog.event(`${managed.name} ready again (pid ${managed.pid})`);
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        runLog.log(`  restart of ${managed.name} failed (${(error as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  /** Runs `work` on the processes in the background; a failure is logged, and `settle` waits for it. */
  track(work: Promise<void>): void {
    const tracked = work.catch((error: Error) => this.options.runLog.log(`  fault failed: ${error.message}`)).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /** Waits for the work in flight (crashes, restarts) to finish. */
  async settle(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  /** Every server and the embedded broker up again, whatever took them down. */
  async restartWhateverIsDown(): Promise<void> {
    for (const server of this.servers) if (!server.process.alive) await this.restart(server.process);
    if (this.broker && !this.broker.alive) await this.restart(this.broker);
  }

  get pids(): { broker: number | undefined; servers: number[] } {
    return { broker: this.broker?.pid, servers: this.servers.map((s) => s.process.pid ?? 0) };
  }

  /** From now on an exit is expected: nothing is restarted any more. */
  beginStopping(): void {
    this.stopping = true;
  }

  async stopServers(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.process.stop()));
  }

  /** Once stopped, each server on an agent hands its SQLite ledger over, for the end checks here. */
  async fetchLedgers(): Promise<void> {
    for (const server of this.servers) {
      if (!server.fetchLedger) continue;
      await server.fetchLedger();
      this.options.runLog.log(`  ledger of server ${server.range} fetched from agent ${server.process.host ?? '?'}`);
    }
  }

  async stopBroker(): Promise<void> {
    await this.broker?.stop();
  }

  async closeLogs(): Promise<void> {
    await Promise.all([...this.servers.map((s) => s.process.closeLog()), this.broker?.closeLog()]);
  }
}
