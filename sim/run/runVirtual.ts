// Goal: run a scenario in virtual mode and write what it found: `summary.json`, `timeseries.csv` and the
// report, into a run directory that `payfleet replay` can re-run.
// Method: build a Simulator, run it, assemble the summary from its metrics, ledgers and invariant book, and
// write every file through a temporary name and a rename, so an interrupted run never leaves half a file.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Simulator, type Progress } from './simulator.ts';
import type { Scenario } from '../scenario/types.ts';
import type { ArrivalStats } from '../core/workload.ts';
import { evaluateThresholds, type ThresholdResult } from '../scenario/thresholds.ts';

export const SUMMARY_VERSION = 1;

export interface RunSummary {
  version: number;
  scenario: Scenario & { file?: string };
  mode: 'virtual' | 'mqtt';
  seed: number;
  terminals: number;
  pos: number;
  shards: number;
  simulatedMs: number;
  wallMs: number;
  events: number;
  /** `dropped`: orders that could not be issued on time (open-model arrivals dropped, or a terminal down). */
  orders: { total: number; approved: number; declined: number; dropped?: number; byPath: Record<string, number>; declinedByReason: Record<string, number> };
  latencyMs: { local: { p50: number; p99: number; max: number }; remote: { p50: number; p99: number; max: number } };
  remittance: { transactions: number; batches: number; pendingAtEnd: number; lagMs: { p50: number; p99: number }; peakBacklogAmountMinor: number };
  ledger: { approvedAmountMinor: number; postedAmountMinor: number; lost: number; duplicated: number; unexpected: number; sumOfBalancesMinor: number };
  invariants: Array<{ id: string; name: string; checks: number; violations: number }>;
  violation?: { invariant: string; message: string; seed: number; timeMs: number; recent: Array<{ timeMs: number; actor: string; text: string }> };
  network: Record<string, number>;
  faults: Record<string, number>;
  workload: Record<string, number>;
  // The three below are optional so that a runner that does not fill them yet (mqtt mode) still type-checks.
  /** The open-model executor's figures; null when the scenario has no `arrival`. */
  arrival?: ArrivalStats | null;
  servers?: { serviceTimeMs: number; peakQueueDepth: number[] };
  /** Each scenario threshold, checked against this summary (k6's convention: a failure makes `run` exit 99). */
  thresholds?: ThresholdResult[];
  drainedAtMs: number | null;
  traceHash: string;
  ok: boolean;
  replay: string;
}

export interface VirtualRunResult {
  summary: RunSummary;
  timeseriesCsv: string;
  simulator: Simulator;
}

/** A clock for wall time; display only (the run itself never reads it). */
function wallNow(): number {
  return performance.now();
}

export function runVirtual(scenario: Scenario, options: { file?: string; outDir?: string; onProgress?: (p: Progress) => void } = {}): VirtualRunResult {
  const started = wallNow();
  const simulator = new Simulator(scenario, { onProgress: options.onProgress });
  simulator.run();
  const wallMs = Math.round(wallNow() - started);
  const summary = summarize(simulator, wallMs, options.file, options.outDir);
  const timeseriesCsv = simulator.metrics.timeseriesCsv();
  return { summary, timeseriesCsv, simulator };
}

export function summarize(sim: Simulator, wallMs: number, file: string | undefined, outDir: string | undefined): RunSummary {
  const scenario = sim.scenario;
  const parts = sim.metrics.summaryParts();
  const first = sim.book.violations[0];
  const ledgerFigures = sim.endFigures ?? { approvedAmountMinor: 0, postedAmountMinor: 0, lost: 0, duplicated: 0, unexpected: 0, sumOfBalancesMinor: 0 };
  const arrival = sim.workload.arrival ? structuredClone(sim.workload.arrival) : null;
  const dropped = (arrival?.dropped ?? 0) + sim.workload.counters.notIssuedTerminalDown;
  const summary: RunSummary = {
    version: SUMMARY_VERSION,
    scenario: { ...scenario, file },
    mode: 'virtual',
    seed: scenario.seed,
    terminals: scenario.population.terminals,
    pos: scenario.population.pos.units,
    shards: scenario.population.shards,
    simulatedMs: sim.scheduler.now(),
    wallMs,
    events: sim.scheduler.eventsRun,
    orders: { ...parts.orders, dropped },
    latencyMs: parts.latencyMs,
    remittance: { ...parts.remittance, pendingAtEnd: sim.backlog.count, peakBacklogAmountMinor: sim.backlog.peakAmountMinor },
    ledger: ledgerFigures,
    invariants: sim.book.summary(),
    violation: first && { invariant: first.invariant, message: first.detail, seed: first.seed, timeMs: first.timeMs, recent: first.recent },
    network: { ...sim.network.counters },
    faults: { ...sim.nemesis.counters },
    workload: { ...sim.workload.counters, coverageChanges: sim.coverage.changes },
    arrival,
    servers: { serviceTimeMs: scenario.servers.serviceTimeMs, peakQueueDepth: [...sim.fleet.serverQueuePeak] },
    thresholds: [],
    drainedAtMs: sim.drainedAtMs ?? null,
    traceHash: sim.trace.digest(),
    ok: sim.book.ok,
    replay: outDir ? `payfleet replay ${outDir}` : `payfleet run ${file ?? '<scenario>'} --seed ${scenario.seed}`,
  };
  summary.thresholds = evaluateThresholds(scenario.thresholds, summary);
  return summary;
}

/** True when every threshold of the summary passed (none stated: true). */
export function thresholdsPassed(summary: Pick<RunSummary, 'thresholds'>): boolean {
  return (summary.thresholds ?? []).every((t) => t.pass);
}

function writeAtomic(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/** Writes summary.json and timeseries.csv into `outDir` (created if needed). */
export function writeRunFiles(outDir: string, result: { summary: RunSummary; timeseriesCsv: string }): void {
  mkdirSync(outDir, { recursive: true });
  writeAtomic(join(outDir, 'timeseries.csv'), result.timeseriesCsv);
  writeAtomic(join(outDir, 'summary.json'), JSON.stringify(result.summary, null, 2) + '\n');
}
