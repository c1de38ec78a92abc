// Goal: `payfleet capacity <scenario> --slo "…" [--slo …] [--shards 1,2,4,8]` — the table that sizes the server
// cluster: for each shard count, the highest arrival rate that keeps every SLO, and the knee.
// Method: one capacity search (search.ts) per shard count over virtual-mode probes (probe.ts); each probe is
// printed as it finishes, then the table, and everything is written as JSON (--out). Virtual runs are
// deterministic, so the same scenario, seed and flags give the same table. mqtt mode is refused for now: a
// probe there is a real-time run of minutes, and the mqtt runner does not take an arrival rate yet.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadScenario } from '../../sim/scenario/load.ts';
import { defineFlags, formatHelp, parseArgs, UsageError } from '../../sim/cli/args.ts';
import { checkSlos, probeScenario, runProbe } from './probe.ts';
import { DEFAULT_SEARCH, searchCapacity, type ProbeResult, type SearchResult } from './search.ts';

const flags = defineFlags({
  slo: { kind: 'string', multiple: true, help: 'an SLO the rate must keep, as a scenario threshold', defaultText: "the scenario's thresholds" },
  shards: { kind: 'string', help: 'shard counts to size, comma-separated, e.g. 1,2,4,8', defaultText: "the scenario's" },
  mode: { kind: 'string', oneOf: ['virtual', 'mqtt'], help: 'virtual (mqtt: not yet)', defaultText: 'virtual' },
  'min-rate': { kind: 'number', help: 'lowest rate probed, orders/s (its p99 is the low-load value of the knee)', defaultText: String(DEFAULT_SEARCH.minRate) },
  'max-rate': { kind: 'number', help: 'highest rate probed, orders/s', defaultText: String(DEFAULT_SEARCH.maxRate) },
  precision: { kind: 'number', help: 'bisect until hi/lo ≤ 1 + precision', defaultText: String(DEFAULT_SEARCH.precision) },
  'knee-factor': { kind: 'number', help: 'the knee: p99 above this × its value at --min-rate', defaultText: String(DEFAULT_SEARCH.kneeFactor) },
  seed: { kind: 'int', help: 'seed of every probe', defaultText: "the scenario's" },
  out: { kind: 'string', help: 'JSON file of the table and every probe', defaultText: 'runs/capacity-<scenario>.json' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});

const USAGE = 'payfleet capacity <scenario.yaml> --slo "latency.remote.p99 < 800ms" [--slo …] [--shards 1,2,4,8] [--min-rate 1] [--max-rate 10000]';

export interface CapacityRow extends Omit<SearchResult, 'probes'> {
  shards: number;
  probes: ProbeResult[];
}

function parseShards(text: string): number[] {
  const counts = text.split(',').map((part) => part.trim());
  if (counts.some((c) => !/^[1-9]\d*$/.test(c))) throw new UsageError(`--shards: expected positive integers separated by commas, got '${text}'`);
  return [...new Set(counts.map(Number))];
}

export async function capacityCommand(argv: string[]): Promise<number> {
  const { positionals, flags: f } = parseArgs(argv, flags);
  const given = f.slo ?? [];
  if (f.help) {
    console.log(formatHelp(USAGE, 'Finds, for each shard count, the highest constant arrival rate (orders/s) at which a virtual run keeps every SLO, and the knee (the lowest rate whose remote p99 exceeds knee-factor × its value at --min-rate). Exit 0: table written; 2: bad input.', flags));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
  if (f.mode === 'mqtt') throw new UsageError('--mode mqtt: not yet — the mqtt runner does not take an arrival rate; use --mode virtual', 'mode');
  const file = positionals[0]!;
  const scenario = loadScenario(file);
  if (f.seed !== undefined) scenario.seed = f.seed;
  const slos = given.length > 0 ? given : scenario.thresholds;
  if (slos.length === 0) throw new UsageError('no SLO: give --slo "…" (or thresholds in the scenario)');
  checkSlos(slos);
  const shardCounts = f.shards === undefined ? [scenario.population.shards] : parseShards(f.shards);
  const search = {
    minRate: f['min-rate'] ?? DEFAULT_SEARCH.minRate,
    maxRate: f['max-rate'] ?? DEFAULT_SEARCH.maxRate,
    precision: f.precision ?? DEFAULT_SEARCH.precision,
    kneeFactor: f['knee-factor'] ?? DEFAULT_SEARCH.kneeFactor,
  };
  if (search.maxRate < search.minRate) throw new UsageError(`--max-rate (${search.maxRate}) is below --min-rate (${search.minRate})`);
  // Refuse a shard count the scenario cannot take before any probe runs.
  for (const shards of shardCounts) probeScenario(scenario, shards, search.minRate, slos);
  const out = f.out ?? join('runs', `capacity-${scenario.name}.json`);

  console.log(`payfleet capacity ${file}`);
  console.log(`  mode=virtual seed=${scenario.seed} terminals=${scenario.population.terminals} serviceTime=${scenario.servers.serviceTimeMs}ms shards=${shardCounts.join(',')}`);
  console.log(`  slo: ${slos.join('; ')}`);
  console.log(`  rates ${search.minRate}…${search.maxRate} orders/s, precision ${search.precision}, knee at ${search.kneeFactor}× the p99 at ${search.minRate}/s`);
  const rows: CapacityRow[] = [];
  for (const shards of shardCounts) {
    const result = searchCapacity((rate) => {
      const { summary: _summary, ...probe } = runProbe(scenario, shards, rate, slos);
      void _summary;
      console.log(`  shards=${shards} rate=${rate}/s: ${probe.pass ? 'pass' : `FAIL (${probe.failed.join('; ')})`}  p99 ${probe.p99Ms ?? '–'} ms, declined ${pct(probe.details?.declinedRate)}, dropped ${probe.details?.dropped}, queue ≤ ${probe.details?.peakQueueDepth}  (${((probe.details?.wallMs as number) / 1000).toFixed(1)} s)`);
      return probe;
    }, search);
    rows.push({ shards, ...result });
  }
  console.log('');
  console.log(formatTable(rows));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ scenario: scenario.name, file, seed: scenario.seed, slos, search, rows }, null, 2)}\n`);
  console.log(`\n  wrote ${out}`);
  return 0;
}

function pct(value: unknown): string {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)}%` : '–';
}

export function formatTable(rows: readonly CapacityRow[]): string {
  const header = ['shards', 'capacity/s', 'first fail/s', 'knee/s', 'p99 low (ms)', 'p99 at cap (ms)', 'limited by'];
  const body = rows.map((r) => [
    String(r.shards),
    r.capacity === null ? `< ${r.firstFailing}` : String(r.capacity),
    r.firstFailing === null ? '–' : String(r.firstFailing),
    r.knee === null ? '–' : String(r.knee),
    r.baselineP99Ms === null ? '–' : String(r.baselineP99Ms),
    r.p99AtCapacityMs === null ? '–' : String(r.p99AtCapacityMs),
    r.limitedBy === 'maxRate' ? '--max-rate' : r.failedAt.join('; ') || '–',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  return [header, ...body].map((row) => `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padStart(widths[i]!))).join('  ')}`).join('\n');
}
