// Goal: what the coordinator holds for each worker and payment server an agent runs: a `WorkerTransport` the pool
// speaks to as to a local worker, and a `ControlledProcess` the supervisor and the fault injector control as a
// local server (start, SIGKILL, SIGSTOP/SIGCONT, stop), each done by the agent over its channel (agentHub.ts).
// Method: thin objects over an `AgentChannel`: they send its messages and requests, and the link hands them what the
// agent reports (a worker's messages and exit, a server that exited by itself, the link itself lost).

import { formatLedgerSpec } from '../sd/ledgerSpec.ts';
import type { Scenario } from '../scenario/types.ts';
import type { AgentChannel } from './agentProtocol.ts';
import type { ControlledProcess } from './processes.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import type { ServerPlacementRequest } from './supervisor.ts';
import type { WorkerTransport } from './transport.ts';

/** A worker an agent runs: the `WorkerTransport` the pool speaks, over the agent's channel. */
export class RemoteWorkerTransport implements WorkerTransport {
  readonly exited: Promise<void>;
  pid: number | undefined;
  private exitCode: { code: number | null; signal: string | null } | undefined;
  private readonly listeners = new Set<(message: FromWorker) => void>();
  private readonly exitListeners: Array<(code: number | null, signal: string | null) => void> = [];
  private resolveExited: () => void = () => undefined;

  constructor(
    private readonly agent: AgentChannel,
    readonly index: number,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  get host(): string {
    return this.agent.name;
  }

  get connected(): boolean {
    return this.exitCode === undefined;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  send(message: ToWorker): void {
    if (this.connected) this.agent.send({ type: 'toWorker', worker: this.index, message });
  }

  onMessage(listener: (message: FromWorker) => void): void {
    this.listeners.add(listener);
  }

  offMessage(listener: (message: FromWorker) => void): void {
    this.listeners.delete(listener);
  }

  onExit(listener: (code: number | null, signal: string | null) => void): void {
    if (this.exitCode) listener(this.exitCode.code, this.exitCode.signal);
    else this.exitListeners.push(listener);
  }

  kill(): void {
    if (this.alive) this.agent.send({ type: 'killWorker', worker: this.index });
  }

  started(pid: number): void {
    this.pid = pid;
  }

  deliver(message: FromWorker): void {
    for (const listener of [...this.listeners]) listener(message);
  }

  exitedWith(code: number | null, signal: string | null): void {
    if (this.exitCode) return;
    this.exitCode = { code, signal };
    for (const listener of this.exitListeners.splice(0)) listener(code, signal);
    this.resolveExited();
  }
}

/** A payment server an agent runs, controlled like a local one (supervisor.ts, faultInjector.ts). */
export class RemoteServerProcess implements ControlledProcess {
  pid: number | undefined;
  alive = false;
  paused = false;
  starts = 0;

  constructor(
    private readonly agent: AgentChannel,
    private readonly request: ServerPlacementRequest,
    private readonly scenario: Scenario,
  ) {}

  get name(): string {
    return `server-${this.request.range}`;
  }

  get host(): string {
    return this.agent.name;
  }

  async start(): Promise<unknown> {
    this.starts++;
    const { range, brokerUrl, database, synchronous } = this.request;
    const value = (await this.agent.request({ op: 'startServer', server: { range, brokerUrl, scenario: this.scenario, database: database ? formatLedgerSpec(database) : undefined, synchronous } })) as { pid: number };
    this.pid = value.pid;
    this.alive = true;
    this.paused = false;
    return value;
  }

  async kill(): Promise<void> {
    this.alive = false;
    this.paused = false;
    await this.unlessAgentGone(this.agent.request({ op: 'killServer', range: this.request.range }));
  }

  /** A lost agent killed its children itself: nothing left to kill or stop there. */
  private async unlessAgentGone(work: Promise<unknown>): Promise<void> {
    try {
      await work;
    } catch (error) {
      if (this.agent.gone === undefined) throw error;
    }
  }

  pause(): void {
    if (!this.alive) return;
    this.paused = true;
    void this.agent.request({ op: 'pauseServer', range: this.request.range }).catch(() => undefined);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    void this.agent.request({ op: 'resumeServer', range: this.request.range }).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.alive = false;
    this.paused = false;
    await this.unlessAgentGone(this.agent.request({ op: 'stopServer', range: this.request.range }));
  }

  async closeLog(): Promise<void> {}

  exitedBySelf(code: number | null, signal: string | null): void {
    if (!this.alive) return;
    this.alive = false;
    this.request.onUnexpectedExit(code, signal);
  }

  gone(): void {
    this.alive = false;
  }
}
