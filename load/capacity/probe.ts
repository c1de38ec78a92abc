// Goal: one probe of the capacity search — the scenario run in virtual mode at a given constant arrival rate
// and shard count, judged against the SLOs.
// Method: the scenario is copied with `population.shards` and a `constant-arrival-rate` arrival at the rate
// (orders per second; the scenario's own arrival section gives its window, its mix and its maxInFlight), the
// SLOs become its thresholds, and the copy goes through the scenario's cross-field checks again (a fault on a
// shard that no longer exists is refused before any probe runs). A probe passes when every threshold passes
// and no invariant broke: a run that loses money is over capacity whatever its latency.

import { checkScenario } from '../../sim/scenario/checks.ts';
import { formatPath, ScenarioError, type ScenarioProblem } from '../../sim/scenario/problems.ts';
import { thresholdProblem } from '../../sim/scenario/thresholds.ts';
import type { Arrival, Scenario } from '../../sim/scenario/types.ts';
import { runVirtual } from '../../sim/run/runVirtual.ts';
import type { RunSummary } from '../../sim/run/summary.ts';
import type { ProbeResult } from './search.ts';

/** The scenario of one probe; throws ScenarioError when the copy breaks a rule of the scenario format. */
export function probeScenario(base: Scenario, shards: number, ratePerSecond: number, slos: readonly string[]): Scenario {
  const scenario = structuredClone(base);
  scenario.population.shards = shards;
  const given = base.arrival;
  const window = given === null ? null : given.executor === 'constant-arrival-rate' ? given.durationMs : given.stages.reduce((sum, s) => sum + s.durationMs, 0);
  const arrival: Arrival = {
    executor: 'constant-arrival-rate',
    rate: ratePerSecond,
    timeUnitMs: 1000,
    durationMs: window,
    startTimeMs: given?.startTimeMs ?? 0,
    maxInFlight: given?.maxInFlight ?? 0,
    mix: given?.mix ?? [],
  };
  scenario.arrival = arrival;
  scenario.thresholds = [...slos];
  const problems: ScenarioProblem[] = [];
  checkScenario(scenario, (path, message) => problems.push({ file: `${base.name} with --shards ${shards}`, path: formatPath(path), message }));
  if (problems.length > 0) throw new ScenarioError(problems);
  return scenario;
}

/** Problems of the SLO expressions given on the command line, as a ScenarioError (exit 2). */
export function checkSlos(slos: readonly string[]): void {
  const problems: ScenarioProblem[] = [];
  slos.forEach((slo, i) => {
    const problem = thresholdProblem(slo);
    if (problem) problems.push({ file: '<command line>', path: `--slo #${i + 1} "${slo}"`, message: problem });
  });
  if (problems.length > 0) throw new ScenarioError(problems);
}

export function runProbe(base: Scenario, shards: number, ratePerSecond: number, slos: readonly string[]): ProbeResult & { summary: RunSummary } {
  const { summary } = runVirtual(probeScenario(base, shards, ratePerSecond, slos));
  const thresholds = summary.thresholds ?? [];
  const failed = thresholds.filter((t) => !t.pass).map((t) => t.expression);
  if (!summary.ok) failed.push(`violation: ${summary.violation?.invariant ?? summary.invariants.filter((i) => i.violations > 0).map((i) => i.id).join(', ')}`);
  const remoteSamples = summary.orders.byPath.remote ?? 0;
  const arrivalWindowS = (summary.arrival?.arrivals ?? 0) / ratePerSecond;
  return {
    rate: ratePerSecond,
    pass: failed.length === 0,
    failed,
    p99Ms: remoteSamples > 0 ? summary.latencyMs.remote.p99 : null,
    details: {
      issued: summary.arrival?.issued ?? null,
      dropped: summary.orders.dropped ?? 0,
      declinedRate: summary.orders.total === 0 ? 0 : summary.orders.declined / summary.orders.total,
      achievedPerSecond: arrivalWindowS > 0 ? (summary.arrival?.issued ?? 0) / arrivalWindowS : null,
      peakQueueDepth: Math.max(0, ...(summary.servers?.peakQueueDepth ?? [])),
      wallMs: summary.wallMs,
    },
    summary,
  };
}
