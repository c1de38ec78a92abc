// Goal: run a scenario in virtual mode and return what it found: the `RunSummary` and the time series, for the
// CLI to write into a run directory that `payfleet replay` can re-run.
// Method: build a Simulator, run it, and hand its metrics, run record, end-check figures and invariant book to
// the one summary builder (summary.ts) the mqtt mode uses too.

import { Simulator, type Progress } from './simulator.ts';
import type { Scenario } from '../scenario/types.ts';
import { buildSummary, type RunSummary } from './summary.ts';

export interface VirtualRunResult {
  summary: RunSummary;
  timeseriesCsv: string;
  simulator: Simulator;
}

/** A clock for wall time; display only (the run itself never reads it). */
function wallNow(): number {
  return performance.now();
}

export function runVirtual(scenario: Scenario, options: { file?: string; outDir?: string; onProgress?: (p: Progress) => void; hibernate?: boolean } = {}): VirtualRunResult {
  const started = wallNow();
  const simulator = new Simulator(scenario, { onProgress: options.onProgress, hibernate: options.hibernate });
  simulator.run();
  const wallMs = Math.round(wallNow() - started);
  const summary = summarize(simulator, wallMs, options.file, options.outDir);
  const timeseriesCsv = simulator.metrics.timeseriesCsv();
  return { summary, timeseriesCsv, simulator };
}

export function summarize(sim: Simulator, wallMs: number, file: string | undefined, outDir: string | undefined): RunSummary {
  const scenario = sim.scenario;
  const first = sim.book.violations[0];
  const arrival = sim.workload.arrival ? structuredClone(sim.workload.arrival) : null;
  return buildSummary({
    scenario,
    file,
    mode: 'virtual',
    simulatedMs: sim.scheduler.now(),
    wallMs,
    events: sim.scheduler.eventsRun,
    metrics: sim.metrics,
    record: sim.record,
    ledger: sim.endFigures,
    invariants: sim.book.summary(),
    sharedMeans: { ...sim.sharedMeans.figures },
    lossAccount: sim.lossAccount,
    firstViolation: first && { invariant: first.invariant, message: first.detail, timeMs: first.timeMs, recent: first.recent },
    droppedOrders: (arrival?.dropped ?? 0) + sim.workload.counters.notIssuedTerminalDown,
    network: { ...sim.network.counters },
    faults: { ...sim.nemesis.counters },
    workload: { ...sim.workload.counters, coverageChanges: sim.coverage.changes },
    arrival,
    servers: {
      serviceTimeMs: scenario.servers.serviceTimeMs,
      peakQueueDepth: [...sim.fleet.serverQueuePeak],
      ...(scenario.servers.calibration && { calibration: scenario.servers.calibration.file, batches: [...sim.fleet.serverBatches], busyMs: sim.fleet.serverBusyMs.map((ms) => Math.round(ms)) }),
    },
    traceHash: sim.trace.digest(),
    replay: outDir ? `payfleet replay ${outDir}` : `payfleet run ${file ?? '<scenario>'} --seed ${scenario.seed}`,
  });
}
