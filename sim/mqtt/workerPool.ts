// Goal: the swarm workers of an mqtt run — how the fleet is split between them, forking each with its share
// (terminals, POS units, device faults, open-model arrival rate), the messages to and from them, and the figures
// summed over them (endpoints in coverage, links up, messages).
// Method: each worker is reached through a `WorkerTransport` (transport.ts): a process forked here with an IPC
// channel, or one an agent runs on its host (the same messages over the agent's WebSocket); what it reports is
// routed to the coordinator's handlers. A worker that exits before its final report, or reports an error,
// fails the run at once through `failed`.

import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Scenario } from '../scenario/types.ts';
import type { LinkStats } from '../../broker/linkOptions.ts';
import { IpcWorkerTransport, type WorkerTransport } from './transport.ts';
import { HarnessError } from './runOptions.ts';
import type { RunLog } from './runLog.ts';
import type { BenchReply, FromWorker, ToWorker, WorkerBatch, WorkerFault, WorkerFinal } from './protocol.ts';

/** Terminals a worker takes before a second worker is worth its start-up. */
const TERMINALS_PER_WORKER_AT_LEAST = 150;
const BATCH_EVERY_REAL_MS = 200;

export interface WorkerHandle {
  index: number;
  transport: WorkerTransport;
  exited: Promise<void>;
  ready?: Promise<void>;
  readyReport?: Extract<FromWorker, { type: 'ready' }>;
  drainedAtMs?: number;
  final?: WorkerFinal;
  link?: LinkStats;
  inCoverage: number;
  linksUp: number;
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

/** The number of swarm workers of a fleet when the caller does not say: by fleet size, at most the cores, at most 2. */
export function defaultWorkerCount(terminals: number): number {
  return Math.max(1, Math.min(2, availableParallelism(), Math.ceil(terminals / TERMINALS_PER_WORKER_AT_LEAST)));
}

export interface WorkerPoolParts {
  logDir: string;
  runLog: RunLog;
  /** Ends the run with this error. */
  failed(error: Error): void;
  onBatch(worker: WorkerHandle, batch: WorkerBatch): void;
  onBenchReply(worker: WorkerHandle, reply: BenchReply): void;
}

export interface PoolStart {
  scenario: Scenario;
  /** Number of workers; by fleet size when absent (at most the cores, at most 2). */
  workers: number | undefined;
  brokerUrl: string;
  /** Brokers the endpoints fail over to after `brokerUrl`'s; none when absent. */
  failoverBrokerUrl?: string;
  secret: string;
  timeScale: number;
  connectTimeoutRealMs: number;
  /**
   * Where each worker runs and how many terminals it takes (placement.ts, a run over agents); absent, `workers`
   * (or the fleet size) workers are forked here and the terminals split evenly.
   */
  placed?: Array<{ terminals: number; transport: (index: number) => WorkerTransport }>;
}

export class WorkerPool {
  readonly workers: WorkerHandle[] = [];

  constructor(private readonly parts: WorkerPoolParts) {}

  /** Forks every worker with its share and resolves once each has reported ready (connected, or timed out). */
  async start(options: PoolStart): Promise<void> {
    const { scenario } = options;
    const placed = options.placed;
    const workerCount = placed?.length ?? options.workers ?? defaultWorkerCount(scenario.population.terminals);
    const terminals = scenario.population.terminals;
    const bounds = placed
      ? placed.reduce((b, p) => [...b, b[b.length - 1]! + p.terminals], [0])
      : Array.from({ length: workerCount + 1 }, (_, i) => Math.floor((i * terminals) / workerCount));
    if (bounds[workerCount] !== terminals) throw new HarnessError('badPlacement', `the workers placed hold ${bounds[workerCount]} terminals, the fleet has ${terminals}`, bounds);
    const sizes = bounds.slice(1).map((to, i) => to - bounds[i]!);
    const deviceFaults = scenario.faults.filter((f): f is WorkerFault => f.kind === 'terminalCrash' || f.kind === 'simMove' || f.kind === 'clockSkew' || f.kind === 'alteredInFlight');
    const faultShares = deviceFaults.map((fault) => splitCount(fault.count, sizes));
    for (let i = 0; i < workerCount; i++) {
      const handle = this.attach(i, placed ? placed[i]!.transport(i) : new IpcWorkerTransport(i, this.parts.logDir));
      const faults = deviceFaults.map((fault, f) => ({ ...fault, count: faultShares[f]![i]! })).filter((fault) => fault.count > 0);
      this.sendTo(handle, {
        type: 'init',
        scenario: scenarioForWorker(scenario, terminals === 0 ? 0 : sizes[i]! / terminals),
        workerIndex: i,
        workerCount,
        terminalsFrom: bounds[i]!,
        terminalsTo: bounds[i + 1]!,
        posIndices: Array.from({ length: scenario.population.pos.units }, (_, p) => p).filter((p) => p % workerCount === i),
        brokerUrl: options.brokerUrl,
        failoverBrokerUrl: options.failoverBrokerUrl,
        secret: options.secret,
        timeScale: options.timeScale,
        faults,
        batchEveryRealMs: BATCH_EVERY_REAL_MS,
        connectTimeoutRealMs: options.connectTimeoutRealMs,
      });
    }
    await this.parts.runLog.withTimeout(Promise.all(this.workers.map((w) => w.ready)), options.connectTimeoutRealMs + 30_000, 'workers ready');
  }

  private attach(i: number, transport: WorkerTransport): WorkerHandle {
    const handle: WorkerHandle = { index: i, transport, exited: transport.exited, inCoverage: 0, linksUp: 0 };
    this.workers.push(handle);
    const where = transport.host === 'local' ? '' : ` on agent ${transport.host}`;
    transport.onMessage((message: FromWorker) => this.onMessage(handle, message));
    transport.onExit((code, signal) => {
      if (!handle.final || code !== 0) this.parts.failed(new HarnessError('workerExited', `worker ${i}${where} exited with ${code ?? signal} (see ${join(this.parts.logDir, `worker-${i}.log`)})`, code ?? signal));
    });
    handle.ready = new Promise<void>((resolveReady) => {
      const onReady = (message: FromWorker) => {
        if (message.type !== 'ready') return;
        transport.offMessage(onReady);
        handle.readyReport = message;
        this.parts.runLog.log(`  worker ${i}${where}: ${message.linksUp}/${message.endpoints} endpoints connected (pid ${transport.pid})`);
        resolveReady();
      };
      transport.onMessage(onReady);
      // A worker gone before it was ready has failed the run (above); the wait for the others must end too.
      transport.onExit(() => resolveReady());
    });
    return handle;
  }

  private onMessage(worker: WorkerHandle, message: FromWorker): void {
    switch (message.type) {
      case 'batch':
        return this.parts.onBatch(worker, message);
      case 'drained':
        worker.drainedAtMs = message.atMs;
        return;
      case 'bench':
        return this.parts.onBenchReply(worker, message.reply);
      case 'final':
        worker.final = message;
        return;
      case 'error':
        this.parts.failed(new HarnessError('workerFailed', `worker ${message.workerIndex} failed: ${message.message}`, message.workerIndex));
        return;
      default:
        return;
    }
  }

  sendTo(worker: WorkerHandle, message: ToWorker): void {
    if (worker.transport.connected) worker.transport.send(message);
  }

  sendAll(message: ToWorker): void {
    for (const worker of this.workers) this.sendTo(worker, message);
  }

  get inCoverage(): number {
    return this.workers.reduce((sum, w) => sum + w.inCoverage, 0);
  }

  get linksUp(): number {
    return this.workers.reduce((sum, w) => sum + w.linksUp, 0);
  }

  get messages(): number {
    return this.workers.reduce((sum, w) => sum + (w.link ? w.link.sent + w.link.received : 0), 0);
  }

  /** Connections of every endpoint so far, summed over the workers' latest link counters. */
  get connects(): number {
    return this.workers.reduce((sum, w) => sum + (w.link?.connects ?? 0), 0);
  }

  allDrained(): boolean {
    return this.workers.every((w) => w.drainedAtMs !== undefined);
  }

  /** When the last worker drained; undefined while any has not. */
  drainedAtMs(): number | undefined {
    return this.allDrained() ? Math.max(...this.workers.map((w) => w.drainedAtMs!)) : undefined;
  }

  /** Asks each worker for its final report and waits (at most `realMs`) until all have sent one. */
  async collectFinals(realMs: number): Promise<void> {
    this.sendAll({ type: 'finish' });
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
    await this.parts.runLog.withTimeout(finals, realMs, 'final reports');
  }

  finals(): WorkerFinal[] {
    return this.workers.map((w) => w.final).filter((f): f is WorkerFinal => f !== undefined);
  }

  /** Tells every worker to exit, and kills any still running after `realMs`. */
  async stop(realMs: number): Promise<void> {
    this.sendAll({ type: 'exit' });
    await this.parts.runLog.withTimeout(Promise.all(this.workers.map((w) => w.exited)), realMs, 'workers exit');
    for (const worker of this.workers) worker.transport.kill();
  }
}
