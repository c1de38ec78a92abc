// Goal: the capacity search — the highest arrival rate at which a run keeps every SLO, and the knee, the rate
// at which p99 latency starts to climb — for one configuration (one shard count).
// Method: a search over a `probe(rate)` that runs the scenario at that rate and says whether every SLO held
// and what p99 it measured. Doubling from minRate (by `growth`, e.g. 4 while far from any limit), or steps of
// `guessStep` up or down from a guess (`startRate`, once minRate passed), finds the first failing rate and the
// last passing one; bisection then narrows the
// gap between the last pass and the first fail until hi/lo ≤ 1 + precision. The knee is defined as the lowest
// rate from which p99 stays above kneeFactor (default 1.5) × the low-load p99 (the median p99 of the three lowest
// rates that measured one); it is narrowed (to 25 %, one probe at most: p99s of short probes are noisy) by
// bisection too, over the same cache of probes. Rates are rounded to 3 significant digits, so the table reads
// well and a probe is never repeated. The search is pure: the probe carries all the cost and all the I/O (a real-time probe is async, so the search is too).

export interface ProbeResult {
  /** Orders per second. */
  rate: number;
  /** Every SLO held and no invariant was violated. */
  pass: boolean;
  /** The SLOs that failed (their expressions), and a violated invariant as `violation: INV-n`. */
  failed: string[];
  /** The latency figure the knee is read from (remote p99, ms); null when the run had no sample of it. */
  p99Ms: number | null;
  /** Anything the caller wants in the report (achieved throughput, drops, wall time…). */
  details?: Record<string, number | string | null>;
}

export interface SearchOptions {
  minRate: number;
  maxRate: number;
  /** Stop bisecting when hi/lo ≤ 1 + precision. */
  precision: number;
  /** The knee: p99 above kneeFactor × its low-load value. */
  kneeFactor: number;
  /** Guard against a search that never settles (a noisy probe). */
  maxProbes: number;
  /** Where the doubling starts after the probe at minRate (a guess of the capacity, e.g. from a smaller shard count); default minRate. */
  startRate?: number;
  /**
   * The step from a guess (startRate): up by this factor while it passes, down while it fails, then bisection.
   * Default 2; a good guess (a larger shard count from a smaller one) deserves a smaller step.
   */
  guessStep?: number;
  /** The factor of the doubling from minRate after a passing probe (default 2; e.g. 4 while far from any limit). */
  growth?: (passed: ProbeResult) => number;
  /** The low-load p99 to read the knee against, when known from elsewhere (e.g. a smaller shard count's search). */
  baselineP99Ms?: number;
}

export const DEFAULT_SEARCH: SearchOptions = { minRate: 1, maxRate: 10_000, precision: 0.05, kneeFactor: 1.5, maxProbes: 40 };

export interface SearchResult {
  /** Highest rate probed that kept every SLO; null when even minRate failed. */
  capacity: number | null;
  /** Lowest rate probed that broke an SLO; null when maxRate still passed. */
  firstFailing: number | null;
  /** What stopped the search upwards: an SLO, the --max-rate bound, or a failure already at --min-rate. */
  limitedBy: 'slo' | 'maxRate' | 'minRate';
  /** SLOs broken at firstFailing (or at minRate). */
  failedAt: string[];
  /** The low-load p99: the median p99 of the three lowest rates that measured one (or given). */
  baselineP99Ms: number | null;
  /** Lowest rate probed from which every probe's p99 exceeds kneeFactor × baseline; null if none did (or no baseline). */
  knee: number | null;
  p99AtCapacityMs: number | null;
  /** Every probe, by rate. */
  probes: ProbeResult[];
}

/** x rounded to 3 significant digits. */
export function roundRate(x: number): number {
  if (x <= 0) return 0;
  return Number(x.toPrecision(3));
}

export async function searchCapacity(probe: (rate: number) => ProbeResult | Promise<ProbeResult>, options: Partial<SearchOptions> = {}): Promise<SearchResult> {
  const o = { ...DEFAULT_SEARCH, ...options };
  const cache = new Map<number, ProbeResult>();
  const run = async (rate: number): Promise<ProbeResult> => {
    const key = roundRate(rate);
    let result = cache.get(key);
    if (!result) {
      result = await probe(key);
      cache.set(key, result);
    }
    return result;
  };
  const probes = () => [...cache.values()].sort((a, b) => a.rate - b.rate);
  const budgetLeft = () => cache.size < o.maxProbes;

  const low = await run(o.minRate);
  let capacity: number | null = null;
  let firstFailing: number | null = null;
  let limitedBy: SearchResult['limitedBy'] = 'slo';
  if (!low.pass) {
    firstFailing = low.rate;
    limitedBy = 'minRate';
  } else {
    // Doubling: the first failing rate, or maxRate passing.
    let lo = low.rate;
    let hi: number | null = null;
    // A guess first (e.g. the previous shard count's capacity): one probe, then steps of guessStep up while it
    // passes, or down while it fails (each probe near the capacity costs little more than one far below it, and a
    // failing probe far above it costs most), then bisection.
    if (o.startRate !== undefined && roundRate(o.startRate) > lo && o.startRate <= o.maxRate) {
      const step = o.guessStep ?? 2;
      let probe = await run(o.startRate);
      if (probe.pass) {
        lo = probe.rate;
        while (probe.pass && lo < o.maxRate && budgetLeft()) {
          probe = await run(Math.min(lo * step, o.maxRate));
          if (probe.pass) lo = probe.rate;
          else hi = probe.rate;
        }
      } else {
        hi = probe.rate;
        while (!probe.pass && roundRate(hi / step) > lo && budgetLeft()) {
          probe = await run(hi / step);
          if (probe.pass) lo = probe.rate;
          else hi = probe.rate;
        }
      }
    }
    let last = low;
    while (hi === null && lo < o.maxRate && budgetLeft()) {
      const next = await run(Math.min(lo * (o.growth?.(last) ?? 2), o.maxRate));
      if (next.pass) lo = next.rate;
      else hi = next.rate;
      last = next;
    }
    if (hi === null) {
      limitedBy = lo >= roundRate(o.maxRate) ? 'maxRate' : 'slo';
    } else {
      // Bisection between the last pass and the first fail.
      // Rates are rounded to 3 digits, so a gap of exactly 1 + precision may read a hair wider: 1 % of slack.
      while (hi / lo > (1 + o.precision) * 1.01 && budgetLeft()) {
        const mid = roundRate((lo + hi) / 2);
        if (mid <= lo || mid >= hi) break;
        if ((await run(mid)).pass) lo = mid;
        else hi = mid;
      }
    }
    capacity = lo;
    firstFailing = hi;
  }

  // The low-load p99: at minRate, or at the lowest rate whose run had remote payments to measure (a low rate over
  // a short probe may have none).
  // The median of the three lowest rates' p99s, so one lucky short probe does not set it.
  const lowest = probes().filter((p) => p.p99Ms !== null).slice(0, 3).map((p) => p.p99Ms!).sort((a, b) => a - b);
  const baselineP99Ms = o.baselineP99Ms ?? (lowest.length === 0 ? null : lowest[Math.floor((lowest.length - 1) / 2)]!);
  const knee = await findKnee(run, probes, baselineP99Ms, o);
  const failedAt = firstFailing === null ? [] : cache.get(firstFailing)?.failed ?? [];
  return {
    capacity,
    firstFailing,
    limitedBy,
    failedAt,
    baselineP99Ms,
    knee,
    p99AtCapacityMs: capacity === null ? null : (cache.get(capacity)?.p99Ms ?? null),
    probes: probes(),
  };
}

async function findKnee(run: (rate: number) => Promise<ProbeResult>, probes: () => ProbeResult[], baseline: number | null, o: SearchOptions): Promise<number | null> {
  if (baseline === null || baseline <= 0) return null;
  const limit = o.kneeFactor * baseline;
  const climbed = (p: ProbeResult) => p.p99Ms !== null && p.p99Ms > limit;
  // The lowest probe from which every faster probe stayed above the limit: a single noisy p99 below the knee (a
  // short probe's p99 rests on few payments) does not make a knee.
  const firstAbove = () => {
    const sorted = probes().filter((p) => p.p99Ms !== null);
    let index = sorted.length;
    while (index > 0 && climbed(sorted[index - 1]!)) index--;
    return sorted[index];
  };
  let above = firstAbove();
  if (!above) return null;
  // The knee is read off noisy p99s: it is narrowed to a coarser step than the capacity, with a few probes at most.
  const precision = Math.max(o.precision, KNEE_PRECISION);
  for (let extra = 0; ; extra++) {
    const below = probes().filter((p) => p.rate < above!.rate).at(-1);
    if (!below || above.rate / below.rate <= 1 + precision || extra >= KNEE_PROBES || budgetSpent(probes, o)) return above.rate;
    const mid = roundRate((below.rate + above.rate) / 2);
    if (mid <= below.rate || mid >= above.rate) return above.rate;
    await run(mid);
    above = firstAbove()!;
  }
}

/**
 * The knee's bisection: to within 25 %, and at most one probe of its own (a second one cost the quickstart search
 * three more probes, and a short probe's p99 is too noisy to place the knee closer).
 */
const KNEE_PRECISION = 0.25;
const KNEE_PROBES = 1;

function budgetSpent(probes: () => ProbeResult[], o: SearchOptions): boolean {
  return probes().length >= o.maxProbes;
}
