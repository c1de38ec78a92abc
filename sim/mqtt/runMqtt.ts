// Goal: `payfleet run <scenario> --mode mqtt [--broker URL] [--time-scale X]` — the real thing: a broker, payment
// server processes, swarm workers with one MQTT connection per terminal and POS, real crashes, and the same
// summary.json, timeseries.csv, report and exit status as a virtual run.
// Method: take the options the CLI checked (sim/cli/commands/run.ts), print every option the run uses, hand the
// run to the coordinator, and write its files. Child processes are killed on every way out: the coordinator stops
// them on success and on errors, a SIGINT/SIGTERM handler kills them and exits 130/143, and processes.ts kills
// any left on `process.exit`. With an external broker the secret (the CLI reads PAYFLEET_BROKER_SECRET; the
// broker must know the credentials derived from it) is given, and the Mosquitto password and ACL files for the run's
// identities are written into the run directory so that broker can be given them. With `--metrics-port N` the
// coordinator's live metrics are served in Prometheus text format on 127.0.0.1 while the run goes (0: any free
// port; the URL is printed), and the endpoint is closed when the run ends, however it ends. Before any of it, a
// fleet this machine cannot host (file-descriptor limits, fleetFit.ts) is refused with the numbers: bad input.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from '../scenario/types.ts';
import { formatDuration } from '../scenario/durations.ts';
import { thresholdsPassed, verdictOf, writeRunFiles, type RunSummary } from '../run/summary.ts';
import { ProgressLine } from '../run/progress.ts';
import { renderPrometheus, startMetricsEndpoint, type MetricsEndpoint } from '../run/prometheus.ts';
import { aclFile, passwordFile } from '../../broker/mosquitto.ts';
import { MqttCoordinator } from './coordinator.ts';
import { HarnessError, type AgentRunOptions, type BrokerControl, type MqttRunResult } from './runOptions.ts';
import { killAllChildren, ProcessError } from './processes.ts';
import { runIdentities } from './identities.ts';
import { fleetCounts, fleetMisfits, openFilesLimit } from './fleetFit.ts';
import { defaultWorkerCount } from './workerPool.ts';
import { formatLedgerSpec, type LedgerSpec } from '../sd/ledgerSpec.ts';
import { PostgresControlError, postgresControlOf, type DatabaseControl } from '../sd/postgresControl.ts';
import { EXIT_ENVIRONMENT, EXIT_OK, EXIT_THRESHOLD, EXIT_VIOLATION } from '../run/exitStatus.ts';


/** Below this many real milliseconds, a remote timeout is in reach of ordinary round trips under load. */
const REMOTE_TIMEOUT_WARNING_REAL_MS = 250;

export interface RunMqttIo {
  /** Crash control of the external broker, for a caller that runs it (tests). */
  brokerControl?: BrokerControl;
  out(line: string): void;
  err(line: string): void;
  /** Install SIGINT/SIGTERM handlers that kill the children (the CLI does; tests need not). */
  handleSignals: boolean;
}

const defaultIo: RunMqttIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  handleSignals: true,
};

/** The options of an mqtt run, checked by the CLI (sim/cli/commands/run.ts). */
export interface MqttRunOptions {
  /** Where summary.json, timeseries.csv, report.html, the logs and the ledgers go. */
  outDir: string;
  /** Simulated ms per real ms. */
  timeScale: number;
  /** An external broker, or several separated by commas; the embedded one when absent. */
  brokerUrl?: string;
  /** The servers' brokers when not the terminals' (clustered with them). */
  serverBrokerUrl?: string;
  /** The secret the external broker's credentials were issued with (PAYFLEET_BROKER_SECRET). */
  secret?: string;
  quiet?: boolean;
  /** Port of the live metrics endpoint (0: any free port); none when absent. */
  metricsPort?: number;
  /** The servers' ledgers: SQLite files in the out directory when absent, or a PostgreSQL database. */
  ledger?: LedgerSpec;
  /**
   * The data directory of the PostgreSQL of `ledger` (`--ledger-pgdata`): the run may crash and restart that
   * server with pg_ctl, as a `databaseCrash` fault asks.
   */
  ledgerPgdata?: string;
  /** Real ms each worker waits for all its endpoints to connect before it starts anyway (the coordinator's default when absent). */
  connectTimeoutRealMs?: number;
  /** Spread over `payfleet agent` processes (requires `secret`). */
  agents?: AgentRunOptions;
}

/** Errors of a run over agents that are bad input (exit 2): the agents never came, the fleet does not fit on them, or the address cannot be listened on. */
const AGENT_INPUT_ERRORS: Record<string, 'agents' | 'listen'> = { agentsMissing: 'agents', fleetTooLarge: 'agents', noAgents: 'agents', agentsCannotListen: 'listen' };

/** Bad input found only when the run starts (a metrics port in use, agents that never came): nothing has run yet. */
export class MqttRunInputError extends Error {
  constructor(
    readonly flag: 'metrics-port' | 'ledger' | 'ledger-pgdata' | 'terminals' | 'agents' | 'listen',
    message: string,
    readonly value: unknown,
  ) {
    super(message);
    this.name = 'MqttRunInputError';
  }
}

function printOptions(io: RunMqttIo, scenario: Scenario, file: string, outDir: string, f: MqttRunOptions): void {
  const p = scenario.population;
  const realS = (scenario.durationMs + scenario.drainMs) / f.timeScale / 1000;
  io.out(
    [
      `payfleet run ${file}`,
      `  mode=mqtt seed=${scenario.seed} terminals=${p.terminals} pos=${p.pos.units} shards=${p.shards} crypto=${scenario.crypto}`,
      `  duration=${scenario.durationMs}ms drain=${scenario.drainMs}ms time-scale=${f.timeScale} (at most ${realS.toFixed(0)} s of real time, plus start-up)`,
      `  broker=${f.brokerUrl ?? 'embedded (aedes, its own process)'}${f.serverBrokerUrl ? ` server-broker=${f.serverBrokerUrl}` : ''} faults=${scenario.faults.length}`,
      ...(f.agents ? [`  agents=${f.agents.count} listen=${f.agents.host}:${f.agents.port} (workers and servers run on the agents)`] : []),
      `  ledger=${f.ledger ? `${formatLedgerSpec(f.ledger, true)} (a schema per server)` : 'sqlite (a file per server in the out directory)'}`,
      `  out=${outDir}`,
    ].join('\n'),
  );
  // Network round trips are real and do not scale: at a high time scale the scenario's timeouts can be shorter
  // than a real round trip through the broker, the server and its fsync.
  const remoteTimeoutRealMs = scenario.policy.remoteTimeoutMs / f.timeScale;
  if (remoteTimeoutRealMs < REMOTE_TIMEOUT_WARNING_REAL_MS) {
    io.out(`  note: the remote timeout (${scenario.policy.remoteTimeoutMs} ms) is ${remoteTimeoutRealMs.toFixed(0)} real ms at this time scale; slow round trips will be declined as remoteTimeout`);
  }
}

export function printMqttVerdict(io: RunMqttIo, summary: RunSummary): void {
  const o = summary.orders;
  const verdict = verdictOf(summary);
  const lines = [
    '',
    `${verdict}  ${summary.scenario.name} seed=${summary.seed} mode=mqtt  simulated ${(summary.simulatedMs / 1000).toFixed(0)} s in ${(summary.wallMs / 1000).toFixed(1)} s wall, ${summary.events} MQTT messages`,
    `  orders ${o.total}: approved ${o.approved}, declined ${o.declined}${o.failures ? ` (business ${o.failures.business}, system failures ${o.failures.system})` : ''}; by path internal ${o.byPath.internal ?? 0}, local-offline ${o.byPath.localOffline ?? 0}, local-below-threshold ${o.byPath.localBelowThreshold ?? 0}, remote ${o.byPath.remote ?? 0}`,
    `  latency (real ms) local p50/p99 ${summary.latencyMs.local.p50}/${summary.latencyMs.local.p99}, remote p50/p99 ${summary.latencyMs.remote.p50}/${summary.latencyMs.remote.p99}`,
    `  remittance: ${summary.remittance.transactions} tx in ${summary.remittance.batches} batches, peak money at risk ${summary.remittance.peakBacklogAmountMinor}, pending at end ${summary.remittance.pendingAtEnd}`,
    `  ledger: approved ${summary.ledger.approvedAmountMinor}, posted ${summary.ledger.postedAmountMinor}, lost ${summary.ledger.lost}, held in journals ${summary.ledger.heldInJournals}, duplicated ${summary.ledger.duplicated}, sum of balances ${summary.ledger.sumOfBalancesMinor}${summary.ledger.topUps ? `, top-ups ${summary.ledger.topUps.count} (${summary.ledger.topUps.amountMinor} in from outside)` : ''}`,
    `  faults: ${Object.entries(summary.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; drained ${summary.drainedAtMs === null ? 'NOT within the drain time' : `at ${summary.drainedAtMs} ms`}`,
    ...summary.invariants.map((i) => `  ${i.violations === 0 ? 'ok  ' : 'FAIL'} ${i.id.padEnd(6)} ${i.name}: ${i.checks} checks, ${i.violations} violations`),
    ...(summary.thresholds ?? []).map((t) => `  ${t.pass ? 'ok  ' : 'FAIL'} threshold ${t.expression}: actual ${JSON.stringify(t.actual)}${t.problem ? ` (${t.problem})` : ''}`),
  ];
  const environment = summary.environment;
  if (environment && !environment.ok) {
    // The test bed, not the system: say so first, with the cause and the endpoints, before any INV-7 finding.
    lines.push(`  environment FAILED (the test bed could not host the fleet; the system was not fully tested):`);
    for (const cause of environment.causes) lines.push(`    ${cause}`);
  }
  if (summary.violation) {
    lines.push(`  first violation: ${summary.violation.invariant} at t=${summary.violation.timeMs} ms: ${summary.violation.message}`);
    for (const e of summary.violation.recent) lines.push(`    t=${e.timeMs} ${e.actor}: ${e.text}`);
  }
  io.out(lines.join('\n'));
}

/** Writes the Mosquitto password and ACL files of the run's identities (for an external Mosquitto). */
function writeMosquittoFiles(scenario: Scenario, outDir: string, secret: string): string {
  const dir = join(outDir, 'mosquitto');
  mkdirSync(dir, { recursive: true });
  const identities = runIdentities(scenario);
  writeFileSync(join(dir, 'passwd'), passwordFile(secret, identities), { mode: 0o600 });
  writeFileSync(join(dir, 'acl'), aclFile(identities), { mode: 0o600 });
  return dir;
}

/** Serves `render()` on 127.0.0.1:`port`; a port that cannot be listened on is bad input (nothing has run yet). */
async function openMetricsEndpoint(port: number, render: () => string): Promise<MetricsEndpoint> {
  try {
    return await startMetricsEndpoint(render, port);
  } catch (error) {
    throw new MqttRunInputError('metrics-port', `--metrics-port: cannot listen on 127.0.0.1:${port}: ${(error as Error).message}`, port);
  }
}

/**
 * The control of the run's database (`--ledger-pgdata`), checked before anything runs; a `databaseCrash` fault
 * without one is refused: on SQLite ledgers there is no database to crash, and a PostgreSQL named by URL alone
 * cannot be stopped by its clients. Throws MqttRunInputError naming the flag.
 */
function databaseControlOf(scenario: Scenario, file: string, f: MqttRunOptions): DatabaseControl | undefined {
  const crash = scenario.faults.find((fault) => fault.kind === 'databaseCrash');
  if (f.ledgerPgdata !== undefined) {
    if (f.ledger?.engine !== 'postgres') {
      throw new MqttRunInputError('ledger-pgdata', `--ledger-pgdata: only with --ledger postgres://… (it names the data directory of that PostgreSQL)`, f.ledgerPgdata);
    }
    try {
      return postgresControlOf(f.ledgerPgdata, f.ledger.url, join(f.outDir, 'logs', 'postgres.log'));
    } catch (error) {
      if (error instanceof PostgresControlError) throw new MqttRunInputError('ledger-pgdata', `--ledger-pgdata ${f.ledgerPgdata}: ${error.message}`, f.ledgerPgdata);
      throw error;
    }
  }
  if (!crash) return undefined;
  const where = `${file}: faults: kind databaseCrash at ${formatDuration(crash.atMs)}`;
  if (f.ledger?.engine !== 'postgres') {
    throw new MqttRunInputError('ledger', `${where}: the servers' ledgers are SQLite files, there is no database to crash; run with --ledger postgres://… --ledger-pgdata DIR (a PostgreSQL this run may crash), or remove the fault`, crash);
  }
  throw new MqttRunInputError('ledger-pgdata', `${where}: the run cannot crash the PostgreSQL of --ledger: give its data directory with --ledger-pgdata DIR (pg_ctl stop -m immediate, then pg_ctl restart), or remove the fault`, crash);
}

/**
 * Refuses a fleet this machine cannot host before anything is written or started (fleetFit.ts), and prints where
 * its connections will be when there are several brokers.
 */
function checkFleetFits(io: RunMqttIo, scenario: Scenario, f: MqttRunOptions): void {
  const counts = fleetCounts({ scenario, workers: defaultWorkerCount(scenario.population.terminals), brokerUrl: f.brokerUrl, serverBrokerUrl: f.serverBrokerUrl });
  // Over agents the workers run on other hosts, each agent within its own --capacity (placement.ts refuses a fleet
  // they cannot hold): only what starts here, an embedded broker, is checked against this machine's limit.
  if (f.agents) counts.endpointsPerWorker = 0;
  const limit = openFilesLimit();
  const misfits = fleetMisfits(counts, limit);
  if (misfits.length > 0) {
    const p = scenario.population;
    throw new MqttRunInputError('terminals', `the fleet (${p.terminals} terminals, ${p.pos.units} POS) does not fit on this machine; nothing was run:\n  ${misfits.join('\n  ')}`, counts);
  }
  if (counts.brokers.length > 1) io.out(`  connections per broker while all are up: ${counts.brokers.map((b) => `${b.url} ${b.endpoints}`).join(', ')} (one left alone takes all ${counts.allEndpoints})`);
}

/** Runs `scenario` in mqtt mode; resolves with the exit status (0 every invariant held, 1 otherwise). */
export async function runMqttCommand(scenario: Scenario, file: string, f: MqttRunOptions, io: RunMqttIo = defaultIo): Promise<number> {
  const outDir = f.outDir;
  // Bad input found here stops the run before anything is printed, started or written.
  const databaseControl = databaseControlOf(scenario, file, f);
  checkFleetFits(io, scenario, f);
  printOptions(io, scenario, file, outDir, f);
  if (databaseControl) io.out(`  database control: ${databaseControl.description} (pg_ctl; its log after a restart: ${join(outDir, 'logs', 'postgres.log')})`);
  mkdirSync(outDir, { recursive: true });
  if (f.brokerUrl && f.secret) io.out(`  wrote the Mosquitto password and ACL files for this run to ${writeMosquittoFiles(scenario, outDir, f.secret)}`);

  const onSignal = (signal: NodeJS.Signals): void => {
    io.err(`\npayfleet run: ${signal}: stopping every child process`);
    killAllChildren();
    // The database is the user's: a run stopped while it had crashed it starts it again before it exits.
    if (databaseControl?.down) {
      io.err(`payfleet run: starting the database again: ${databaseControl.description}`);
      try {
        databaseControl.restartSync();
      } catch (error) {
        io.err(`payfleet run: could not: ${(error as Error).message}`);
      }
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  if (io.handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  // Opened before anything starts, so a port in use is exit status 2 with nothing run; it serves an empty page
  // until the coordinator exists.
  let coordinator: MqttCoordinator | undefined;
  const endpoint = f.metricsPort === undefined ? undefined : await openMetricsEndpoint(f.metricsPort, () => (coordinator ? renderPrometheus(coordinator.metrics, coordinator.liveGauges()) : ''));
  if (endpoint) io.out(`  metrics: ${endpoint.url} (Prometheus text format, live while the run goes)`);
  const progress = new ProgressLine(process.stderr, !f.quiet);
  let result: MqttRunResult;
  try {
    coordinator = new MqttCoordinator({
      scenario,
      file,
      outDir,
      timeScale: f.timeScale,
      brokerUrl: f.brokerUrl,
      serverBrokerUrl: f.serverBrokerUrl,
      secret: f.secret,
      ledger: f.ledger,
      databaseControl,
      connectTimeoutRealMs: f.connectTimeoutRealMs,
      agents: f.agents,
      brokerControl: io.brokerControl,
      onProgress: (p) => progress.update(p),
      log: (line) => {
        progress.done();
        io.out(line);
      },
    });
    result = await coordinator.run();
  } catch (error) {
    progress.done();
    killAllChildren();
    const inputFlag = error instanceof HarnessError ? AGENT_INPUT_ERRORS[error.code] : undefined;
    if (inputFlag) {
      const message = (error as HarnessError).message;
      throw new MqttRunInputError(inputFlag, message.startsWith('--') ? message : `--${inputFlag}: ${message}`, (error as HarnessError).value);
    }
    if (error instanceof HarnessError || error instanceof ProcessError) {
      io.err(`payfleet run: the mqtt run could not complete: ${error.message}`);
      return EXIT_VIOLATION;
    }
    throw error;
  } finally {
    await endpoint?.close();
    if (io.handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  progress.done();
  writeRunFiles(outDir, result);
  const { writeReportQuietly } = await import('../report/write.ts');
  writeReportQuietly(outDir, io.err);
  printMqttVerdict(io, result.summary);
  io.out(`  wrote ${outDir}/summary.json, timeseries.csv, report.html (process logs in ${join(outDir, 'logs')})`);
  const verdict = verdictOf(result.summary);
  if (verdict === 'ENVIRONMENT') return EXIT_ENVIRONMENT;
  if (verdict === 'VIOLATION') return EXIT_VIOLATION;
  return thresholdsPassed(result.summary) ? EXIT_OK : EXIT_THRESHOLD;
}
