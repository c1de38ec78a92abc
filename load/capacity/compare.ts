// Goal: `payfleet capacity --compare` — the calibrated virtual model checked against the real thing on this
// machine: per shard count, the capacity each mode found and the remote p99 of each at 50 % and 90 % of the real
// capacity, with the model's prediction error.
// Method: the two searches are made by the caller (the real one starting from the model's capacity); here, two more
// probes per mode and shard count at 0.5 × and 0.9 × the real capacity (the same rates in both modes, so the p99s
// compare like with like; the real one first, so the caller can tell the model the host as the real one found it),
// and the error (virtual − real) / real of the capacity and of each p99.

import { roundRate, type ProbeResult } from './search.ts';

interface SearchedRow {
  shards: number;
  capacity: number | null;
}

export interface ComparisonRow {
  shards: number;
  virtualCapacity: number | null;
  realCapacity: number | null;
  /** (virtual − real) / real; null without both. */
  capacityError: number | null;
  /** At 50 % and 90 % of the real capacity: the rate and each mode's remote p99 (ms). */
  at: Array<{ share: number; rate: number; virtualP99Ms: number | null; realP99Ms: number | null; error: number | null }>;
}

const error = (model: number | null, real: number | null): number | null => (model === null || real === null || real === 0 ? null : Math.round(((model - real) / real) * 1000) / 1000);

export async function compareModes(
  virtual: readonly SearchedRow[],
  real: readonly SearchedRow[],
  probe: (inMqtt: boolean, shards: number, rate: number) => Promise<ProbeResult>,
): Promise<ComparisonRow[]> {
  const rows: ComparisonRow[] = [];
  for (const v of virtual) {
    const r = real.find((row) => row.shards === v.shards);
    const realCapacity = r?.capacity ?? null;
    const at: ComparisonRow['at'] = [];
    if (realCapacity !== null) {
      for (const share of [0.5, 0.9]) {
        const rate = roundRate(realCapacity * share);
        // The real probe first: the model of the pair may then be told the host as it was around the real one.
        const measured = await probe(true, v.shards, rate);
        const modelled = await probe(false, v.shards, rate);
        at.push({ share, rate, virtualP99Ms: modelled.p99Ms, realP99Ms: measured.p99Ms, error: error(modelled.p99Ms, measured.p99Ms) });
      }
    }
    rows.push({ shards: v.shards, virtualCapacity: v.capacity, realCapacity, capacityError: error(v.capacity, realCapacity), at });
  }
  return rows;
}

const pct = (x: number | null) => (x === null ? '–' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)} %`);

export function formatComparison(rows: readonly ComparisonRow[]): string {
  const lines = [
    '  | shards | capacity/s virtual | capacity/s real | error | p99 ms at 50 % virtual / real | error | p99 ms at 90 % virtual / real | error |',
    '  |---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const cell = (i: number) => {
      const a = r.at[i];
      return a ? [`${a.virtualP99Ms ?? '–'} / ${a.realP99Ms ?? '–'} (at ${a.rate}/s)`, pct(a.error)] : ['–', '–'];
    };
    lines.push(`  | ${r.shards} | ${r.virtualCapacity ?? '–'} | ${r.realCapacity ?? '–'} | ${pct(r.capacityError)} | ${cell(0).join(' | ')} | ${cell(1).join(' | ')} |`);
  }
  const worst = Math.max(0, ...rows.flatMap((r) => [r.capacityError, ...r.at.map((a) => a.error)]).filter((e): e is number => e !== null).map(Math.abs));
  lines.push('', `  largest prediction error: ${(worst * 100).toFixed(0)} % (the model is meant to be within 25 %)`);
  return lines.join('\n');
}
