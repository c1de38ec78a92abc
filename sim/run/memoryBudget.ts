// Goal: refuse, before anything is built, a virtual run whose fleet cannot fit in this process's heap — instead of
// building for minutes and dying with V8's "JavaScript heap out of memory" and a native stack (exit 134).
// Method: an estimate of the run's peak live heap from figures measured on this code base — live heap per terminal
// of a built and running fleet, live heap per order the run keeps — plus headroom for the garbage collector,
// compared with V8's heap limit. The figures are measurements, not guarantees, so the check refuses only what is
// clearly out of reach and names the numbers, the limit, and the NODE_OPTIONS that would make the run fit.

import { totalmem } from 'node:os';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { Scenario } from '../scenario/types.ts';

/**
 * Measured 2026-12-02 on city-day without its outage (crypto sim), live heap after a full GC sampled every simulated
 * 30 minutes during the run (the peak of those samples): 2,000 terminals × 2 h → 64.7 MiB with 953 orders; 2,000 × 12 h
 * → 76.0 MiB with 5,947 orders; 6,000 × 2 h → 132.2 MiB with 3,020 orders (load average 13–15 on 2 cores; the figures
 * are heap, not time, so the load does not move them), before terminals hibernated. Differences: ≈ 2.3 KiB per order
 * kept and ≈ 16.1 KiB per awake terminal (its actors, means, keys, POS share). Of the 2.3 KiB per order, heap snapshots at 2 h and 12 h put
 * ≈ 1.6 KiB in the payment servers' ledgers (SD's own record: the answer stored per request, about two requests per
 * order, its posting and transfers, the counter it used), ≈ 0.5 KiB in the proofs the apps, the POS units and the
 * run record hold, ≈ 0.2 KiB in the checks' own records (the approvals INV-4 and INV-5 read at the end, who
 * first posted each transaction) and ≈ 0.15 KiB in the terminals' receipts (at most 8 each, so not for ever).
 * Before the ledger store kept its answers and transfers as flat JSON text and its records without a hidden class
 * each, it was ≈ 3.6 KiB per order.
 */
/**
 * Idle terminals hibernate (sim/core/hibernation.ts): a built city-day fleet of 20,000 measured 5.9 KiB of live heap
 * per terminal (6.5 KiB after 10 simulated minutes), against 16.5 KiB with every terminal awake (`--no-hibernate`,
 * LIVE_BYTES_PER_AWAKE_TERMINAL); on city-day about 1 % of the terminals are awake at a time (`npm run bench`).
 */
export const LIVE_BYTES_PER_TERMINAL = 7 * 1024;
export const LIVE_BYTES_PER_AWAKE_TERMINAL = 16 * 1024;
export const LIVE_BYTES_PER_ORDER = 2.4 * 1024;
export const LIVE_BYTES_BASE = 64 * 1024 * 1024;
/** V8 collects too often and then fails well before live data reaches the limit; keep this much room. */
export const GC_HEADROOM = 1.2;

const HOUR_MS = 3_600_000;

/**
 * How much V8 lets the heap grow past the live data before its next full collection, in percent. By default V8
 * picks a factor of up to 4 when the heap limit is far away, and a virtual run allocates fast while its live data
 * grows slowly, so its peak RSS was several times its live heap: city-day with 4,000 terminals peaked at 679 MB
 * RSS (the kernel's maximum resident set size) with ≈ 150 MB live by the figures above. At 50 % it peaked at
 * 390 MB, its wall time within the noise of a loaded machine (47.5 s and 59.3 s by default, 55.4 s and 27.5 s at
 * 50 %; load average 7–9); through `payfleet run`, 591 MB and 62.7 s by default, 385 MB and 64.5 s at 50 % (load
 * average 10–11).
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Makes V8 collect before the heap grows far past the live data (HEAP_GROWING_PERCENT), for a virtual run, which
 * holds the event loop and every fleet in one heap. V8 reads the flag at each collection, so setting it while the
 * process runs takes effect (measured above); it changes when garbage is collected, never what a run computes.
 */
export function keepHeapCompact(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

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
