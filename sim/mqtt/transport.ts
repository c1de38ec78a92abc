// Goal: the one transport between the coordinator and a swarm worker, whatever carries it: Node's IPC channel to
// a worker forked here (a local run, and an agent's own children), or an agent's WebSocket to a worker that agent
// forked on its host (agentHub.ts `RemoteWorkerTransport`). The worker pool speaks only this interface, so the
// same `ToWorker`/`FromWorker` messages cross either way and nothing else in the run differs.
// Method: a small interface — send, listen, learn of the exit, kill — and its IPC implementation over
// processes.ts `forkWorker`.

import type { ChildProcess } from 'node:child_process';
import { forkWorker } from './processes.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

export interface WorkerTransport {
  /** Where the worker runs: 'local', or the name of the agent hosting it. */
  readonly host: string;
  /** The worker's process id on its host (undefined before it is known). */
  readonly pid: number | undefined;
  /** False once the worker can no longer be sent to. */
  readonly connected: boolean;
  /** Until the worker process has exited. */
  readonly alive: boolean;
  readonly exited: Promise<void>;
  send(message: ToWorker): void;
  onMessage(listener: (message: FromWorker) => void): void;
  offMessage(listener: (message: FromWorker) => void): void;
  /** Called once, when the worker process exits (code, or the signal that ended it). */
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  /** SIGKILL. */
  kill(): void;
}

/** A worker forked here with an IPC channel (processes.ts `forkWorker`). */
export class IpcWorkerTransport implements WorkerTransport {
  readonly host = 'local';
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;

  constructor(index: number, logDir: string, onOutput?: (chunk: Buffer) => void) {
    const forked = forkWorker(index, logDir, onOutput);
    this.child = forked.child;
    this.exited = forked.exited;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get connected(): boolean {
    return this.child.connected;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  send(message: ToWorker): void {
    if (this.child.connected) this.child.send(message);
  }

  onMessage(listener: (message: FromWorker) => void): void {
    this.child.on('message', listener);
  }

  offMessage(listener: (message: FromWorker) => void): void {
    this.child.off('message', listener);
  }

  onExit(listener: (code: number | null, signal: string | null) => void): void {
    this.child.once('exit', listener);
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }
}
