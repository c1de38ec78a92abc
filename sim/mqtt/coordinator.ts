// Goal: one mqtt-mode run, end to end, as its phases — setup (a clean run directory, the registry), start (the
// embedded broker unless one is given, one payment-server process per shard range, the swarm workers), play (the
// scenario in scaled real time, its faults applied for real), drain, end checks, and the summary — with the same
// end checks, figures and verdict as the virtual mode.
// Method: the coordinator owns the run's clock (`RealTime`, its origin sent to every worker), its run record and
// invariant book, and wires the parts that do each job: process supervision (supervisor.ts), fault application
// (faultInjector.ts), the workers and their reports (workerPool.ts, workerReports.ts), ledger read-back
// (ledgerReadBack.ts), the minute sampler and live gauges (minuteSampler.ts), bench plumbing (benchControl.ts)
// and spending through other points of issue (elsewhereSender.ts: sent to the server owning the means' shard as a
// control message, resent until answered; the drain waits for every answer). Over agents (agentFleet.ts) the
// workers and servers run on other hosts, reached through the same interfaces. Any worker failure, or an agent
// lost, ends the run at once. Everything it does is in logs/coordinator.log (runLog.ts).

import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Scenario } from '../scenario/types.ts';
import { Metrics } from '../run/metrics.ts';
import { RunRecord } from '../run/runRecord.ts';
import { buildSummary, type RunSummary } from '../run/summary.ts';
import { InvariantBook, RecentEvents, type InvariantCount } from '../check/invariantBook.ts';
import type { LedgerFigures } from '../check/endChecks.ts';
import type { LossAccountFigures, SharedMeansFigures } from '../check/lossAccount.ts';
import { Prng } from '../core/prng.ts';
import { registryOf } from '../core/fleetKeys.ts';
import { RealTime, wallEpochMs, sleepRun } from '../core/realTime.ts';
import { newSecret } from '../../broker/credentials.ts';
import { writeRegistry } from '../sd/registry.ts';
import { Adversary } from './adversary.ts';
import { ElsewhereSender } from './elsewhereSender.ts';
import { environmentOf, mergeArrivalStats, type RestoreTiming } from './finals.ts';
import { BenchChannel } from './benchControl.ts';
import { FaultInjector } from './faultInjector.ts';
import { LedgerReaders, checkLedgersAtEnd } from './ledgerReadBack.ts';
import { MinuteSampler } from './minuteSampler.ts';
import { RunLog } from './runLog.ts';
import { HarnessError, type MqttRunOptions, type MqttRunResult } from './runOptions.ts';
import { ProcessSupervisor } from './supervisor.ts';
import { WorkerPool } from './workerPool.ts';
import { WorkerReports } from './workerReports.ts';
import type { WorkerFinal } from './protocol.ts';
import { AgentFleet } from './agentFleet.ts';

const PROGRESS_EVERY_REAL_MS = 500;
/** Real time a worker may take to connect all its endpoints before the run starts anyway. */
const CONNECT_TIMEOUT_REAL_MS = 60_000;

export class MqttCoordinator {
  readonly time: RealTime;
  readonly metrics = new Metrics();
  readonly recent = new RecentEvents();
  readonly book: InvariantBook;
  /** Approved payments, POS receipts, the backlog and the drain state, from the workers' reports (runRecord.ts). */
  readonly record = new RunRecord();
  /** Run time at which the drain had every crashed process back (undefined until the drain got that far). */
  private restoredAtMs: number | undefined;
  endFigures: LedgerFigures | undefined;
  /** The loss account by cause and means, and the shared means' figures, read back at the end. */
  lossAccount: LossAccountFigures | undefined;
  sharedMeans: SharedMeansFigures | undefined;
  private readonly scenario: Scenario;
  private readonly outDir: string;
  private readonly logDir: string;
  private readonly secret: string;
  private readonly runLog: RunLog;
  private readonly supervisor: ProcessSupervisor;
  private readonly faults: FaultInjector;
  private readonly adversary: Adversary;
  private readonly pool: WorkerPool;
  private readonly reports: WorkerReports;
  private readonly readers: LedgerReaders;
  private readonly sampler: MinuteSampler;
  private readonly bench = new BenchChannel();
  /** Hands payments through other points of issue to their servers and counts the answers. */
  private elsewhere: ElsewhereSender | undefined;
  /** The agents the run is spread over; undefined for a run on this host. */
  private agentFleet: AgentFleet | undefined;
  private failed: (error: Error) => void = () => undefined;
  private readonly progressTimers = new Set<NodeJS.Timeout>();
  private readonly failurePromise: Promise<never>;

  constructor(private readonly options: MqttRunOptions) {
    this.scenario = options.scenario;
    this.outDir = resolve(options.outDir);
    this.logDir = join(this.outDir, 'logs');
    this.time = new RealTime(options.timeScale);
    const prng = new Prng(this.scenario.seed).fork('mqtt-coordinator');
    this.book = new InvariantBook(this.scenario.seed, () => this.time.now(), this.recent, false);
    if (options.brokerUrl && !options.secret) throw new HarnessError('noSecret', 'an external broker needs the secret its credentials were issued with', options.brokerUrl);
    if (options.agents && !options.secret) throw new HarnessError('noSecret', "a run over agents needs the run's secret (the agents' token derives from it)", options.agents.count);
    const databaseCrash = this.scenario.faults.find((f) => f.kind === 'databaseCrash');
    if (databaseCrash && !options.databaseControl) throw new HarnessError('noDatabaseControl', `a databaseCrash fault needs the control of a PostgreSQL ledger (databaseControl)`, databaseCrash);
    this.secret = options.secret ?? newSecret();
    this.failurePromise = new Promise<never>((_, reject) => {
      let failure: Error | undefined;
      this.failed = (error) => {
        failure ??= error;
        reject(failure);
      };
    });
    this.failurePromise.catch(() => undefined);
    this.runLog = new RunLog(this.time, options.log);
    this.supervisor = new ProcessSupervisor({
      outDir: this.outDir,
      logDir: this.logDir,
      secret: this.secret,
      serverSynchronous: options.serverSynchronous,
      ledger: options.ledger,
      runLog: this.runLog,
      onFailure: (kind) => this.faults.counters[kind]++,
      serverBrokerUrl: options.serverBrokerUrl,
    });
    this.pool = new WorkerPool({
      logDir: this.logDir,
      runLog: this.runLog,
      failed: (error) => this.failed(error),
      onBatch: (worker, batch) => this.reports.take(worker, batch),
      onBenchReply: (worker, reply) => this.bench.onReply(worker.index, reply),
    });
    this.reports = new WorkerReports({ time: this.time, metrics: this.metrics, record: this.record, recent: this.recent, pool: this.pool, forwardElsewhere: (spend) => this.elsewhere?.send(spend) });
    this.adversary = new Adversary({
      scenario: this.scenario,
      brokerUrl: () => this.supervisor.harnessBrokerUrl,
      secret: this.secret,
      prng: prng.fork('adversary'),
      now: () => this.time.now(),
      remittanceSample: () => this.reports.remittanceSample(prng),
    });
    this.faults = new FaultInjector({ time: this.time, supervisor: this.supervisor, adversary: this.adversary, brokerControl: options.brokerControl, databaseControl: options.databaseControl, recent: this.recent, runLog: this.runLog });
    this.readers = new LedgerReaders((line) => this.runLog.log(line));
    this.sampler = new MinuteSampler({
      time: this.time,
      scenario: this.scenario,
      metrics: this.metrics,
      book: this.book,
      record: this.record,
      pool: this.pool,
      readers: this.readers,
      servers: () => this.supervisor.servers,
      runLog: this.runLog,
      onProgress: options.onProgress,
    });
  }

  /** Runs the whole scenario. Child processes are stopped before this returns or throws. */
  async run(): Promise<MqttRunResult> {
    const wallStart = wallEpochMs();
    let completed = false;
    try {
      this.setUp();
      await this.race(this.startProcesses());
      await this.race(this.play());
      await this.race(this.drain());
      await this.race(this.pool.collectFinals(30_000));
      completed = true;
    } finally {
      await this.stopEverything(completed);
    }
    this.endChecks();
    const wallMs = Math.round(wallEpochMs() - wallStart);
    return { summary: this.summarize(wallMs), timeseriesCsv: this.metrics.timeseriesCsv() };
  }

  /**
   * The live progress line's timer. Also cleared when the run stops: a phase the run's failure cut short never
   * reaches its own `finally` (its sleep on the stopped clock never ends), and its timer would keep the process up.
   */
  private progressTimer(): NodeJS.Timeout {
    const timer = setInterval(() => this.sampler.reportProgress(), PROGRESS_EVERY_REAL_MS);
    this.progressTimers.add(timer);
    return timer;
  }

  /** For a live metrics endpoint (see minuteSampler.ts). */
  liveGauges(): Record<string, number> {
    return this.sampler.liveGauges();
  }

  /** Any worker failure ends the run at once. */
  private race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.failurePromise]);
  }

  // ------------------------------------------------------------------ setup and start

  private setUp(): void {
    mkdirSync(this.logDir, { recursive: true });
    // A run directory used before keeps its ledgers: a new run must not start on the old run's postings.
    for (const name of readdirSync(this.outDir)) if (/^ledger-.*\.sqlite(-wal|-shm)?$/.test(name)) rmSync(join(this.outDir, name), { force: true });
    for (const name of readdirSync(this.logDir)) if (name.endsWith('.log')) rmSync(join(this.logDir, name), { force: true });
    this.runLog.open(join(this.logDir, 'coordinator.log'));
  }

  private async startProcesses(): Promise<void> {
    const scenario = this.scenario;
    const registryPath = join(this.outDir, 'registry.json');
    writeRegistry(registryPath, registryOf(scenario));
    if (this.options.agents) {
      this.agentFleet = await AgentFleet.listen(this.options.agents, this.secret, this.logDir, this.runLog, (error) => this.failed(error));
      await this.agentFleet.place(scenario);
    }
    await this.supervisor.startBroker(this.options.brokerUrl, this.agentFleet?.brokerHost);
    await this.supervisor.startServers(scenario.population.shards, registryPath, this.agentFleet?.placeServer);
    this.readers.open(this.supervisor.servers);
    const brokerUrl = this.supervisor.brokerUrl;
    this.elsewhere = new ElsewhereSender({ brokerUrl: this.supervisor.harnessBrokerUrl, secret: this.secret, shardCount: scenario.population.shards, nowMs: wallEpochMs, log: (line) => this.runLog.log(line) });
    await this.runLog.withTimeout(this.elsewhere.start(), CONNECT_TIMEOUT_REAL_MS, 'harness control connection');
    const connectTimeoutRealMs = this.options.connectTimeoutRealMs ?? CONNECT_TIMEOUT_REAL_MS;
    await this.pool.start({ scenario, workers: this.options.workers, brokerUrl, failoverBrokerUrl: this.supervisor.failoverBrokerUrl, secret: this.secret, timeScale: this.options.timeScale, connectTimeoutRealMs, placed: this.agentFleet?.workers });
  }

  // ------------------------------------------------------------------ play (the safety phase)

  private async play(): Promise<void> {
    const origin = wallEpochMs();
    this.time.begin(origin);
    this.pool.sendAll({ type: 'start', originEpochMs: origin });
    this.faults.schedule(this.scenario.faults);
    this.sampler.arm();
    const progress = this.progressTimer();
    try {
      if (this.options.driver) {
        const workers = this.pool.workers;
        const control = this.bench.control({
          ready: workers.map((w) => w.readyReport!),
          pids: { ...this.supervisor.pids, workers: workers.map((w) => w.transport.pid ?? 0) },
          workerCount: workers.length,
          send: (index, message) => this.pool.sendTo(workers[index]!, message),
          race: (work) => this.race(work),
        });
        await this.options.driver(control);
      } else {
        await sleepRun(this.time, this.scenario.durationMs - this.time.now());
      }
    } finally {
      clearInterval(progress);
    }
  }

  // ------------------------------------------------------------------ drain (the liveness phase)

  /** How late the drain had the crashed processes back, for the environment verdict (finals.ts `RestoreTiming`). */
  private restoreTiming(): RestoreTiming | undefined {
    if (this.restoredAtMs === undefined) return undefined;
    const { durationMs, drainMs, policy } = this.scenario;
    return { drained: this.record.drainedAtMs !== undefined, restoredAtMs: this.restoredAtMs, drainEndMs: durationMs + drainMs, drainMs, retryMaxMs: policy.remittance.retry.maxMs };
  }

  private async drain(): Promise<void> {
    this.record.phase = 'liveness';
    // The workload stops at the end of the safety phase, whatever is still being restarted.
    this.pool.sendAll({ type: 'drain' });
    this.runLog.event('drain: workload stopped, restarting whatever is down');
    await this.faults.restoreAll();
    this.restoredAtMs = this.time.now();
    const progress = this.progressTimer();
    const endMs = this.scenario.durationMs + this.scenario.drainMs;
    try {
      // Drained also means every payment through another point of issue is answered (the workers drew their last
      // before reporting drained); an unanswered one is being resent to its restarted server.
      while (!(this.pool.allDrained() && (this.elsewhere?.pending ?? 0) === 0) && this.time.now() < endMs) await new Promise((r) => setTimeout(r, 20));
    } finally {
      clearInterval(progress);
    }
    this.record.drainedAtMs = this.pool.drainedAtMs();
    this.runLog.event(this.record.drainedAtMs === undefined ? 'drain time over, not drained' : `drained at ${this.record.drainedAtMs} ms`);
    await this.sampler.sample();
  }

  /** Stops every process; after a completed run, the ledgers of servers on agents are fetched for the end checks. */
  private async stopEverything(completed: boolean): Promise<void> {
    this.supervisor.beginStopping();
    this.time.stop();
    for (const timer of this.progressTimers) clearInterval(timer);
    await this.pool.stop(10_000);
    await this.supervisor.settle();
    await this.faults.restoreDatabase().catch((error: Error) => this.runLog.log(`  could not start the database again: ${error.message}`));
    this.readers.close();
    await this.supervisor.stopServers();
    const fetchFailure = completed ? await this.supervisor.fetchLedgers().then(() => undefined, (error: Error) => error) : undefined;
    await this.agentFleet?.collectStats();
    await this.elsewhere?.stop();
    await this.supervisor.stopBroker();
    await this.agentFleet?.close();
    this.runLog.event('stopped');
    await Promise.all([this.supervisor.closeLogs(), this.runLog.close()]);
    if (fetchFailure) throw fetchFailure;
  }

  // ------------------------------------------------------------------ end checks and summary

  private endChecks(): void {
    const finals = this.pool.finals();
    const missing = this.pool.workers.length - finals.length;
    if (missing > 0) throw new HarnessError('noFinalReport', `${missing} worker(s) sent no final report`, finals.length);
    const readBack = checkLedgersAtEnd({
      scenario: this.scenario,
      servers: this.supervisor.servers,
      book: this.book,
      record: this.record,
      journals: { terminals: finals.flatMap((f) => f.terminals), pos: finals.flatMap((f) => f.pos), unansweredOrders: finals.flatMap((f) => f.unansweredOrders), purses: finals.flatMap((f) => f.purses ?? []) },
      adversary: this.adversary,
    });
    this.endFigures = readBack.ledger;
    this.lossAccount = readBack.lossAccount;
    this.sharedMeans = readBack.sharedMeans;
  }

  /** The coordinator's own counts plus every worker's (the per-decision checks run in the workers). */
  private mergedInvariants(finals: WorkerFinal[]): InvariantCount[] {
    const merged = this.book.summary();
    for (const final of finals) {
      for (const count of final.invariants) {
        const target = merged.find((m) => m.id === count.id);
        if (!target) continue;
        target.checks += count.checks;
        target.violations += count.violations;
      }
    }
    return merged;
  }

  private summarize(wallMs: number): RunSummary {
    const scenario = this.scenario;
    const finals = this.pool.finals();
    const own = this.book.violations.map((v) => ({ invariant: v.invariant, message: v.detail, timeMs: v.timeMs, recent: v.recent }));
    const first = [...finals.flatMap((f) => f.violations), ...own].sort((a, b) => a.timeMs - b.timeMs)[0];
    const sum = (pick: (f: WorkerFinal) => Record<string, number>): Record<string, number> => {
      const total: Record<string, number> = {};
      for (const f of finals) for (const [k, v] of Object.entries(pick(f))) total[k] = (total[k] ?? 0) + v;
      return total;
    };
    const workload = sum((f) => f.workload);
    // The workers counted every spend they drew as done; the servers' answers say what was applied and refused.
    workload.elsewhere = this.elsewhere?.counts.applied ?? 0;
    workload.elsewhereRefused = this.elsewhere?.counts.refused ?? 0;
    if ((this.elsewhere?.pending ?? 0) > 0) workload.elsewhereUnanswered = this.elsewhere!.pending;
    workload.coverageChanges = finals.reduce((s, f) => s + f.coverageChanges, 0);
    const deviceFaults = sum((f) => f.faults);
    const network = sum((f) => {
      const { rejected, ...counters } = f.link;
      return { ...counters, ...Object.fromEntries(Object.entries(rejected).map(([k, v]) => [`rejected:${k}`, v])) };
    });
    const counters = this.faults.counters;
    const summary = buildSummary({
      scenario,
      file: this.options.file,
      mode: 'mqtt',
      simulatedMs: this.time.now(),
      wallMs,
      events: this.pool.messages,
      metrics: this.metrics,
      record: this.record,
      ledger: this.endFigures,
      invariants: this.mergedInvariants(finals),
      sharedMeans: this.sharedMeans,
      lossAccount: this.lossAccount,
      firstViolation: first,
      // As the virtual mode: arrivals the open-model executor dropped, and orders whose terminal was down.
      droppedOrders: (workload.notIssuedTerminalDown ?? 0) + (workload.arrivalDropped ?? 0),
      network,
      faults: {
        serverCrashes: counters.serverCrashes,
        brokerCrashes: counters.brokerCrashes,
        databaseCrashes: counters.databaseCrashes,
        terminalCrashes: deviceFaults.terminalCrashes ?? 0,
        simMoves: deviceFaults.simMoves ?? 0,
        skewed: deviceFaults.skewed ?? 0,
        partitions: counters.partitions,
        // The workers' copies altered in flight are adversarial messages too, as in the virtual mode.
        adversarialMessages: this.adversary.injections.filter((i) => i.outcome !== 'notSent').length + (deviceFaults.alteredInFlight ?? 0),
        alteredInFlight: deviceFaults.alteredInFlight ?? 0,
        brokerCrashesSkipped: counters.brokerCrashesSkipped,
        serverFailures: counters.serverFailures,
        brokerFailures: counters.brokerFailures,
      },
      workload,
      arrival: mergeArrivalStats(finals.map((f) => f.arrival)),
      environment: environmentOf(finals, this.restoreTiming()),
      traceHash: 'none (mqtt runs are not replayable)',
      replay: `payfleet run ${this.options.file ?? '<scenario>'} --mode mqtt --seed ${scenario.seed} --time-scale ${this.options.timeScale} (same scenario, not the same interleaving)`,
    });
    if (this.agentFleet) summary.agents = this.agentFleet.summary();
    return summary;
  }
}
