// Goal: logs/coordinator.log — what the coordinator of an mqtt run did, in real and run time — and the one way
// its parts give up waiting on something without hanging the run.
// Method: a write stream opened once the run directory is clean; `log` also echoes to the caller's log (the
// CLI's console), `event` only writes the file. `withTimeout` resolves undefined after the given real time and
// says so in the log, so a stuck worker or connection ends in a verdict, not a hung process.

import { createWriteStream, type WriteStream } from 'node:fs';
import { wallEpochMs, type RealTime } from '../core/realTime.ts';

export class RunLog {
  private stream: WriteStream | undefined;
  private wallStartMs = wallEpochMs();

  constructor(
    private readonly time: RealTime,
    private readonly echo: ((line: string) => void) | undefined,
  ) {}

  /** Opens the log file; real times are counted from now. */
  open(path: string): void {
    this.wallStartMs = wallEpochMs();
    this.stream = createWriteStream(path);
  }

  /** A line for the caller's log and the file. */
  log(line: string): void {
    this.echo?.(line);
    this.event(line.trim());
  }

  /** A line for the file only. */
  event(text: string): void {
    this.stream?.write(`real +${Math.round(wallEpochMs() - this.wallStartMs)} ms, run ${this.time.now()} ms: ${text}\n`);
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => (this.stream ? this.stream.end(resolve) : resolve()));
  }

  /** `work`, or undefined once `realMs` have passed (logged as given up on `what`). */
  async withTimeout<T>(work: Promise<T>, realMs: number, what: string): Promise<T | undefined> {
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
}
