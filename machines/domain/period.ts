// Goal: the single definition of "which period is time t in", shared by fixed amounts, recurring amounts
// and expenditure ceilings.
// Method: periods are half-open intervals [origin + k·P, origin + (k+1)·P). An order exactly on a boundary
// belongs to the new period; that choice is tested and documented because every period rule depends on it.

/** Index k of the period that contains `timeMs`, for periods of `periodMs` starting at `originMs`. */
export function periodIndexAt(timeMs: number, originMs: number, periodMs: number): number {
  return Math.floor((timeMs - originMs) / periodMs);
}

/** Start time of period `index`. */
export function periodStartMs(index: number, originMs: number, periodMs: number): number {
  return originMs + index * periodMs;
}
