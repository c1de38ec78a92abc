// Goal: `summary.json` — the one `RunSummary` shape both modes write, one builder that assembles it from what a
// run kept, and writing the run's files.
// Method: `buildSummary` takes the figures every run has (its metrics, its run record, its end-check figures, its
// invariant counts) plus the few that only the runner knows (events, network and fault counters, how to replay);
// the scenario's thresholds are evaluated on the finished summary. Files are written through a temporary name and
// a rename, so an interrupted run never leaves half a file.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from '../scenario/types.ts';
import type { ArrivalStats } from '../core/workload.ts';
import { evaluateThresholds, type ThresholdResult } from '../scenario/thresholds.ts';
import type { InvariantCount } from '../check/invariantBook.ts';
import type { LedgerFigures } from '../check/endChecks.ts';
import type { LossAccountFigures, SharedMeansFigures } from '../check/lossAccount.ts';
import type { Metrics } from './metrics.ts';
import type { RunRecord } from './runRecord.ts';
import { splitDeclines, type DeclineSplit } from './declines.ts';

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
  /** `failures`: the declines split into business declines and system failures (declines.ts). */
  orders: { total: number; approved: number; declined: number; dropped?: number; byPath: Record<string, number>; declinedByReason: Record<string, number>; failures?: DeclineSplit };
  latencyMs: { local: { p50: number; p99: number; max: number }; remote: { p50: number; p99: number; max: number } };
  remittance: { transactions: number; batches: number; pendingAtEnd: number; lagMs: { p50: number; p99: number }; peakBacklogAmountMinor: number };
  /** `lost`: approved and in no journal or ledger; `heldInJournals`: approved, on no ledger, still in a journal (pending). */
  ledger: { approvedAmountMinor: number; postedAmountMinor: number; lost: number; heldInJournals: number; duplicated: number; unexpected: number; sumOfBalancesMinor: number; topUps?: { count: number; amountMinor: number } };
  invariants: Array<{ id: string; name: string; checks: number; violations: number }>;
  /** Means shared by several terminals (family wallets): how many, and the payments made on them locally and offline. */
  sharedMeans?: SharedMeansFigures;
  /** What SD's loss account paid beneficiaries for payments their means could not cover, by cause and by means. */
  lossAccount?: LossAccountFigures;
  violation?: { invariant: string; message: string; seed: number; timeMs: number; recent: Array<{ timeMs: number; actor: string; text: string }> };
  network: Record<string, number>;
  faults: Record<string, number>;
  workload: Record<string, number>;
  /** The open-model executor's figures; null when the scenario has no `arrival`. */
  arrival?: ArrivalStats | null;
  /** Virtual mode only: the simulated servers' service time and queue peaks. */
  servers?: { serviceTimeMs: number; peakQueueDepth: number[]; calibration?: string; batches?: number[]; busyMs?: number[] };
  /** Each scenario threshold, checked against this summary (k6's convention: a failure makes `run` exit 99). */
  thresholds?: ThresholdResult[];
  drainedAtMs: number | null;
  /** Mqtt mode only: whether the test bed could host the fleet (every endpoint connected at least once). */
  environment?: EnvironmentReport;
  /** Mqtt mode over agents only: each agent, what it held and its peak RSS (sim/mqtt/agentFleet.ts). */
  agents?: AgentSummary[];
  traceHash: string;
  ok: boolean;
  replay: string;
}

/** One agent of an mqtt run spread over hosts. */
export interface AgentSummary {
  name: string;
  host: string;
  /** The address its connection came from. */
  address: string;
  capacity: number;
  terminals: number;
  workers: number[];
  servers: string[];
  /** Sum of its children's peak RSS (VmHWM) and its own; null when it could not say (lost). */
  peakRssBytes: number | null;
}

/** Whether the test bed hosted the fleet: when not, the causes and the endpoints that never got a link. */
export interface EnvironmentReport {
  ok: boolean;
  causes: string[];
  /** Endpoints (terminal and POS ids) whose link never came up during the run: how many, and the first few. */
  neverConnected: { count: number; ids: string[] };
}

/** The first violation of a run, as the summary shows it. */
export interface FirstViolation {
  invariant: string;
  message: string;
  timeMs: number;
  recent: Array<{ timeMs: number; actor: string; text: string }>;
}

export interface SummaryInput {
  scenario: Scenario;
  file: string | undefined;
  mode: RunSummary['mode'];
  simulatedMs: number;
  wallMs: number;
  events: number;
  metrics: Metrics;
  record: RunRecord;
  /** Set by the end checks; absent when the run stopped before them. */
  ledger: LedgerFigures | undefined;
  invariants: InvariantCount[];
  sharedMeans?: SharedMeansFigures;
  lossAccount?: LossAccountFigures;
  firstViolation: FirstViolation | undefined;
  /** Orders that could not be issued on time. */
  droppedOrders: number;
  network: Record<string, number>;
  faults: Record<string, number>;
  workload: Record<string, number>;
  arrival: ArrivalStats | null;
  servers?: RunSummary['servers'];
  environment?: EnvironmentReport;
  traceHash: string;
  replay: string;
}

const NO_LEDGER_FIGURES: LedgerFigures = { approvedAmountMinor: 0, postedAmountMinor: 0, lost: 0, heldInJournals: 0, duplicated: 0, unexpected: 0, sumOfBalancesMinor: 0 };

export function buildSummary(input: SummaryInput): RunSummary {
  const { scenario, record } = input;
  const parts = input.metrics.summaryParts();
  const first = input.firstViolation;
  const backlog = record.backlog;
  const summary: RunSummary = {
    version: SUMMARY_VERSION,
    scenario: { ...scenario, file: input.file },
    mode: input.mode,
    seed: scenario.seed,
    terminals: scenario.population.terminals,
    pos: scenario.population.pos.units,
    shards: scenario.population.shards,
    simulatedMs: input.simulatedMs,
    wallMs: input.wallMs,
    events: input.events,
    orders: { ...parts.orders, dropped: input.droppedOrders, failures: splitDeclines(parts.orders.declinedByReason, parts.orders.total) },
    latencyMs: parts.latencyMs,
    remittance: { ...parts.remittance, pendingAtEnd: backlog.count, peakBacklogAmountMinor: backlog.peakAmountMinor },
    ledger: input.ledger ?? NO_LEDGER_FIGURES,
    invariants: input.invariants,
    ...(input.sharedMeans ? { sharedMeans: input.sharedMeans } : {}),
    ...(input.lossAccount ? { lossAccount: input.lossAccount } : {}),
    violation: first && { invariant: first.invariant, message: first.message, seed: scenario.seed, timeMs: first.timeMs, recent: first.recent },
    network: input.network,
    faults: input.faults,
    workload: input.workload,
    arrival: input.arrival,
    servers: input.servers,
    thresholds: [],
    drainedAtMs: record.drainedAtMs ?? null,
    ...(input.environment ? { environment: input.environment } : {}),
    traceHash: input.traceHash,
    ok: input.invariants.every((i) => i.violations === 0),
    replay: input.replay,
  };
  summary.thresholds = evaluateThresholds(scenario.thresholds, summary);
  return summary;
}

export type Verdict = 'OK' | 'VIOLATION' | 'ENVIRONMENT';

/**
 * The run's verdict. A test bed that could not host the fleet (an endpoint never connected) makes the run say
 * ENVIRONMENT — the system was not tested, not found wrong — unless a safety invariant (anything but INV-7, which
 * a never-connected terminal's journal is bound to trip) was violated: a real violation always wins.
 */
export function verdictOf(summary: Pick<RunSummary, 'ok'> & Partial<Pick<RunSummary, 'invariants' | 'environment' | 'ledger'>>): Verdict {
  if (summary.environment && !summary.environment.ok) {
    const safetyViolated = (summary.invariants ?? []).some((i) => i.id !== 'INV-7' && i.violations > 0) || (summary.ledger?.lost ?? 0) > 0;
    if (!safetyViolated) return 'ENVIRONMENT';
  }
  return summary.ok ? 'OK' : 'VIOLATION';
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
