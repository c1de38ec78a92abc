// Goal: one probe of the capacity search — the scenario run in virtual mode at a given constant arrival rate and
// shard count, for a bounded time, judged against the SLOs and against failure: system failures above a bound,
// a remittance lag above a bound, a backlog that does not drain, a broken invariant.
// Method: the scenario is copied with `population.shards` and a `constant-arrival-rate` arrival at the rate (orders
// per second) that starts after a warm-up (the terminals' start-up syncs) and lasts the probe window; the run's
// duration becomes warm-up + window, its drain at most the drain bound (+1 s), and the faults and outages that would start after it are left out (a probe
// measures the steady peak, and says how many it left out). The scenario's own arrival section gives its mix and
// maxInFlight. The terminals are kept funded by top-ups (money entering from outside, machines/domain/ledgerTopUps.ts):
// a means profile keeps its own top-up agreement, and one without gets one sized from the probe's spending
// (`probeTopUp`), so business declines (no funds) do not stand in for capacity, and the servers do the top-ups' work
// as they would in service; opening balances, ceilings and the offline policy stay as the scenario says, and the
// share of business declines and the top-ups posted are reported. Probes may sign with `sim` (default): the server
// cost comes from the calibration measured with the scenario's crypto, so only the simulator's wall time changes.
// The SLOs become its thresholds, with `system.rate` and the remittance lag bound added, and the copy goes through
// the scenario's cross-field checks again (a fault on a shard that no longer exists is refused before any probe).
// With a host model (hostModel.ts) the probe is of servers co-located with their test bed on this machine.

import { checkScenario } from '../../sim/scenario/checks.ts';
import { formatPath, ScenarioError, type ScenarioProblem } from '../../sim/scenario/problems.ts';
import { thresholdProblem } from '../../sim/scenario/thresholds.ts';
import type { AmountDistribution, Arrival, Scenario, TopUpRule } from '../../sim/scenario/types.ts';
import { runVirtual } from '../../sim/run/runVirtual.ts';
import type { RunSummary } from '../../sim/run/summary.ts';
import type { ProbeResult } from './search.ts';
import { colocatedScenario, hostLoad, type HostModel } from './hostModel.ts';

export interface ProbeOptions {
  /** Time before the arrivals start (ms): the terminals' start-up syncs are served. */
  warmUpMs: number;
  /** How long the arrivals last (ms). */
  windowMs: number;
  /** A probe fails when system failures exceed this share of the orders. */
  maxSystemFailureRate: number;
  /** A probe fails when the remittance lag p99 exceeds this (ms). */
  maxLagMs: number;
  /** A probe fails when the backlog takes longer than this to drain after the arrivals end (ms). */
  maxDrainMs: number;
  /** Keep the terminals funded for the probe's orders. */
  fund: boolean;
  /** The probes' signatures ('scenario': the scenario's own). */
  crypto: 'sim' | 'scenario';
}

export const DEFAULT_PROBE: ProbeOptions = { warmUpMs: 5_000, windowMs: 10_000, maxSystemFailureRate: 0.01, maxLagMs: 3_600_000, maxDrainMs: 60_000, fund: true, crypto: 'sim' };

/** The SLOs a probe is judged by: the user's, then the failure bounds. */
export function probeSlos(slos: readonly string[], o: ProbeOptions): string[] {
  return [...slos, `system.rate <= ${trimNumber(o.maxSystemFailureRate * 100)}%`, `remittance.lagMs.p99 <= ${o.maxLagMs}`];
}

function trimNumber(x: number): string {
  return String(Number(x.toPrecision(6)));
}

/** The largest amount an order of the scenario draws but rarely (a log-normal's: its p99). */
function largeAmountMinor(amount: AmountDistribution): number {
  switch (amount.kind) {
    case 'fixed':
      return amount.amountMinor;
    case 'uniform':
      return amount.maxMinor;
    case 'lognormal':
      return amount.p99Minor;
  }
}

/**
 * The top-up agreement a probe gives a means profile that has none: top up when less than two large orders'
 * money is left (the next order, and one more on its way from another point of issue), by the money one terminal
 * could spend in the probe (its orders, plus one, each at a large amount) to twice that, uniformly — so a means
 * drops below the threshold about once a probe, and the top-ups cost the servers a share of the orders' work, not
 * one per order.
 */
export function probeTopUp(scenario: Scenario, ratePerSecond: number, windowMs: number): TopUpRule {
  const ordersPerTerminal = (ratePerSecond * windowMs) / 1000 / scenario.population.terminals;
  const amounts = [...scenario.population.apps.map((a) => a.amount), ...(scenario.population.pos.units > 0 ? [scenario.population.pos.amount] : [])];
  const large = Math.max(1, ...amounts.map(largeAmountMinor));
  const spendMinor = Math.ceil(ordersPerTerminal + 1) * large;
  return { belowMinor: 2 * large, amount: { kind: 'uniform', minMinor: spendMinor, maxMinor: 2 * spendMinor } };
}

/** The scenario of one probe; throws ScenarioError when the copy breaks a rule of the scenario format. */
export function probeScenario(base: Scenario, shards: number, ratePerSecond: number, slos: readonly string[], o: ProbeOptions = DEFAULT_PROBE): Scenario {
  const scenario = structuredClone(base);
  scenario.population.shards = shards;
  scenario.durationMs = o.warmUpMs + o.windowMs;
  // A backlog still there after maxDrainMs fails the probe whatever happens next: simulating the rest of the
  // scenario's drain (minutes of retries at a saturated rate) would only cost wall time.
  scenario.drainMs = Math.min(scenario.drainMs, o.maxDrainMs + 1_000);
  scenario.coverage.outages = scenario.coverage.outages.filter((outage) => outage.atMs < scenario.durationMs);
  scenario.faults = scenario.faults.filter((fault) => fault.atMs < scenario.durationMs);
  const given = base.arrival;
  const arrival: Arrival = {
    executor: 'constant-arrival-rate',
    rate: ratePerSecond,
    timeUnitMs: 1000,
    durationMs: o.windowMs,
    startTimeMs: o.warmUpMs,
    maxInFlight: given?.maxInFlight ?? 0,
    mix: given?.mix ?? [],
  };
  scenario.arrival = arrival;
  if (o.fund) {
    // The scenario's own agreement wins: it says how this means is funded in service.
    const topUp = probeTopUp(base, ratePerSecond, o.windowMs);
    for (const means of scenario.population.means) means.topUp ??= structuredClone(topUp);
  }
  if (o.crypto === 'sim') scenario.crypto = 'sim';
  scenario.thresholds = probeSlos(slos, o);
  const problems: ScenarioProblem[] = [];
  checkScenario(scenario, (path, message) => problems.push({ file: `${base.name} with --shards ${shards}`, path: formatPath(path), message }));
  if (problems.length > 0) throw new ScenarioError(problems);
  return scenario;
}

/** What a probe leaves out of the scenario (said once at the start of a search). */
export function leftOut(base: Scenario, o: ProbeOptions): string[] {
  const endMs = o.warmUpMs + o.windowMs;
  const outages = base.coverage.outages.filter((outage) => outage.atMs >= endMs).length;
  const faults = base.faults.filter((fault) => fault.atMs >= endMs).length;
  return [...(outages > 0 ? [`${outages} outage(s)`] : []), ...(faults > 0 ? [`${faults} fault(s)`] : [])];
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

/**
 * One virtual probe. With a host model (servers co-located with their test bed, hostModel.ts) the probe's servers
 * and messages are slowed by the host's load at this rate, and a saturated host fails the probe.
 */
export function runProbe(base: Scenario, shards: number, ratePerSecond: number, slos: readonly string[], o: ProbeOptions = DEFAULT_PROBE, host?: HostModel): ProbeResult & { summary: RunSummary } {
  let scenario = probeScenario(base, shards, ratePerSecond, slos, o);
  const load = host && hostLoad(host, shards, scenario.population.terminals, ratePerSecond);
  if (host && load) scenario = colocatedScenario(scenario, host, load);
  const { summary } = runVirtual(scenario);
  const result = judgeProbe(summary, ratePerSecond, o);
  if (load) {
    if (load.saturated) {
      const b = load.bottleneck;
      result.failed.push(`host CPU saturated: a ${b.role} process needs ${b.demandCores} of a core, it can have ${b.shareCores}`);
      result.pass = false;
    }
    result.details = { ...result.details, hostDemandCores: load.demandCores, hostBottleneck: load.bottleneck.role, hostBottleneckUtilisation: load.bottleneck.utilisation, hostShareCores: load.bottleneck.shareCores };
  }
  return result;
}

/** A probe's verdict from its run's summary: thresholds, invariants, and the backlog's drain. */
export function judgeProbe(summary: RunSummary, ratePerSecond: number, o: ProbeOptions): ProbeResult & { summary: RunSummary } {
  const thresholds = summary.thresholds ?? [];
  const failed = thresholds.filter((t) => !t.pass).map((t) => t.expression);
  const drainMs = summary.drainedAtMs === null ? null : summary.drainedAtMs - summary.scenario.durationMs;
  if (drainMs === null) failed.push('backlog did not drain');
  else if (drainMs > o.maxDrainMs) failed.push(`backlog took ${(drainMs / 1000).toFixed(1)} s to drain (> ${o.maxDrainMs / 1000} s)`);
  // Little's law: orders waiting at the terminals (the proxies take one at a time) show as orders in flight; more
  // than the rate × the remote timeout means an order waits longer than a payment may take.
  const peakInFlight = summary.arrival?.peakInFlight ?? 0;
  const inFlightBound = Math.ceil(ratePerSecond * (summary.scenario.policy.remoteTimeoutMs / 1000));
  if (peakInFlight > inFlightBound) failed.push(`orders queued at the terminals: ${peakInFlight} in flight at the peak (> rate × remote timeout = ${inFlightBound})`);
  // A shard busy longer than the window could not keep up with the arrivals: its queue only grows (ρ > 1), so the
  // rate is not sustainable, however the short probe's latency looks.
  const busyShare = serverBusyShare(summary, o);
  if (busyShare !== null && busyShare > 1) failed.push(`servers saturated: the busiest shard was busy ${(busyShare * 100).toFixed(0)} % of the window`);
  // The arrivals themselves: a real run's load generator (the swarm workers) falls behind when its process cannot
  // get the CPU, and then the rate probed was never offered (virtual arrivals are exact).
  const expected = Math.floor((ratePerSecond * o.windowMs) / 1000);
  const arrived = summary.arrival?.arrivals ?? expected;
  if (arrived < 0.95 * expected) failed.push(`arrivals fell behind: ${arrived} of the ${expected} due in the window (the load generator could not keep the rate)`);
  const violated = summary.invariants.filter((i) => i.violations > 0).map((i) => i.id);
  if (!summary.ok && (summary.violation || violated.length > 0)) failed.push(`violation: ${summary.violation?.invariant ?? violated.join(', ')}`);
  const remoteSamples = summary.orders.byPath.remote ?? 0;
  const issued = summary.arrival?.issued ?? 0;
  const failures = summary.orders.failures;
  return {
    rate: ratePerSecond,
    pass: failed.length === 0,
    failed,
    p99Ms: remoteSamples > 0 ? summary.latencyMs.remote.p99 : null,
    details: {
      issued,
      achievedPerSecond: o.windowMs > 0 ? Math.round((issued / (o.windowMs / 1000)) * 100) / 100 : null,
      dropped: summary.orders.dropped ?? 0,
      p50Ms: remoteSamples > 0 ? summary.latencyMs.remote.p50 : null,
      systemFailureRate: failures?.systemRate ?? null,
      businessDeclineRate: failures?.businessRate ?? null,
      declinedRate: summary.orders.total === 0 ? 0 : summary.orders.declined / summary.orders.total,
      lagP99Ms: summary.remittance.lagMs.p99,
      drainMs,
      peakQueueDepth: Math.max(0, ...(summary.servers?.peakQueueDepth ?? [])),
      peakInFlight,
      serverBusyShare: busyShare,
      // Money that entered from outside: the top-ups the servers posted (warm-up included), and their share of the orders.
      topUps: summary.ledger.topUps?.count ?? 0,
      topUpShare: issued === 0 ? null : Math.round(((summary.ledger.topUps?.count ?? 0) / issued) * 10_000) / 10_000,
      wallMs: summary.wallMs,
    },
    summary,
  };
}

/**
 * The busiest shard's serving time over the probe window, when calibrated: near 1 the shard was busy all the
 * window (the warm-up's syncs count too, so a little is not arrivals); above 1 it was still serving after the
 * arrivals stopped.
 */
function serverBusyShare(summary: RunSummary, o: ProbeOptions): number | null {
  const busy = summary.servers?.busyMs;
  if (!busy || busy.length === 0 || o.windowMs <= 0) return null;
  return Math.round((Math.max(...busy) / o.windowMs) * 1000) / 1000;
}
