// Goal: the virtual model of payment servers that share their host with their own test bed — the case of
// `payfleet capacity --compare` (and `--host co-located`), where the real run's broker, swarm workers, harness and
// server processes all run on this machine's cores — so the model bounds the rate where that host does, instead of
// costing the servers alone. The architect's default (servers on hosts of their own) does not use it.
// Method: an analytic host, applied to a virtual probe's scenario copy. The calibration's `testBed` gives the CPU
// each role of a real mqtt run spends, per remote order and per second whatever the rate (measured by `payfleet
// calibrate`); a process's demand at a rate is fixed + rate × per-order, in cores, shared evenly among the role's
// processes (server processes, swarm workers). Every process is one thread, so it can have one core at most, and
// less on a host that other work keeps busy: the cores are shared max-min fairly (as Linux shares them among
// runnable threads) between the other work's busy threads — counted from the share of a core an event loop of ours
// gets (sampleBackgroundThreads) — and the run's processes. A process needing more than it can have is
// saturated: the probe fails (its queue only grows; in a real run the arrivals fall behind or the latency climbs).
// Below, each of its CPU steps takes 1 / (share × (1 − utilisation)) times its CPU time (an M/G/1 queue served at
// that share), and the probe's copy of the scenario carries it: the servers' calibrated times, plus the servers'
// link CPU per request (what their processes spent beyond the calibrated work), divided by their share of a core
// (their own queueing is the model's group commit); each one-way message delayed by half an order's broker and
// swarm CPU times their slowdowns, as an exponential delay on the network latency (median + 0.69 δ, p99 + 4.6 δ).

import { QUANTILES, type Calibration, type RoleCpu, type TestBedCost } from '../../sim/scenario/calibration.ts';
import type { Scenario } from '../../sim/scenario/types.ts';
import { MAX_SERVER_PROCESSES } from '../../sim/mqtt/identities.ts';
import { defaultWorkerCount } from '../../sim/mqtt/workerPool.ts';

export interface HostModel {
  /** The host's cores (this machine's). */
  cores: number;
  /** Busy threads of other work on the host, as their share of the cores shows (0 on a quiet host). */
  backgroundThreads: number;
  /** The test bed's CPU, from the calibration. */
  testBed: TestBedCost;
}

/** One single-threaded process of the run, at a rate: what it needs and what it gets. */
export interface ProcessLoad {
  role: 'server' | 'broker' | 'swarm' | 'harness';
  /** How many processes of this role (each shown here: they are alike). */
  count: number;
  /** Cores one of them needs at this rate. */
  demandCores: number;
  /** The share of a core it can have: the fair level of the host, at most 1. */
  shareCores: number;
  /** demand / share. */
  utilisation: number;
  /** The stretch of its CPU steps: 1 / (share × (1 − utilisation)); ∞ when saturated. */
  slowdown: number;
}

export interface HostLoad {
  processes: ProcessLoad[];
  /** Cores the run needs at this rate, all its processes together. */
  demandCores: number;
  /** The most loaded process (the one that bounds the rate). */
  bottleneck: ProcessLoad;
  saturated: boolean;
}

const sumRoles = (r: RoleCpu) => r.servers + r.broker + r.swarm + r.harness;

/**
 * The fair level of a host of `cores` shared by `backgroundThreads` always-busy threads and processes with the
 * given demands (cores, ≤ 1 each — one thread): the L for which every claimant gets min(its demand, L) and the
 * cores are used up (max-min fairness, as Linux's scheduler shares cores among runnable threads of equal weight);
 * 1 when everyone is satisfied.
 */
export function fairLevel(cores: number, backgroundThreads: number, demands: readonly number[]): number {
  const used = (level: number) => backgroundThreads * Math.min(1, level) + demands.reduce((sum, d) => sum + Math.min(d, level), 0);
  if (used(1) <= cores) return 1;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (used(mid) > cores) hi = mid;
    else lo = mid;
  }
  return lo;
}

/** The host's load at a rate (orders/s) with `shards` shards and `terminals` terminals. */
export function hostLoad(host: HostModel, shards: number, terminals: number, ratePerSecond: number): HostLoad {
  const t = host.testBed;
  const serverProcesses = Math.min(shards, MAX_SERVER_PROCESSES);
  const workers = defaultWorkerCount(terminals);
  // Each role's CPU at this rate (ms/s): its fixed part (the swarm's grows with the terminals, the servers' with
  // their processes) plus its part per order; a role of several processes shares it evenly among them.
  const roleMsPerSecond = (role: keyof RoleCpu, scale: number) => t.fixedCpuMsPerSecond[role] * scale + ratePerSecond * t.cpuMsPerOrder[role];
  const roles: Array<{ role: ProcessLoad['role']; count: number; demandCores: number }> = [
    { role: 'server', count: serverProcesses, demandCores: roleMsPerSecond('servers', serverProcesses / Math.max(1, t.processes.servers)) / 1000 / serverProcesses },
    { role: 'broker', count: 1, demandCores: roleMsPerSecond('broker', 1) / 1000 },
    { role: 'swarm', count: workers, demandCores: roleMsPerSecond('swarm', terminals / t.terminals) / 1000 / workers },
    { role: 'harness', count: 1, demandCores: roleMsPerSecond('harness', 1) / 1000 },
  ];
  const demands = roles.flatMap((r) => Array.from({ length: r.count }, () => Math.min(1, r.demandCores)));
  const level = fairLevel(host.cores, host.backgroundThreads, demands);
  const processes = roles.map((r): ProcessLoad => {
    const shareCores = Math.min(1, level);
    const utilisation = r.demandCores / shareCores;
    return { ...r, demandCores: round3(r.demandCores), shareCores: round3(shareCores), utilisation: round3(utilisation), slowdown: utilisation >= 1 ? Infinity : round3(1 / (shareCores * (1 - utilisation))) };
  });
  const bottleneck = processes.reduce((a, b) => (b.utilisation > a.utilisation ? b : a));
  return { processes, demandCores: round3(roles.reduce((sum, r) => sum + r.demandCores * r.count, 0)), bottleneck, saturated: bottleneck.utilisation >= 1 };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Mean of a quantile table (µs), by the trapezoid rule over QUANTILES. */
export function quantileMean(table: readonly number[]): number {
  let mean = 0;
  for (let i = 1; i < QUANTILES.length; i++) mean += ((QUANTILES[i]! - QUANTILES[i - 1]!) * (table[i]! + table[i - 1]!)) / 2;
  return mean;
}

/** CPU ms per order the server processes spent beyond the calibrated work of a debit (their MQTT links, JSON). */
export function serverLinkMsPerOrder(calibration: Calibration, testBed: TestBedCost): number {
  const calibratedMs = (quantileMean(calibration.kinds.debit.quantilesUs) + calibration.groupCommit.batchOverheadUs) / 1000;
  return Math.max(0, testBed.cpuMsPerOrder.servers - calibratedMs);
}

/**
 * The probe's scenario on the loaded host: the servers' calibrated times (with their link CPU added per request)
 * stretched by their processes' share of a core — their own queue is the model's group commit —, and each one-way
 * message delayed by the broker's and the swarm's CPU for it, stretched by their slowdowns. A saturated process is
 * taken at 99 % utilisation, so the probe still runs (and fails on the host, said by the caller).
 */
export function colocatedScenario(scenario: Scenario, host: HostModel, load: HostLoad): Scenario {
  const calibrated = scenario.servers.calibration;
  if (!calibrated) return scenario;
  const of = (role: ProcessLoad['role']) => load.processes.find((p) => p.role === role)!;
  const slowdown = (p: ProcessLoad) => (Number.isFinite(p.slowdown) ? p.slowdown : 1 / (p.shareCores * 0.01));
  const copy = structuredClone(scenario);
  const calibration = copy.servers.calibration!.calibration;
  const linkUs = serverLinkMsPerOrder(calibrated.calibration, host.testBed) * 1000;
  const serverStretch = 1 / of('server').shareCores;
  for (const times of Object.values(calibration.kinds)) times.quantilesUs = times.quantilesUs.map((us) => (us + linkUs) * serverStretch);
  calibration.groupCommit.commitQuantilesUs = calibration.groupCommit.commitQuantilesUs.map((table) => table.map((us) => us * serverStretch));
  calibration.groupCommit.batchOverheadUs *= serverStretch;
  // Request and answer each cross the swarm and the broker: half an order's CPU of each per message.
  const perMessageMs = (host.testBed.cpuMsPerOrder.broker * slowdown(of('broker')) + host.testBed.cpuMsPerOrder.swarm * slowdown(of('swarm'))) / 2;
  copy.network.latency = { medianMs: copy.network.latency.medianMs + 0.69 * perMessageMs, p99Ms: copy.network.latency.p99Ms + 4.6 * perMessageMs };
  return copy;
}

/**
 * Busy threads of other work on this host, as a process like ours sees them: an event loop that wants 1 ms of CPU
 * every 1.25 ms (timers, bursts, sleeps between — as the broker, the servers and the swarm work) runs for `ms`,
 * and the share of a core it got (φ, process.cpuUsage over the wall time) is read. With fair sharing
 * φ = cores / (others + 1), so others = cores / φ − 1; 0 when it got what it wanted. A spinning thread would read
 * more: a process that sleeps waits for a core each time it wakes, and a loaded host makes it wait longer.
 */
export async function sampleBackgroundThreads(cores: number, ms = 1_500): Promise<number> {
  const workMs = 1;
  const periodMs = 1.25;
  const started = performance.now();
  const before = process.cpuUsage();
  for (let k = 0; performance.now() - started < ms; k++) {
    const waitMs = started + k * periodMs - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    const burst = performance.now();
    while (performance.now() - burst < workMs) {
      // Spinning on purpose: the burst of CPU an event of the run costs.
    }
  }
  const used = process.cpuUsage(before);
  const share = Math.min(1, (used.user + used.system) / 1000 / (performance.now() - started));
  if (share >= 0.95 * (workMs / periodMs)) return 0;
  return round3(Math.max(0, cores / Math.max(share, 0.01) - 1));
}

/** One line that says which model a figure comes from. */
export function describeHost(host: HostModel | undefined): string {
  if (!host) return 'servers on hosts of their own: the shards cost what the calibration measured, nothing else (dedicated SD hosts)';
  const t = host.testBed;
  return (
    `servers co-located with their test bed on ${host.cores} cores (other work: ${host.backgroundThreads} busy threads, from the share of a core an event loop of ours got when sampled): ` +
    `each remote order also costs the host ${sumRoles(t.cpuMsPerOrder).toFixed(2)} ms of CPU (servers ${t.cpuMsPerOrder.servers}, broker ${t.cpuMsPerOrder.broker}, swarm ${t.cpuMsPerOrder.swarm}, harness ${t.cpuMsPerOrder.harness}), ` +
    `plus ${sumRoles(t.fixedCpuMsPerSecond).toFixed(0)} ms/s whatever the rate (calibration testBed); every process of the run is one thread, so the busiest bounds the rate`
  );
}
