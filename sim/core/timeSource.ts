// Goal: what the workload, the coverage model and the nemesis need of time — the current time and a way to run
// something later — so the same code drives the virtual simulator and the real-time mqtt runner.
// Method: an interface; the virtual `Scheduler` and the mqtt mode's real-time scheduler both implement it.

export interface TimeSource {
  /** Milliseconds since the start of the run (virtual, or real time scaled by the run's time scale). */
  now(): number;
  /** Runs `fn` after `delayMs` of run time. */
  schedule(delayMs: number, fn: () => void): unknown;
  /** Runs `fn` at run time `timeMs` (at once if that is past). */
  at(timeMs: number, fn: () => void): unknown;
}
