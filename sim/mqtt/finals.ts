// Goal: the summary figures of an mqtt-mode run that each swarm worker measured for its own slice of the fleet,
// put back together as the virtual mode reports them for the whole fleet.
// Method: counts add up exactly. The one figure that does not is the open-model executor's peak of orders in
// flight: each worker bounds and measures its own share (`scenarioForWorker` splits `maxInFlight`), and the
// workers' peaks need not fall at the same moment, so their sum is an upper bound of the fleet's peak — which is
// what is reported, and said so here. The environment section adds up the endpoints each worker saw never
// connect, and names the first few; and it says when the test bed restarted the crashed broker and servers so
// late that the drain could not be judged (see `RestoreTiming`).

import type { ArrivalStats, DropReason } from '../core/workload.ts';
import type { EnvironmentReport } from '../run/summary.ts';

/** Never-connected endpoint ids the summary names (the count covers them all). */
const NEVER_CONNECTED_IDS_NAMED = 20;

/**
 * When the drain had every crashed process back, against how long it needed them back. A proxy retries a
 * remittance after at most `retryMaxMs` of run time, however long its server was away; so a drain in which the
 * broker and the servers were all up again for less than that cannot show that every backlog drains. That is
 * the test bed's doing when their restarts took that long (at ×30, a process that needs 10 real seconds to start
 * on a loaded machine takes five minutes of run time): the run says ENVIRONMENT, not INV-7. A scenario whose
 * whole drain is shorter than two retry delays chose a short drain itself: there the restarts are blamed only
 * when they took more than half of it.
 */
export interface RestoreTiming {
  drained: boolean;
  /** Run time at which every process the scenario crashed was ready again (a server: subscribed). */
  restoredAtMs: number;
  drainEndMs: number;
  /** The drain's length (the scenario's drain). */
  drainMs: number;
  /** The proxies' longest remittance retry delay (the scenario's policy.remittance.retry.max). */
  retryMaxMs: number;
}

/**
 * Whether the test bed hosted the fleet, from each worker's endpoints that never got a link and, when given, from
 * how late the crashed processes were back for the drain.
 */
export function environmentOf(parts: ReadonlyArray<{ neverConnected: { count: number; ids: string[] } }>, restore?: RestoreTiming): EnvironmentReport {
  let count = 0;
  const ids: string[] = [];
  for (const { neverConnected } of parts) {
    count += neverConnected.count;
    for (const id of neverConnected.ids) if (ids.length < NEVER_CONNECTED_IDS_NAMED) ids.push(id);
  }
  const causes = count === 0 ? [] : [`${count} endpoint(s) never connected to the broker during the run (connections refused or never accepted): ${ids.join(', ')}${count > ids.length ? ', …' : ''}`];
  if (restore && !restore.drained) {
    const leftMs = Math.max(0, restore.drainEndMs - restore.restoredAtMs);
    const neededMs = Math.min(restore.retryMaxMs, restore.drainMs / 2);
    if (leftMs < neededMs) {
      causes.push(
        `the crashed broker and servers were all up again only at ${restore.restoredAtMs} ms of run time, ${leftMs} ms before the drain's end at ${restore.drainEndMs} ms — less than ${neededMs} ms (the longest remittance retry delay, at most half the drain): the test bed restarted them too slowly for the drain to be judged (see logs/coordinator.log)`,
      );
    }
  }
  return { ok: causes.length === 0, causes, neverConnected: { count, ids } };
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
