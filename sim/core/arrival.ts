// Goal: the arrival times of open-model load, as k6's `constant-arrival-rate` and `ramping-arrival-rate`
// executors space their iterations: a constant rate starts order k (k = 0, 1, …) at k·timeUnit/rate; a ramping
// rate starts order k (k = 1, 2, …) when the integral of its piecewise-linear rate reaches k.
// Method: a pure iterator over run times in milliseconds (fractional; the scheduler rounds them to whole ms),
// computed in closed form from k, never by adding intervals, so rounding errors do not pile up over a long
// run. Within a ramping stage the integral is r0·t + a·t²/2, solved for t in the cancellation-free form
// 2c / (r0 + √(r0² + 2ac)). It lives in sim/ (not load/) because the workload, which both runners use, drives it.

import type { Arrival } from '../scenario/types.ts';

/** Slack on float comparisons of counts (an integral that should be exactly 50 may come out 49.999999999). */
const EPSILON = 1e-9;

export class ArrivalSchedule {
  private k = 0;
  private stage = 0;
  private stageStartMs = 0;
  private countAtStageStart = 0;
  private readonly endOffsetMs: number;

  /**
   * @param safetyEndMs end of the safety phase: a constant rate without a duration runs until then.
   * @param share fraction of the global rate this process issues (1 in virtual mode; a worker's slice in mqtt mode).
   */
  constructor(
    private readonly arrival: Arrival,
    safetyEndMs: number,
    private readonly share = 1,
  ) {
    if (arrival.executor === 'constant-arrival-rate') this.endOffsetMs = arrival.durationMs ?? Math.max(0, safetyEndMs - arrival.startTimeMs);
    else this.endOffsetMs = arrival.stages.reduce((sum, stage) => sum + stage.durationMs, 0);
  }

  /** The run time of the next arrival, or undefined when the executor is done. */
  next(): number | undefined {
    const offset = this.arrival.executor === 'constant-arrival-rate' ? this.nextConstant() : this.nextRamping();
    return offset === undefined ? undefined : this.arrival.startTimeMs + offset;
  }

  private nextConstant(): number | undefined {
    const arrival = this.arrival as Extract<Arrival, { executor: 'constant-arrival-rate' }>;
    const offset = (this.k * arrival.timeUnitMs) / (arrival.rate * this.share);
    if (offset >= this.endOffsetMs) return undefined;
    this.k++;
    return offset;
  }

  private nextRamping(): number | undefined {
    const arrival = this.arrival as Extract<Arrival, { executor: 'ramping-arrival-rate' }>;
    const perMs = (rate: number) => (rate * this.share) / arrival.timeUnitMs;
    const wanted = this.k + 1;
    while (this.stage < arrival.stages.length) {
      const stage = arrival.stages[this.stage]!;
      const r0 = perMs(this.stage === 0 ? arrival.startRate : arrival.stages[this.stage - 1]!.target);
      const r1 = perMs(stage.target);
      const stageCount = ((r0 + r1) / 2) * stage.durationMs;
      const c = wanted - this.countAtStageStart;
      if (c <= stageCount + EPSILON) {
        this.k = wanted;
        return this.stageStartMs + Math.min(stage.durationMs, timeToReach(r0, (r1 - r0) / stage.durationMs, c));
      }
      this.countAtStageStart += stageCount;
      this.stageStartMs += stage.durationMs;
      this.stage++;
    }
    return undefined;
  }
}

/** The t ≥ 0 at which r0·t + a·t²/2 = c (c > 0), for a rate r0 + a·t that stays ≥ 0 until then. */
function timeToReach(r0: number, a: number, c: number): number {
  if (a === 0) return c / r0;
  const discriminant = Math.max(0, r0 * r0 + 2 * a * c);
  return (2 * c) / (r0 + Math.sqrt(discriminant));
}

/** How many arrivals the executor makes in all (what `next` yields before undefined), for checks and reports. */
export function expectedArrivals(arrival: Arrival, safetyEndMs: number, share = 1): number {
  if (arrival.executor === 'constant-arrival-rate') {
    const lengthMs = arrival.durationMs ?? Math.max(0, safetyEndMs - arrival.startTimeMs);
    return Math.ceil((lengthMs * arrival.rate * share) / arrival.timeUnitMs - EPSILON);
  }
  let total = 0;
  let previous = arrival.startRate;
  for (const stage of arrival.stages) {
    total += (((previous + stage.target) / 2) * share * stage.durationMs) / arrival.timeUnitMs;
    previous = stage.target;
  }
  return Math.floor(total + EPSILON);
}
