// Goal: the summary figures of an mqtt-mode run that each swarm worker measured for its own slice of the fleet,
// put back together as the virtual mode reports them for the whole fleet.
// Method: counts add up exactly. The one figure that does not is the open-model executor's peak of orders in
// flight: each worker bounds and measures its own share (`scenarioForWorker` splits `maxInFlight`), and the
// workers' peaks need not fall at the same moment, so their sum is an upper bound of the fleet's peak — which is
// what is reported, and said so here. The environment section adds up the endpoints each worker saw never
// connect, and names the first few.

import type { ArrivalStats, DropReason } from '../core/workload.ts';
import type { EnvironmentReport } from '../run/summary.ts';

/** Never-connected endpoint ids the summary names (the count covers them all). */
const NEVER_CONNECTED_IDS_NAMED = 20;

/** Whether the test bed hosted the fleet, from each worker's endpoints that never got a link. */
export function environmentOf(parts: ReadonlyArray<{ neverConnected: { count: number; ids: string[] } }>): EnvironmentReport {
  let count = 0;
  const ids: string[] = [];
  for (const { neverConnected } of parts) {
    count += neverConnected.count;
    for (const id of neverConnected.ids) if (ids.length < NEVER_CONNECTED_IDS_NAMED) ids.push(id);
  }
  const causes = count === 0 ? [] : [`${count} endpoint(s) never connected to the broker during the run (connections refused or never accepted): ${ids.join(', ')}${count > ids.length ? ', …' : ''}`];
  return { ok: count === 0, causes, neverConnected: { count, ids } };
}

/** The fleet's `summary.arrival` from each worker's own; null when no worker ran an open-model executor. */
export function mergeArrivalStats(parts: ReadonlyArray<ArrivalStats | null | undefined>): ArrivalStats | null {
  const present = parts.filter((p): p is ArrivalStats => p !== null && p !== undefined);
  const first = present[0];
  if (!first) return null;
  const droppedByReason: Record<DropReason, number> = { noTerminalUp: 0, maxInFlight: 0, noSource: 0 };
  const merged: ArrivalStats = { executor: first.executor, arrivals: 0, issued: 0, dropped: 0, droppedByReason, peakInFlight: 0 };
  for (const part of present) {
    merged.arrivals += part.arrivals;
    merged.issued += part.issued;
    merged.dropped += part.dropped;
    for (const reason of Object.keys(droppedByReason) as DropReason[]) droppedByReason[reason] += part.droppedByReason[reason] ?? 0;
    // An upper bound of the fleet's peak (see the header).
    merged.peakInFlight += part.peakInFlight;
  }
  return merged;
}
