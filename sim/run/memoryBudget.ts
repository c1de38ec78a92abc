// Goal: refuse, before anything is built, a virtual run whose fleet cannot fit in this process's heap — instead of
// building for minutes and dying with V8's "JavaScript heap out of memory" and a native stack (exit 134).
// Method: an estimate of the run's peak live heap from figures measured on this code base — live heap per terminal
// of a built and running fleet, live heap per order the run keeps — plus headroom for the garbage collector,
// compared with V8's heap limit. The figures are measurements, not guarantees, so the check refuses only what is
// clearly out of reach and names the numbers, the limit, and the NODE_OPTIONS that would make the run fit.

import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { Scenario } from '../scenario/types.ts';

/**
 * Measured 2026-12-02 on city-day without its outage (crypto sim), live heap after a full GC sampled during the run:
 * 2,000 terminals × 2 h → 66.5 MiB with 953 orders; 2,000 × 12 h → 84.0 MiB with 5,947 orders; 6,000 × 2 h → 135.5 MiB
 * with 3,020 orders. Differences: ≈ 3.6 KiB per order kept (oracle record, journal and ledger entries, metrics) and
 * ≈ 15.8 KiB per terminal (its actors, means, keys, POS share); ≈ 10 MiB for the process itself.
 */
/**
 * Idle terminals hibernate (sim/core/hibernation.ts): a built city-day fleet of 20,000 measured 5.9 KiB of live heap
 * per terminal (6.5 KiB after 10 simulated minutes), against 16.5 KiB with every terminal awake (`--no-hibernate`,
 * LIVE_BYTES_PER_AWAKE_TERMINAL); on city-day about 1 % of the terminals are awake at a time (`npm run bench`).
 */
export const LIVE_BYTES_PER_TERMINAL = 7 * 1024;
export const LIVE_BYTES_PER_AWAKE_TERMINAL = 16 * 1024;
export const LIVE_BYTES_PER_ORDER = 3.6 * 1024;
export const LIVE_BYTES_BASE = 64 * 1024 * 1024;
/** V8 collects too often and then fails well before live data reaches the limit; keep this much room. */
export const GC_HEADROOM = 1.2;

const HOUR_MS = 3_600_000;

/** The orders a run is expected to issue: the open-model arrivals if the scenario has them, else every terminal's own rates. */
export function expectedOrders(scenario: Scenario): number {
  const arrival = scenario.arrival;
  if (arrival) {
    if (arrival.executor === 'constant-arrival-rate') {
      const lastingMs = Math.min(arrival.durationMs ?? scenario.durationMs, Math.max(0, scenario.durationMs - arrival.startTimeMs));
      return (arrival.rate * lastingMs) / arrival.timeUnitMs;
    }
    // Ramping: each stage moves linearly from the previous target to its own, so its orders are the trapezium's area.
    let rate = arrival.startRate;
    let orders = 0;
    for (const stage of arrival.stages) {
      orders += (((rate + stage.target) / 2) * stage.durationMs) / arrival.timeUnitMs;
      rate = stage.target;
    }
    return orders;
  }
  const p = scenario.population;
  const perTerminalPerHour = p.apps.reduce((sum, app) => sum + app.ordersPerHour, 0) + (p.pos.units > 0 ? p.pos.visitsPerTerminalPerHour : 0);
  return p.terminals * perTerminalPerHour * (scenario.durationMs / HOUR_MS);
}

export interface MemoryEstimate {
  terminals: number;
  /** Live heap counted per terminal: hibernating (the default) or all awake. */
  bytesPerTerminal: number;
  orders: number;
  /** Estimated peak live heap, GC headroom included. */
  neededBytes: number;
  heapLimitBytes: number;
  machineBytes: number;
  fits: boolean;
}

export function estimateVirtualRun(scenario: Scenario, heapLimitBytes = getHeapStatistics().heap_size_limit, machineBytes = totalmem(), bytesPerTerminal = LIVE_BYTES_PER_TERMINAL): MemoryEstimate {
  const terminals = scenario.population.terminals + scenario.population.pos.units;
  const orders = expectedOrders(scenario);
  const live = LIVE_BYTES_BASE + terminals * bytesPerTerminal + orders * LIVE_BYTES_PER_ORDER;
  const neededBytes = Math.ceil(live * GC_HEADROOM);
  return { terminals, bytesPerTerminal, orders, neededBytes, heapLimitBytes, machineBytes, fits: neededBytes <= heapLimitBytes };
}

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Why the run cannot fit and what would make it fit, or undefined when it fits. */
export function memoryRefusal(estimate: MemoryEstimate): string | undefined {
  if (estimate.fits) return undefined;
  const need = `${(estimate.neededBytes / GIB).toFixed(1)} GiB`;
  const lines = [
    `this run needs about ${need} of heap (${Math.round(estimate.terminals).toLocaleString('en')} terminals and POS units × ${estimate.bytesPerTerminal / 1024} KiB, ` +
      `${Math.round(estimate.orders).toLocaleString('en')} expected orders × ${LIVE_BYTES_PER_ORDER / 1024} KiB, ×${GC_HEADROOM} for the garbage collector), ` +
      `and this process may use ${(estimate.heapLimitBytes / GIB).toFixed(1)} GiB (V8's heap limit).`,
  ];
  const neededMiB = Math.ceil(estimate.neededBytes / MIB / 256) * 256;
  if (estimate.neededBytes < estimate.machineBytes * 0.85) {
    lines.push(`Raise the limit: NODE_OPTIONS=--max-old-space-size=${neededMiB} payfleet run …, or run fewer terminals (--terminals) or a shorter --duration.`);
  } else {
    lines.push(`This machine has ${(estimate.machineBytes / GIB).toFixed(1)} GiB of memory in all, so it cannot hold the run: run fewer terminals (--terminals) or a shorter --duration.`);
  }
  return lines.join('\n');
}
