// Goal: the time of an mqtt-mode run — real time, scaled, so `--time-scale 60` plays a simulated hour in a real
// minute — shared by the coordinator and every worker process, and used both by the harness (workload, coverage,
// faults) and by the machines' own delays (remittance retries, remote timeouts, captures).
// Method: run time is `floor((wall − origin) × timeScale)` whole milliseconds, with the origin an epoch agreed
// between processes (the coordinator sends it), so every process reads the same run time. Before `begin` the run
// has not started and time stands at 0, so it never goes backwards for an actor started early. Timers are Node
// timers of `delayMs / timeScale` real milliseconds; the same scaling backs an XState clock, so a machine's
// `after: { 2000 }` waits 2 s of run time. Every pending timer is tracked so `stop()` can cancel them all.

import type { TimeSource } from './timeSource.ts';
import type { Clock } from './scheduler.ts';

/** Node fires a timer longer than this after 1 ms; longer timers are clamped (no run lasts 24 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** Wall-clock epoch in milliseconds with sub-millisecond resolution, comparable across processes. */
export function wallEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

export type RealTimer = ReturnType<typeof setTimeout>;

export class RealTime implements TimeSource {
  private originEpochMs: number | undefined;
  private readonly pending = new Set<RealTimer>();
  private stopped = false;
  /** The XState clock for `createActor`: machine delays in run time. */
  readonly clock: Clock;

  constructor(readonly timeScale: number) {
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new Error(`badTimeScale: the time scale must be a finite number > 0, got ${timeScale}`);
    this.clock = {
      setTimeout: (fn: (...args: unknown[]) => void, timeoutMs: number) => this.schedule(timeoutMs, fn as () => void),
      clearTimeout: (handle: unknown) => this.cancel(handle as RealTimer),
    };
  }

  /** Starts run time: `now()` is 0 at `originEpochMs` (a `wallEpochMs()` reading, possibly another process's). */
  begin(originEpochMs: number): void {
    if (this.originEpochMs !== undefined) throw new Error(`alreadyBegun: run time began at epoch ${this.originEpochMs}`);
    this.originEpochMs = originEpochMs;
  }

  get begun(): boolean {
    return this.originEpochMs !== undefined;
  }

  now(): number {
    if (this.originEpochMs === undefined) return 0;
    return Math.max(0, Math.floor((wallEpochMs() - this.originEpochMs) * this.timeScale));
  }

  /** Real milliseconds for `runMs` of run time. */
  realMs(runMs: number): number {
    return runMs / this.timeScale;
  }

  schedule(delayMs: number, fn: () => void): RealTimer {
    const realDelayMs = Math.min(MAX_TIMER_MS, Math.max(0, delayMs / this.timeScale));
    const handle = setTimeout(() => {
      this.pending.delete(handle);
      if (!this.stopped) fn();
    }, realDelayMs);
    this.pending.add(handle);
    return handle;
  }

  at(timeMs: number, fn: () => void): RealTimer {
    return this.schedule(timeMs - this.now(), fn);
  }

  cancel(handle: RealTimer | undefined): void {
    if (handle === undefined) return;
    clearTimeout(handle);
    this.pending.delete(handle);
  }

  /** Timers still waiting. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Cancels every pending timer; later ones never fire. */
  stop(): void {
    this.stopped = true;
    for (const handle of this.pending) clearTimeout(handle);
    this.pending.clear();
  }
}

/** Resolves after `runMs` of run time. */
export function sleepRun(time: RealTime, runMs: number): Promise<void> {
  return new Promise((resolve) => time.schedule(runMs, resolve));
}
