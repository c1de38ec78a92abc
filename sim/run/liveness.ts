// Goal: the liveness phase of a run, written once for both modes: what changes when the safety phase ends, when
// a fleet counts as drained, and what each journal still holds at the end.
// Method: plain functions over the parts a run is built from (`Fleet`, `Workload`, `Nemesis`, `CoverageModel` and
// the devices' network — the virtual `SimNetwork` or the mqtt worker's `Radio`), on the run's `TimeSource`, so
// the virtual scheduler and the worker's scaled real time run the very same drain. The drain state is kept in
// the run's `RunRecord`.

import { proxyStateOf, type Fleet } from '../core/fleet.ts';
import type { Workload } from '../core/workload.ts';
import type { Nemesis } from '../core/nemesis.ts';
import type { CoverageModel } from '../core/coverage.ts';
import type { NetworkOptions } from '../core/network.ts';
import type { TimeSource } from '../core/timeSource.ts';
import { isDrained } from '../../machines/domain/remittance.ts';
import { EMPTY_JOURNAL, type PosEnd, type TerminalEnd } from '../check/inv7Liveness.ts';
import type { RunRecord } from './runRecord.ts';

/** How often (run time) the liveness phase looks whether everything has drained. */
export const DRAIN_POLL_MS = 5_000;

export interface LivenessParts {
  time: TimeSource;
  fleet: Fleet;
  workload: Workload;
  nemesis: Nemesis;
  coverage: CoverageModel;
  /** The devices' network; it is made clean (latency stays) so every backlog can drain. */
  network: { setOptions(patch: Partial<NetworkOptions>): void };
  record: RunRecord;
}

/**
 * Ends the safety phase: no more orders or faults, a clean network, every terminal back in coverage with its
 * clock right and its backlog pushed; then polls until the fleet is drained, sets `record.drainedAtMs` and calls
 * `onDrained` once.
 */
export function beginLiveness(parts: LivenessParts, onDrained: () => void = () => undefined): void {
  parts.record.phase = 'liveness';
  parts.workload.stop();
  parts.nemesis.stop();
  parts.network.setOptions({ lossProbability: 0, duplicateProbability: 0, reorderProbability: 0 });
  parts.coverage.restoreAll();
  for (const slot of parts.fleet.terminals) slot.skewMs = 0;
  // Anything still waiting on a backoff timer gets a nudge: coverage is back for every terminal.
  for (const slot of parts.fleet.terminals) parts.fleet.requestRemittance(slot);
  pollDrain(parts, onDrained);
}

function pollDrain(parts: LivenessParts, onDrained: () => void): void {
  if (parts.record.drainedAtMs !== undefined) return;
  if (isFleetDrained(parts.fleet, parts.workload)) {
    parts.record.drainedAtMs = parts.time.now();
    onDrained();
    return;
  }
  // An order that was waiting for its user when the drain began is approved after the first nudge.
  parts.fleet.nudgePendingRemittances();
  parts.time.schedule(DRAIN_POLL_MS, () => pollDrain(parts, onDrained));
}

/** [INV-7 liveness] every terminal up with an empty journal, every POS settled, no order still being decided. */
export function isFleetDrained(fleet: Fleet, workload: Pick<Workload, 'hasOrdersInFlight'>): boolean {
  // An order still being decided (a remote payment on its way back) is not drained either.
  if (workload.hasOrdersInFlight()) return false;
  for (const slot of fleet.terminals) {
    if (!slot.up) return false;
    const state = proxyStateOf(slot);
    if (state && !isDrained(state.journal)) return false;
  }
  for (const pos of fleet.pos.values()) if (pos.getSnapshot().context.unsettled.length > 0) return false;
  return true;
}

export interface JournalsAtEnd {
  /** Each terminal: alive or still down, and what its proxy's journal still holds. */
  terminals: TerminalEnd[];
  /** Each POS unit and its receipts not yet settled. */
  pos: PosEnd[];
  /** App orders still waiting for their answer at a terminal that is up. */
  unansweredOrders: string[];
}

/** What every journal of the fleet still holds: the end checks' [INV-7] input (sim/check/inv7Liveness.ts). */
export function journalsAtEnd(fleet: Fleet, workload: Pick<Workload, 'ordersInFlight'>): JournalsAtEnd {
  return {
    unansweredOrders: workload.ordersInFlight(),
    terminals: fleet.terminals.map((slot) => {
      const state = proxyStateOf(slot);
      // Only the two queues are kept: a worker sends this in its final message, and the proxy's journal holds more.
      return {
        terminalId: slot.plan.terminalId,
        up: slot.up,
        journal: state ? { pending: state.journal.pending, outbox: state.journal.outbox } : EMPTY_JOURNAL,
        ...(state?.remoteInFlight ? { remoteInFlight: state.remoteInFlight.txId } : {}),
      };
    }),
    pos: [...fleet.pos].map(([posId, pos]) => {
      const { unsettled } = pos.getSnapshot().context;
      return { posId, unsettled: unsettled.length, unsettledTxIds: unsettled.map((proof) => proof.txId) };
    }),
  };
}
