// Goal: one mqtt-mode run, end to end — the embedded broker (unless one is given), one payment-server process
// per shard range, the swarm workers, the scenario played in scaled real time with its faults applied for real,
// the drain, and the same end checks, figures and verdict as the virtual mode, read back from the servers'
// SQLite ledgers and the workers' journals.
// Method: the coordinator owns the processes and the run's clock (`RealTime`, its origin sent to every worker).
// Server and broker crashes are SIGKILLs followed by a restart on the same ledger file or port; a partition is
// SIGSTOP … SIGCONT of the shard's server; adversarial messages go through the broker (adversary.ts); device
// faults are the workers'. Workers report orders, remittances and receipts in batches, from which the
// coordinator keeps the metrics, the backlog and the record of approved payments. After the drain it stops every
// process, opens each ledger read-only and runs `checkAtEnd`. Transactions posted twice are found as the virtual
// mode finds them — two different requests whose answers name the same posting — from the answers SD stored.
// A server or broker that exits by itself is counted and restarted, as a supervisor would. The coordinator never
// writes to a ledger (a second writer breaks the server's transactions): spending through other points of issue
// drawn by the workers goes to the server owning the means' shard as a control message (elsewhereSender.ts),
// resent until answered, and the drain waits for every answer. Everything it does is in logs/coordinator.log.

import { createWriteStream, mkdirSync, readdirSync, rmSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Scenario, Fault } from '../scenario/types.ts';
import { Metrics } from '../run/metrics.ts';
import { InvariantBook, RecentEvents, type InvariantCount } from '../check/invariantBook.ts';
import { checkAtEnd, type LedgerFigures } from '../check/endChecks.ts';
import { checkLedgerConserves } from '../check/inv3Conservation.ts';
import { AnswersOfSd } from '../check/inv4NothingLostNothingTwice.ts';
import { Prng } from '../core/prng.ts';
import { SUMMARY_VERSION, type RunSummary } from '../run/runVirtual.ts';
import { evaluateThresholds } from '../scenario/thresholds.ts';
import { Ledger } from '../../machines/domain/ledger.ts';
import { shardOf } from '../../machines/link.ts';
import type { Proof, ServerResult } from '../../machines/messages.ts';
import { newSecret } from '../../broker/credentials.ts';
import { formatShardRange } from '../../broker/topics.ts';
import type { LinkStats } from '../../broker/mqttLink.ts';
import { SqliteLedgerStore } from '../sd/sqliteLedgerStore.ts';
import { writeRegistry } from '../sd/registry.ts';
import { registryOf } from '../core/fleetKeys.ts';
import { RealTime, wallEpochMs, sleepRun } from '../core/realTime.ts';
import { ManagedProcess, forkWorker } from './processes.ts';
import { Adversary, type AdversarialKind } from './adversary.ts';
import { ElsewhereSender } from './elsewhereSender.ts';
import { MAX_SERVER_PROCESSES, shardGroups } from './identities.ts';
import { mergeArrivalStats } from './finals.ts';
import type { BenchCommand, BenchReply, FromWorker, ToWorker, WorkerBatch, WorkerFault, WorkerFinal } from './protocol.ts';

const MINUTE_MS = 60_000;
/** Terminals a worker takes before a second worker is worth its start-up. */
const TERMINALS_PER_WORKER_AT_LEAST = 150;
const BATCH_EVERY_REAL_MS = 200;
const PROGRESS_EVERY_REAL_MS = 500;
/** Real time a worker may take to connect all its endpoints before the run starts anyway. */
const CONNECT_TIMEOUT_REAL_MS = 60_000;

export interface MqttProgress {
  simulatedMs: number;
  totalMs: number;
  events: number;
  terminalsInCoverage: number;
  backlogCount: number;
  phase: 'safety' | 'liveness';
}

/** Crash control of a broker the caller runs (a test's Mosquitto); without it an external broker is not crashed. */
export interface BrokerControl {
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export interface MqttRunOptions {
  scenario: Scenario;
  file?: string;
  outDir: string;
  timeScale: number;
  /** URL of an external broker; the embedded broker is started when absent. */
  brokerUrl?: string;
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
}

type CommandOf<K extends BenchCommand['kind']> = Omit<Extract<BenchCommand, { kind: K }>, 'id'>;

/** What a benchmark driver may do with a running harness. */
export interface BenchControl {
  /** What each worker reported once connected, in worker order. */
  readonly ready: ReadonlyArray<Extract<FromWorker, { type: 'ready' }>>;
  readonly pids: { broker: number | undefined; servers: number[]; workers: number[] };
  /**
   * Sends one command to every worker (the same, or each its own from a function of the worker's index);
   * resolves with their replies, in worker order.
   */
  all<K extends BenchCommand['kind']>(command: (CommandOf<K> & { kind: K }) | ((workerIndex: number) => CommandOf<K> & { kind: K })): Promise<Array<Extract<BenchReply, { kind: K }>>>;
}

export interface MqttRunResult {
  summary: RunSummary;
  timeseriesCsv: string;
}

interface ServerGroup {
  shards: number[];
  range: string;
  dbPath: string;
  process: ManagedProcess;
}

interface WorkerHandle {
  index: number;
  child: ChildProcess;
  exited: Promise<void>;
  ready?: Promise<void>;
  readyReport?: Extract<FromWorker, { type: 'ready' }>;
  drainedAtMs?: number;
  final?: WorkerFinal;
  link?: LinkStats;
  inCoverage: number;
  linksUp: number;
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

/**
 * The scenario a worker plays: the same, except that an open-model arrival rate is shared between workers in
 * proportion to their terminals (each worker's executor would otherwise issue the whole rate).
 */
export function scenarioForWorker(scenario: Scenario, share: number): Scenario {
  const arrival = scenario.arrival;
  if (!arrival) return scenario;
  const maxInFlight = arrival.maxInFlight === 0 ? 0 : Math.max(1, Math.ceil(arrival.maxInFlight * share));
  if (arrival.executor === 'constant-arrival-rate') return { ...scenario, arrival: { ...arrival, maxInFlight, rate: arrival.rate * share } };
  return { ...scenario, arrival: { ...arrival, maxInFlight, startRate: arrival.startRate * share, stages: arrival.stages.map((s) => ({ ...s, target: s.target * share })) } };
}

/** Splits a count of victims between workers in proportion to their terminals. */
export function splitCount(count: number, sizes: readonly number[]): number[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const shares = sizes.map((size) => (total === 0 ? 0 : Math.floor((count * size) / total)));
  let left = count - shares.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0 && sizes.length > 0; i = (i + 1) % sizes.length) {
    if (sizes[i]! > 0) {
      shares[i]!++;
      left--;
    }
  }
  return shares;
}

export class MqttCoordinator {
  readonly time: RealTime;
  readonly metrics = new Metrics();
  readonly recent = new RecentEvents();
  readonly book: InvariantBook;
  readonly approved = new Map<string, { proof: Proof; approvedAtMs: number; remoteMode?: 'debit' | 'authCapture' }>();
  readonly posProofs: Proof[] = [];
  readonly faults: Record<string, number> = { serverCrashes: 0, brokerCrashes: 0, brokerCrashesSkipped: 0, partitions: 0, serverFailures: 0, brokerFailures: 0 };
  private readonly scenario: Scenario;
  private readonly outDir: string;
  private readonly logDir: string;
  private readonly secret: string;
  private readonly prng: Prng;
  private broker: ManagedProcess | undefined;
  private brokerUrl = '';
  private servers: ServerGroup[] = [];
  private workers: WorkerHandle[] = [];
  private readonly pendingRestarts = new Set<() => Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private faultsRunning = true;
  private phase: 'safety' | 'liveness' = 'safety';
  private backlogCount = 0;
  private backlogAmountMinor = 0;
  private peakBacklogAmountMinor = 0;
  private lastConnects = 0;
  /** A read-only connection to each server's ledger file, for the per-minute conservation sum. */
  private readers: Array<SqliteLedgerStore | undefined> = [];
  /** Answers each server had stored at the last sample: the requests it answered since are the difference. */
  private answeredAtLastSample: number[] = [];
  /** Hands payments through other points of issue to their servers and counts the answers. */
  private elsewhere: ElsewhereSender | undefined;
  private stopping = false;
  /** logs/coordinator.log: what the coordinator did, in real and run time. */
  private events: WriteStream | undefined;
  private wallStartMs = 0;
  private readonly recentRemittances: Array<{ terminalId: string; txIds: string[] }> = [];
  private readonly adversary: Adversary;
  private failure: Error | undefined;
  private failed: (error: Error) => void = () => undefined;
  private readonly failurePromise: Promise<never>;
  drainedAtMs: number | undefined;
  endFigures: LedgerFigures | undefined;
  private benchCommandSeq = 0;
  private readonly benchWaiters = new Map<number, { replies: BenchReply[]; left: number; resolve: (replies: BenchReply[]) => void }>();

  constructor(private readonly options: MqttRunOptions) {
    this.scenario = options.scenario;
    this.outDir = resolve(options.outDir);
    this.logDir = join(this.outDir, 'logs');
    this.time = new RealTime(options.timeScale);
    this.prng = new Prng(this.scenario.seed).fork('mqtt-coordinator');
    this.book = new InvariantBook(this.scenario.seed, () => this.time.now(), this.recent, false);
    if (options.brokerUrl && !options.secret) throw new HarnessError('noSecret', 'an external broker needs the secret its credentials were issued with', options.brokerUrl);
    this.secret = options.secret ?? newSecret();
    this.failurePromise = new Promise<never>((_, reject) => {
      this.failed = (error) => {
        this.failure ??= error;
        reject(error);
      };
    });
    this.failurePromise.catch(() => undefined);
    this.adversary = new Adversary({
      scenario: this.scenario,
      brokerUrl: () => this.brokerUrl,
      secret: this.secret,
      prng: this.prng.fork('adversary'),
      now: () => this.time.now(),
      remittanceSample: () => this.remittanceSample(),
    });
  }

  private log(line: string): void {
    this.options.log?.(line);
    this.event(line.trim());
  }

  private event(text: string): void {
    this.events?.write(`real +${Math.round(wallEpochMs() - this.wallStartMs)} ms, run ${this.time.now()} ms: ${text}\n`);
  }

  /** Runs the whole scenario. Child processes are stopped before this returns or throws. */
  async run(): Promise<MqttRunResult> {
    const wallStart = wallEpochMs();
    this.wallStartMs = wallStart;
    try {
      await this.race(this.startProcesses());
      await this.race(this.playSafetyPhase());
      await this.race(this.drain());
      await this.race(this.collectFinals());
    } finally {
      await this.stopEverything();
    }
    this.endChecks();
    const wallMs = Math.round(wallEpochMs() - wallStart);
    return { summary: this.summarize(wallMs), timeseriesCsv: this.metrics.timeseriesCsv() };
  }

  /** Any worker failure ends the run at once. */
  private race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.failurePromise]);
  }

  // ------------------------------------------------------------------ processes

  private async startProcesses(): Promise<void> {
    const scenario = this.scenario;
    mkdirSync(this.logDir, { recursive: true });
    // A run directory used before keeps its ledgers: a new run must not start on the old run's postings.
    for (const name of readdirSync(this.outDir)) if (/^ledger-.*\.sqlite(-wal|-shm)?$/.test(name)) rmSync(join(this.outDir, name), { force: true });
    for (const name of readdirSync(this.logDir)) if (name.endsWith('.log')) rmSync(join(this.logDir, name), { force: true });
    this.events = createWriteStream(join(this.logDir, 'coordinator.log'));
    const registryPath = join(this.outDir, 'registry.json');
    writeRegistry(registryPath, registryOf(scenario));

    if (this.options.brokerUrl) {
      this.brokerUrl = this.options.brokerUrl;
    } else {
      this.broker = new ManagedProcess({
        name: 'broker',
        // The secret travels in the environment, never on argv: argv is readable by every user through `ps`, and a
        // value beginning with '-' would be read as a flag.
        args: ['broker', '--port', '0'],
        env: { ...process.env, PAYFLEET_BROKER_SECRET: this.secret },
        ready: /listening on (mqtt:\/\/(\S+):(\d+))/,
        logDir: this.logDir,
        onUnexpectedExit: (code, signal) => this.supervise(this.broker!, 'brokerFailures', code ?? signal),
      });
      const match = await this.broker.start();
      this.brokerUrl = match[1]!;
      // A restarted broker must come back where every client expects it.
      this.broker.options.args.splice(2, 1, match[3]!);
    }
    this.log(`  broker ${this.brokerUrl}${this.broker ? ` (embedded, pid ${this.broker.pid})` : ' (external)'}`);

    this.servers = shardGroups(scenario.population.shards, MAX_SERVER_PROCESSES).map((shards) => {
      const range = formatShardRange(shards);
      const dbPath = join(this.outDir, `ledger-${range.replace(/,/g, '_')}.sqlite`);
      const args = ['server', '--shards', range, '--broker', this.brokerUrl, '--db', dbPath, '--registry', registryPath];
      if (this.options.serverSynchronous) args.push('--synchronous', this.options.serverSynchronous);
      const process: ManagedProcess = new ManagedProcess({
        name: `server-${range}`,
        args,
        env: { ...globalThis.process.env, PAYFLEET_BROKER_SECRET: this.secret },
        ready: /ready on/,
        logDir: this.logDir,
        onUnexpectedExit: (code, signal) => this.supervise(process, 'serverFailures', code ?? signal),
      });
      return { shards, range, dbPath, process };
    });
    await Promise.all(this.servers.map((s) => s.process.start()));
    this.log(`  servers ${this.servers.map((s) => `${s.range} (pid ${s.process.pid})`).join(', ')}`);
    this.readers = this.servers.map((s) => this.openReader(s.dbPath));
    this.elsewhere = new ElsewhereSender({ brokerUrl: this.brokerUrl, secret: this.secret, shardCount: scenario.population.shards, nowMs: wallEpochMs, log: (line) => this.log(line) });
    await this.withTimeout(this.elsewhere.start(), CONNECT_TIMEOUT_REAL_MS, 'harness control connection');

    const workerCount = this.options.workers ?? Math.max(1, Math.min(2, availableParallelism(), Math.ceil(scenario.population.terminals / TERMINALS_PER_WORKER_AT_LEAST)));
    const terminals = scenario.population.terminals;
    const bounds = Array.from({ length: workerCount + 1 }, (_, i) => Math.floor((i * terminals) / workerCount));
    const sizes = bounds.slice(1).map((to, i) => to - bounds[i]!);
    const deviceFaults = scenario.faults.filter((f): f is WorkerFault => f.kind === 'terminalCrash' || f.kind === 'simMove' || f.kind === 'clockSkew');
    const faultShares = deviceFaults.map((fault) => (fault.kind === 'clockSkew' || fault.kind === 'terminalCrash' || fault.kind === 'simMove' ? splitCount(fault.count, sizes) : []));
    for (let i = 0; i < workerCount; i++) {
      const { child, exited } = forkWorker(i, this.logDir);
      const handle: WorkerHandle = { index: i, child, exited, inCoverage: 0, linksUp: 0 };
      this.workers.push(handle);
      child.on('message', (message: FromWorker) => this.onWorkerMessage(handle, message));
      child.once('exit', (code, signal) => {
        if (!handle.final || code !== 0) this.failed(new HarnessError('workerExited', `worker ${i} exited with ${code ?? signal} (see ${join(this.logDir, `worker-${i}.log`)})`, code ?? signal));
      });
      handle.ready = new Promise<void>((resolveReady) => {
        const onReady = (message: FromWorker) => {
          if (message.type !== 'ready') return;
          child.off('message', onReady);
          handle.readyReport = message;
          this.log(`  worker ${i}: ${message.linksUp}/${message.endpoints} endpoints connected (pid ${child.pid})`);
          resolveReady();
        };
        child.on('message', onReady);
      });
      const faults = deviceFaults.map((fault, f) => ({ ...fault, count: faultShares[f]![i]! })).filter((fault) => fault.count > 0);
      this.sendTo(handle, {
        type: 'init',
        scenario: scenarioForWorker(scenario, terminals === 0 ? 0 : sizes[i]! / terminals),
        workerIndex: i,
        workerCount,
        terminalsFrom: bounds[i]!,
        terminalsTo: bounds[i + 1]!,
        posIndices: Array.from({ length: scenario.population.pos.units }, (_, p) => p).filter((p) => p % workerCount === i),
        brokerUrl: this.brokerUrl,
        secret: this.secret,
        timeScale: this.options.timeScale,
        faults,
        batchEveryRealMs: BATCH_EVERY_REAL_MS,
        connectTimeoutRealMs: this.connectTimeoutRealMs,
      });
    }
    await this.withTimeout(Promise.all(this.workers.map((w) => w.ready)), this.connectTimeoutRealMs + 30_000, 'workers ready');
  }

  /** A reader never blocks the server (WAL); a second writer would break its deferred transactions. */
  private openReader(dbPath: string): SqliteLedgerStore | undefined {
    try {
      return new SqliteLedgerStore(dbPath, { readonly: true });
    } catch (error) {
      this.log(`  no conservation sums during the run for ${dbPath}: ${(error as Error).message}`);
      return undefined;
    }
  }

  /**
   * A server or the broker exited by itself (not a fault of the scenario): that is reported, counted, and — as a
   * supervisor would — it is started again, so the run can still say whether anything was lost.
   */
  private supervise(process: ManagedProcess, counter: 'serverFailures' | 'brokerFailures', how: unknown): void {
    if (this.stopping) return;
    this.faults[counter]!++;
    this.log(`  ${process.options.name} exited by itself (${String(how)}); restarting it (see ${join(this.logDir, `${process.options.name}.log`)})`);
    this.track(new Promise((r) => setTimeout(r, 200)).then(() => (this.stopping || process.alive ? undefined : this.restart(process))));
  }

  private sendTo(worker: WorkerHandle, message: ToWorker): void {
    if (worker.child.connected) worker.child.send(message);
  }

  private async withTimeout<T>(work: Promise<T>, realMs: number, what: string): Promise<T | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolveTimeout) => {
      timer = setTimeout(() => {
        this.log(`  ${what}: gave up after ${realMs} ms`);
        resolveTimeout(undefined);
      }, realMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ------------------------------------------------------------------ safety phase

  private async playSafetyPhase(): Promise<void> {
    const origin = wallEpochMs();
    this.time.begin(origin);
    for (const worker of this.workers) this.sendTo(worker, { type: 'start', originEpochMs: origin });
    for (const fault of this.scenario.faults) this.time.at(fault.atMs, () => this.faultsRunning && this.track(this.applyFault(fault)));
    this.armMinuteSampler();
    const progress = setInterval(() => this.reportProgress(), PROGRESS_EVERY_REAL_MS);
    try {
      if (this.options.driver) await this.options.driver(this.benchControl());
      else await sleepRun(this.time, this.scenario.durationMs - this.time.now());
    } finally {
      clearInterval(progress);
    }
  }

  private benchControl(): BenchControl {
    return {
      ready: this.workers.map((w) => w.readyReport!),
      pids: { broker: this.broker?.pid, servers: this.servers.map((s) => s.process.pid ?? 0), workers: this.workers.map((w) => w.child.pid ?? 0) },
      all: ((command: Omit<BenchCommand, 'id'> | ((workerIndex: number) => Omit<BenchCommand, 'id'>)) => {
        const id = ++this.benchCommandSeq;
        const replies = new Promise<BenchReply[]>((resolveReplies) => this.benchWaiters.set(id, { replies: [], left: this.workers.length, resolve: resolveReplies }));
        for (const worker of this.workers) {
          const own = typeof command === 'function' ? command(worker.index) : command;
          this.sendTo(worker, { type: 'bench', command: { ...own, id } as BenchCommand });
        }
        return this.race(replies);
      }) as BenchControl['all'],
    };
  }

  private onBenchReply(worker: WorkerHandle, reply: BenchReply): void {
    const waiter = this.benchWaiters.get(reply.id);
    if (!waiter) return;
    waiter.replies[worker.index] = reply;
    if (--waiter.left > 0) return;
    this.benchWaiters.delete(reply.id);
    waiter.resolve(waiter.replies);
  }

  private get connectTimeoutRealMs(): number {
    return this.options.connectTimeoutRealMs ?? CONNECT_TIMEOUT_REAL_MS;
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error: Error) => this.log(`  fault failed: ${error.message}`)).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private later(delayMs: number, action: () => Promise<void>): void {
    const run = async (): Promise<void> => {
      if (!this.pendingRestarts.delete(run)) return;
      await action();
    };
    this.pendingRestarts.add(run);
    this.time.schedule(delayMs, () => this.track(run()));
  }

  private serverOfShard(shard: number): ServerGroup | undefined {
    return this.servers.find((s) => s.shards.includes(shard));
  }

  private async applyFault(fault: Fault): Promise<void> {
    this.event(`fault ${JSON.stringify(fault)}`);
    switch (fault.kind) {
      case 'serverCrash': {
        const server = this.serverOfShard(fault.shard);
        if (!server) return;
        this.faults.serverCrashes!++;
        this.recent.push({ timeMs: this.time.now(), actor: `sd.${server.range}`, text: `SIGKILL server ${server.range} (pid ${server.process.pid})` });
        await server.process.kill();
        this.later(fault.restartAfterMs, () => this.restart(server.process));
        return;
      }
      case 'brokerCrash': {
        const control: BrokerControl | undefined = this.broker
          ? { kill: () => this.broker!.kill(), restart: () => this.restart(this.broker!) }
          : this.options.brokerControl;
        if (!control) {
          this.faults.brokerCrashesSkipped!++;
          return;
        }
        this.faults.brokerCrashes!++;
        this.recent.push({ timeMs: this.time.now(), actor: 'broker', text: 'SIGKILL broker' });
        await control.kill();
        this.later(fault.restartAfterMs, () => control.restart());
        return;
      }
      case 'partition': {
        const server = this.serverOfShard(fault.shard);
        if (!server) return;
        this.faults.partitions!++;
        server.process.pause();
        this.later(fault.durationMs, async () => server.process.resume());
        return;
      }
      case 'forgedSignature':
      case 'replayedRemittance':
      case 'malformedPayload':
      case 'wrongTopic': {
        const before = this.adversary.injections.length;
        await this.adversary.inject(fault.kind as AdversarialKind, fault.count);
        for (const i of this.adversary.injections.slice(before)) {
          this.event(`${i.kind} ${i.reqId}: ${i.outcome}${i.answer ? ` (${i.answer.code})` : ''}${i.notSentBecause ? `: ${i.notSentBecause}` : ''}`);
        }
        return;
      }
      default:
        // terminalCrash, simMove and clockSkew are applied by the workers to their own terminals.
        return;
    }
  }

  /** Starts a crashed process again; a failed start is retried, for a restart must not be lost. */
  private async restart(process: ManagedProcess): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.event(`starting ${process.options.name} again`);
        await process.start();
        this.event(`${process.options.name} ready again (pid ${process.pid})`);
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        this.log(`  restart of ${process.options.name} failed (${(error as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  private remittanceSample(): { terminalId: string; proofs: Proof[] } | undefined {
    if (this.recentRemittances.length === 0) return undefined;
    const pick = this.recentRemittances[this.prng.int(0, this.recentRemittances.length - 1)]!;
    const proofs = pick.txIds.map((txId) => this.approved.get(txId)?.proof).filter((p): p is Proof => p !== undefined);
    return { terminalId: pick.terminalId, proofs };
  }

  // ------------------------------------------------------------------ reports from workers

  private onWorkerMessage(worker: WorkerHandle, message: FromWorker): void {
    switch (message.type) {
      case 'batch':
        return this.onBatch(worker, message);
      case 'drained':
        worker.drainedAtMs = message.atMs;
        return;
      case 'bench':
        return this.onBenchReply(worker, message.reply);
      case 'final':
        worker.final = message;
        return;
      case 'error':
        this.failed(new HarnessError('workerFailed', `worker ${message.workerIndex} failed: ${message.message}`, message.workerIndex));
        return;
      default:
        return;
    }
  }

  private onBatch(worker: WorkerHandle, batch: WorkerBatch): void {
    for (const d of batch.decided) {
      this.recent.push({ timeMs: d.atMs, actor: d.terminalId, text: `${d.path} ${d.ok ? 'approved' : `declined ${d.reason}`}` });
      this.metrics.recordOrder(d.ok ? (d.proof!.path as Parameters<Metrics['recordOrder']>[0]) : undefined, d.ok, d.reason);
      if (!d.ok || !d.proof) continue;
      this.metrics.recordLatency(d.latencyKind, d.latencyRealMs);
      this.approved.set(d.proof.txId, { proof: d.proof, approvedAtMs: d.atMs, remoteMode: d.remoteMode });
      if (d.proof.path !== 'remote') {
        this.backlogCount++;
        this.backlogAmountMinor += d.proof.amountMinor;
        if (this.backlogAmountMinor > this.peakBacklogAmountMinor) this.peakBacklogAmountMinor = this.backlogAmountMinor;
      }
    }
    for (const r of batch.remitted) {
      this.backlogCount -= r.count;
      this.backlogAmountMinor -= r.amountMinor;
      this.metrics.recordRemittance(r.count, r.lagsMs);
      if (r.txIds.length > 0) {
        this.recentRemittances.push({ terminalId: r.terminalId, txIds: r.txIds });
        if (this.recentRemittances.length > 256) this.recentRemittances.shift();
      }
    }
    this.metrics.setBacklog(this.backlogCount, this.backlogAmountMinor);
    this.posProofs.push(...batch.posReceipts);
    for (const spend of batch.elsewhere) this.elsewhere?.send(spend);
    for (const [name, by] of Object.entries(batch.counts)) this.metrics.count(name, by);
    worker.inCoverage = batch.inCoverage;
    worker.linksUp = batch.linksUp;
    worker.link = batch.link;
    if (this.time.begun) {
      // Reconnects: every connection after the first of each endpoint (counted from the start of the run).
      const connects = this.workers.reduce((sum, w) => sum + (w.link?.connects ?? 0), 0);
      if (this.lastConnects === 0) this.lastConnects = connects;
      else if (connects > this.lastConnects) {
        this.metrics.recordReconnect(connects - this.lastConnects);
        this.lastConnects = connects;
      }
    }
  }

  private get inCoverage(): number {
    return this.workers.reduce((sum, w) => sum + w.inCoverage, 0);
  }

  private get linksUp(): number {
    return this.workers.reduce((sum, w) => sum + w.linksUp, 0);
  }

  private get messages(): number {
    return this.workers.reduce((sum, w) => sum + (w.link ? w.link.sent + w.link.received : 0), 0);
  }

  private armMinuteSampler(): void {
    this.time.schedule(MINUTE_MS - (this.time.now() % MINUTE_MS), () => {
      this.sampleMinute();
      if (this.drainedAtMs === undefined && this.phase === 'safety') this.armMinuteSampler();
      else if (this.phase === 'liveness' && !this.allDrained()) this.armMinuteSampler();
    });
  }

  private sampleMinute(): void {
    for (const [i, reader] of this.readers.entries()) {
      if (!reader) continue;
      // [INV-3 conservation] once a minute, on what the server has committed so far (one SQL sum).
      checkLedgerConserves(this.book, `server ${this.servers[i]!.range}`, reader);
      // Requests answered, measured: the answers the server stored since the last sample (one per sender and
      // reqId; resends answered from a stored answer are not counted again). A process serving several shards
      // counts under its first: a stored answer does not say which shard's topic its request came through.
      const answered = reader.answeredRequests();
      const before = this.answeredAtLastSample[i] ?? 0;
      if (answered > before) this.metrics.recordServerRequest(this.servers[i]!.shards[0]!, answered - before);
      this.answeredAtLastSample[i] = Math.max(answered, before);
    }
    this.metrics.setGauges({ terminalsInCoverage: this.inCoverage, brokerConnections: this.linksUp });
    this.metrics.setBacklog(this.backlogCount, this.backlogAmountMinor);
    this.metrics.sample(this.time.now());
    this.event(`sample: ${this.inCoverage} in coverage, ${this.linksUp} links up, backlog ${this.backlogCount}`);
    this.reportProgress();
  }

  /**
   * For a live metrics endpoint: brings the gauges up to now (the minute's sample sets them again) and returns
   * the figures `Metrics` has no gauge for.
   */
  liveGauges(): Record<string, number> {
    this.metrics.setGauges({ terminalsInCoverage: this.inCoverage, brokerConnections: this.linksUp });
    return { linksUp: this.linksUp, runTimeMs: this.time.begun ? this.time.now() : 0, liveness: this.phase === 'liveness' ? 1 : 0 };
  }

  private reportProgress(): void {
    this.options.onProgress?.({
      simulatedMs: this.time.now(),
      totalMs: this.scenario.durationMs + this.scenario.drainMs,
      events: this.messages,
      terminalsInCoverage: this.inCoverage,
      backlogCount: this.backlogCount,
      phase: this.phase,
    });
  }

  // ------------------------------------------------------------------ liveness phase

  private allDrained(): boolean {
    return this.workers.every((w) => w.drainedAtMs !== undefined);
  }

  private async drain(): Promise<void> {
    this.phase = 'liveness';
    this.faultsRunning = false;
    // The workload stops at the end of the safety phase, whatever is still being restarted.
    for (const worker of this.workers) this.sendTo(worker, { type: 'drain' });
    this.event('drain: workload stopped, restarting whatever is down');
    // Everything crashed or paused comes back now.
    const restarts = [...this.pendingRestarts];
    await Promise.all([...this.inFlight]);
    await Promise.all(restarts.map((restart) => restart()));
    this.pendingRestarts.clear();
    for (const server of this.servers) if (!server.process.alive) await this.restart(server.process);
    if (this.broker && !this.broker.alive) await this.restart(this.broker);
    const progress = setInterval(() => this.reportProgress(), PROGRESS_EVERY_REAL_MS);
    const endMs = this.scenario.durationMs + this.scenario.drainMs;
    try {
      // Drained also means every payment through another point of issue is answered (the workers drew their last
      // before reporting drained); an unanswered one is being resent to its restarted server.
      while (!(this.allDrained() && (this.elsewhere?.pending ?? 0) === 0) && this.time.now() < endMs) await new Promise((r) => setTimeout(r, 20));
    } finally {
      clearInterval(progress);
    }
    if (this.allDrained()) this.drainedAtMs = Math.max(...this.workers.map((w) => w.drainedAtMs!));
    this.event(this.drainedAtMs === undefined ? 'drain time over, not drained' : `drained at ${this.drainedAtMs} ms`);
    this.sampleMinute();
  }

  private async collectFinals(): Promise<void> {
    for (const worker of this.workers) this.sendTo(worker, { type: 'finish' });
    const finals = Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolveFinal) => {
            const poll = (): void => {
              if (w.final) resolveFinal();
              else setTimeout(poll, 10);
            };
            poll();
          }),
      ),
    );
    await this.withTimeout(finals, 30_000, 'final reports');
  }

  private async stopEverything(): Promise<void> {
    this.stopping = true;
    this.time.stop();
    for (const worker of this.workers) this.sendTo(worker, { type: 'exit' });
    await this.withTimeout(Promise.all(this.workers.map((w) => w.exited)), 10_000, 'workers exit');
    for (const worker of this.workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await Promise.all([...this.inFlight]);
    for (const reader of this.readers) reader?.close();
    this.readers = [];
    await Promise.all(this.servers.map((s) => s.process.stop()));
    await this.elsewhere?.stop();
    await this.broker?.stop();
    this.event('stopped');
    await Promise.all([...this.servers.map((s) => s.process.closeLog()), this.broker?.closeLog(), new Promise<void>((r) => (this.events ? this.events.end(r) : r()))]);
  }

  // ------------------------------------------------------------------ end checks

  private endChecks(): void {
    const finals = this.workers.map((w) => w.final).filter((f): f is WorkerFinal => f !== undefined);
    if (finals.length < this.workers.length) throw new HarnessError('noFinalReport', `${this.workers.length - finals.length} worker(s) sent no final report`, finals.length);
    const stores = this.servers.map((s) => new SqliteLedgerStore(s.dbPath, { readonly: true }));
    try {
      const ledgers = stores.map((store) => new Ledger(store));
      const ledgerOfMeans = (meansId: string): Ledger => {
        const shard = shardOf(meansId, this.scenario.population.shards);
        return ledgers[this.servers.findIndex((s) => s.shards.includes(shard))]!;
      };
      const registry = registryOf(this.scenario);
      const answers = this.answersOfSd(stores);
      this.endFigures = checkAtEnd({
        book: this.book,
        ledgers: ledgers.map((ledger, i) => ({ label: `server ${this.servers[i]!.range}`, ledger })),
        approved: this.approved,
        reversed: answers.reversed,
        posProofs: this.posProofs,
        terminals: finals.flatMap((f) => f.terminals),
        pos: finals.flatMap((f) => f.pos),
        publicKeyOf: (id) => registry.publicKeys[id],
        scheme: this.scenario.crypto,
        duplicatedPostings: answers.duplicatedPostings,
      });
      this.adversary.check(this.book, ledgerOfMeans);
    } finally {
      for (const store of stores) store.close();
    }
  }

  /**
   * [INV-4 nothing twice] SD's answers as every server stored them beside its requests, read in the order they
   * were committed: the virtual mode's checker (a transaction posted by two requests; what SD reversed) on them.
   */
  private answersOfSd(stores: SqliteLedgerStore[]): AnswersOfSd {
    const answers = new AnswersOfSd(this.book);
    for (const store of stores) {
      const rows = store.db.prepare('SELECT sender, req_id, result FROM results ORDER BY rowid').all() as Array<{ sender: string; req_id: string; result: string }>;
      for (const row of rows) answers.seeAnswer(row.sender, row.req_id, JSON.parse(row.result) as ServerResult);
    }
    return answers;
  }

  // ------------------------------------------------------------------ summary

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
    const finals = this.workers.map((w) => w.final).filter((f): f is WorkerFinal => f !== undefined);
    const parts = this.metrics.summaryParts();
    const invariants = this.mergedInvariants(finals);
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
    const ok = invariants.every((i) => i.violations === 0);
    const summary: RunSummary = {
      version: SUMMARY_VERSION,
      scenario: { ...scenario, file: this.options.file },
      mode: 'mqtt',
      seed: scenario.seed,
      terminals: scenario.population.terminals,
      pos: scenario.population.pos.units,
      shards: scenario.population.shards,
      simulatedMs: this.time.now(),
      wallMs,
      events: this.messages,
      // As the virtual mode: arrivals the open-model executor dropped, and orders whose terminal was down.
      orders: { ...parts.orders, dropped: (workload.notIssuedTerminalDown ?? 0) + (workload.arrivalDropped ?? 0) },
      latencyMs: parts.latencyMs,
      remittance: { ...parts.remittance, pendingAtEnd: this.backlogCount, peakBacklogAmountMinor: this.peakBacklogAmountMinor },
      ledger: this.endFigures ?? { approvedAmountMinor: 0, postedAmountMinor: 0, lost: 0, duplicated: 0, unexpected: 0, sumOfBalancesMinor: 0 },
      invariants,
      violation: first && { invariant: first.invariant, message: first.message, seed: scenario.seed, timeMs: first.timeMs, recent: first.recent },
      network,
      faults: {
        serverCrashes: this.faults.serverCrashes!,
        brokerCrashes: this.faults.brokerCrashes!,
        terminalCrashes: deviceFaults.terminalCrashes ?? 0,
        simMoves: deviceFaults.simMoves ?? 0,
        skewed: deviceFaults.skewed ?? 0,
        partitions: this.faults.partitions!,
        adversarialMessages: this.adversary.injections.filter((i) => i.outcome !== 'notSent').length,
        brokerCrashesSkipped: this.faults.brokerCrashesSkipped!,
        serverFailures: this.faults.serverFailures!,
        brokerFailures: this.faults.brokerFailures!,
      },
      workload,
      arrival: mergeArrivalStats(finals.map((f) => f.arrival)),
      thresholds: [],
      drainedAtMs: this.drainedAtMs ?? null,
      traceHash: 'none (mqtt runs are not replayable)',
      ok,
      replay: `payfleet run ${this.options.file ?? '<scenario>'} --mode mqtt --seed ${scenario.seed} --time-scale ${this.options.timeScale} (same scenario, not the same interleaving)`,
    };
    summary.thresholds = evaluateThresholds(scenario.thresholds, summary);
    return summary;
  }
}
