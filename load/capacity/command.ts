// Goal: `payfleet capacity <scenario> --slo "…" [--shards 1,2,4]` — the answer an architect signs: for the
// scenario's population and its peak rate, the recommended shard count with headroom, and per shard count the
// highest arrival rate that keeps every SLO without failing (system failures, remittance lag, undrained backlog,
// invariants), the knee, and what bound the rate (the servers, or the fleet around them).
// Method: one capacity search (search.ts) per shard count over bounded virtual-mode probes (probe.ts), the servers
// costed by the scenario's calibration (or its serviceTime); a scenario with neither is refused (exit 2): the
// capacity of an infinitely fast server is not a figure. Each shard count after the first starts from the previous
// one's capacity. Each probe is printed as it finishes, then the table and the recommendation; everything goes to
// --out as JSON and the throughput–latency chart to report.html beside it. Virtual runs are deterministic, so the
// same scenario, seed and flags give the same table. `--mode mqtt` runs the same search with real-time probes
// against real server processes and a broker (mqttProbe.ts) and names this machine when its CPUs bound the rate.
// The virtual model is of dedicated SD hosts unless `--host co-located` or `--compare` (hostModel.ts): then the
// servers share this machine's cores with their test bed, as the real run's do, and every output says which.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadScenario, ScenarioError } from '../../sim/scenario/load.ts';
import { defineFlags, formatHelp, parseArgs, UsageError } from '../../sim/cli/args.ts';
import { parseDuration } from '../../sim/scenario/durations.ts';
import type { Scenario } from '../../sim/scenario/types.ts';
import { checkSlos, DEFAULT_PROBE, leftOut, probeScenario, probeSlos, runProbe, type ProbeOptions } from './probe.ts';
import { DEFAULT_SEARCH, searchCapacity, type ProbeResult, type SearchResult } from './search.ts';
import { capacityReportHtml } from './report.ts';
import { runMqttProbe } from './mqttProbe.ts';
import { compareModes, formatComparison, type ComparisonRow } from './compare.ts';
import { cpus } from 'node:os';
import { describeHost, sampleBackgroundThreads, type HostModel } from './hostModel.ts';

const flags = defineFlags({
  slo: { kind: 'string', multiple: true, help: 'an SLO the rate must keep, as a scenario threshold', defaultText: "the scenario's thresholds" },
  shards: { kind: 'string', help: 'shard counts to size, comma-separated, e.g. 1,2,4,8', defaultText: "powers of 2 up to twice the scenario's" },
  mode: { kind: 'string', oneOf: ['virtual', 'mqtt'], help: 'virtual (calibrated model) or mqtt (real servers and broker, real time: a probe lasts its warm-up, window and drain)', defaultText: 'virtual' },
  'peak-rate': { kind: 'number', help: 'the peak rate to size for, orders/s', defaultText: "the scenario's apps and POS rates" },
  headroom: { kind: 'number', help: 'the recommended shard count keeps peak-rate × (1 + headroom)', defaultText: '0.3' },
  'min-rate': { kind: 'number', help: 'lowest rate probed, orders/s (its p99 is the low-load value of the knee)', defaultText: String(DEFAULT_SEARCH.minRate) },
  'max-rate': { kind: 'number', help: 'highest rate probed, orders/s', defaultText: String(DEFAULT_SEARCH.maxRate) },
  precision: { kind: 'number', help: 'bisect until hi/lo ≤ 1 + precision', defaultText: '0.15' },
  'knee-factor': { kind: 'number', help: 'the knee: p99 above this × its value at --min-rate', defaultText: String(DEFAULT_SEARCH.kneeFactor) },
  'warm-up': { kind: 'string', placeholder: '<duration>', help: "time before a probe's arrivals start (start-up syncs)", defaultText: '5s' },
  window: { kind: 'string', placeholder: '<duration>', help: "how long a probe's arrivals last", defaultText: '5s' },
  'max-system-failures': { kind: 'number', help: 'a probe fails above this share (%) of orders failed by the system', defaultText: '1' },
  'max-lag': { kind: 'string', placeholder: '<duration>', help: 'a probe fails when the remittance lag p99 exceeds this', defaultText: "the policy's remittance interval (1h if none)" },
  'max-drain': { kind: 'string', placeholder: '<duration>', help: 'a probe fails when its backlog takes longer to drain after its arrivals end', defaultText: '1m' },
  unfunded: { kind: 'boolean', help: "give the means without a top-up agreement none for the probes (business declines then count as they come)" },
  'probe-crypto': { kind: 'string', oneOf: ['sim', 'scenario'], help: "signatures in the probes (the servers' cost comes from the calibration either way)", defaultText: 'sim' },
  seed: { kind: 'int', help: 'seed of every probe', defaultText: "the scenario's" },
  out: { kind: 'string', help: 'JSON file of the answer and every probe; report.html is written beside it', defaultText: 'runs/capacity-<scenario>/capacity.json' },
  host: { kind: 'string', oneOf: ['dedicated', 'co-located'], help: "virtual mode: servers on hosts of their own (the shards cost what the calibration measured), or co-located with their test bed (broker, swarm, harness) on this machine's cores, charged the test bed's CPU of the calibration's testBed", defaultText: 'dedicated; co-located with --compare' },
  compare: { kind: 'boolean', help: 'search in both modes at the same shard counts and print, side by side, the capacity and the p99 at 50 % and 90 % of the real capacity, with the prediction error of the calibrated model' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});

const USAGE = 'payfleet capacity <scenario.yaml> --slo "latency.remote.p99 < 800ms" [--slo …] [--shards 1,2,4,8] [--peak-rate N] [--headroom 0.3]';

export interface CapacityRow extends Omit<SearchResult, 'probes'> {
  shards: number;
  /** What bound the rate at the first failing probe: the servers, or the fleet around them. */
  boundBy: string;
  probes: ProbeResult[];
}

function parseShards(text: string): number[] {
  const counts = text.split(',').map((part) => part.trim());
  if (counts.some((c) => !/^[1-9]\d*$/.test(c))) throw new UsageError(`--shards: expected positive integers separated by commas, got '${text}'`, 'shards');
  return [...new Set(counts.map(Number))].sort((a, b) => a - b);
}

function durationFlag(name: string, text: string | undefined, fallbackMs: number, positive = true): number {
  if (text === undefined) return fallbackMs;
  const parsed = parseDuration(text.trim());
  if (!parsed.ok) throw new UsageError(`--${name}: expected ${parsed.expected}, got '${text}'`, name);
  if (positive && parsed.ms <= 0) throw new UsageError(`--${name}: expected a duration > 0, got '${text}'`, name);
  return parsed.ms;
}

/** Orders per second the scenario's population places: its apps' rates and its shop visits. */
export function scenarioPeakRate(scenario: Scenario): number {
  const { terminals, apps, pos } = scenario.population;
  const perTerminalPerHour = apps.reduce((sum, app) => sum + app.ordersPerHour * app.share, 0) + (pos.units > 0 ? pos.visitsPerTerminalPerHour : 0);
  return (perTerminalPerHour * terminals) / 3600;
}

/** The servers' cost model, or the reason the capacity cannot be a figure (exit 2). */
function refuseFreeServers(scenario: Scenario, file: string): void {
  if (scenario.servers.calibration || scenario.servers.serviceTimeMs > 0) return;
  throw new ScenarioError([
    {
      file,
      path: 'servers',
      message:
        'no cost for the payment servers: servers.serviceTime is 0 and there is no servers.calibration, so every shard would be infinitely fast and its capacity is not a figure. ' +
        'Measure the real server with `payfleet calibrate --crypto ' + scenario.crypto + ' --out calibrations/<name>.json` and set servers.calibration to that file (or give servers.serviceTime).',
    },
  ]);
}

export async function capacityCommand(argv: string[]): Promise<number> {
  const started = performance.now();
  const { positionals, flags: f } = parseArgs(argv, flags);
  if (f.help) {
    console.log(formatHelp(USAGE, 'Finds, for each shard count, the highest constant arrival rate (orders/s) at which a bounded virtual run keeps every SLO with at most --max-system-failures % of orders failed by the system, the remittance lag within --max-lag and its backlog drained within --max-drain; the knee (the lowest rate whose remote p99 exceeds knee-factor × its value at --min-rate); and the shard count to deploy for the peak rate with headroom. The servers cost what servers.calibration (payfleet calibrate) measured. Exit 0: answer written; 2: bad input (a scenario without a server cost included).', flags));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
  const mqtt = f.mode === 'mqtt';
  if (f.compare && f.mode !== undefined) throw new UsageError('--compare runs both modes: give no --mode', 'compare');
  if (mqtt && f.host !== undefined) throw new UsageError('--host describes the virtual model; --mode mqtt runs where it runs', 'host');
  if (f.compare && f.host === 'dedicated') throw new UsageError('--compare checks the model against servers that share this machine with their test bed: --host dedicated would compare unlike with like', 'host');
  const file = positionals[0]!;
  const scenario = loadScenario(file);
  if (f.seed !== undefined) scenario.seed = f.seed;
  // In mqtt mode the servers are real processes: their cost is their own.
  if (!mqtt) refuseFreeServers(scenario, file);
  const slos = f.slo !== undefined && f.slo.length > 0 ? f.slo : scenario.thresholds;
  if (slos.length === 0) throw new UsageError('no SLO: give --slo "…" (or thresholds in the scenario)', 'slo');
  checkSlos(slos);
  const maxSystemPercent = f['max-system-failures'] ?? 1;
  if (!(maxSystemPercent >= 0 && maxSystemPercent <= 100)) throw new UsageError(`--max-system-failures: expected a percentage from 0 to 100, got ${maxSystemPercent}`, 'max-system-failures');
  const headroom = f.headroom ?? 0.3;
  if (!(headroom >= 0)) throw new UsageError(`--headroom: expected a number ≥ 0, got ${headroom}`, 'headroom');
  const probe: ProbeOptions = {
    warmUpMs: durationFlag('warm-up', f['warm-up'], DEFAULT_PROBE.warmUpMs, false),
    windowMs: durationFlag('window', f.window, 5_000),
    maxSystemFailureRate: maxSystemPercent / 100,
    maxLagMs: durationFlag('max-lag', f['max-lag'], scenario.policy.remittance.triggers.everyMs ?? 3_600_000),
    maxDrainMs: durationFlag('max-drain', f['max-drain'], DEFAULT_PROBE.maxDrainMs),
    fund: f.unfunded !== true,
    crypto: f['probe-crypto'] ?? 'sim',
  };
  // A real-time probe costs its warm-up, window and drain in wall time: mqtt mode sizes the scenario's own count by default.
  const shardCounts = f.shards === undefined ? (mqtt ? [scenario.population.shards] : defaultShardCounts(scenario.population.shards)) : parseShards(f.shards);
  const search = {
    minRate: f['min-rate'] ?? DEFAULT_SEARCH.minRate,
    maxRate: f['max-rate'] ?? DEFAULT_SEARCH.maxRate,
    precision: f.precision ?? 0.15,
    kneeFactor: f['knee-factor'] ?? DEFAULT_SEARCH.kneeFactor,
  };
  if (!(search.minRate > 0)) throw new UsageError(`--min-rate: expected a rate > 0, got ${search.minRate}`, 'min-rate');
  if (search.maxRate < search.minRate) throw new UsageError(`--max-rate (${search.maxRate}) is below --min-rate (${search.minRate})`, 'max-rate');
  const peakRate = f['peak-rate'] ?? scenarioPeakRate(scenario);
  // Refuse a shard count the scenario cannot take before any probe runs.
  for (const shards of shardCounts) probeScenario(scenario, shards, search.minRate, slos, probe);
  const out = f.out ?? join('runs', `capacity-${scenario.name}`, 'capacity.json');
  const colocated = !mqtt && (f.compare === true || f.host === 'co-located');
  let host = colocated ? await hostOf(scenario, file) : undefined;

  const cost = mqtt
    ? `real payment-server processes (SQLite, group commit, crypto ${scenario.crypto}) and an embedded broker on this machine (${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'})`
    : scenario.servers.calibration
    ? `calibration ${scenario.servers.calibration.file} (${scenario.servers.calibration.calibration.ledger}, ${scenario.servers.calibration.calibration.crypto}; measured on ${scenario.servers.calibration.calibration.machine.cpuModel}, ${scenario.servers.calibration.calibration.machine.cores} cores, ${scenario.servers.calibration.calibration.machine.date.slice(0, 10)})`
    : `serviceTime ${scenario.servers.serviceTimeMs} ms per request`;
  console.log(`payfleet capacity ${file}`);
  console.log(`  mode=${mqtt ? 'mqtt' : 'virtual'} seed=${scenario.seed} terminals=${scenario.population.terminals} shards=${shardCounts.join(',')} probe crypto=${probe.crypto === 'sim' && !mqtt ? 'sim' : scenario.crypto}`);
  console.log(`  servers: ${cost}`);
  if (!mqtt) console.log(`  model: ${describeHost(host)}`);
  console.log(`  slo: ${probeSlos(slos, probe).join('; ')}; backlog drained within ${probe.maxDrainMs / 1000} s; no invariant violated`);
  console.log(`  probes: ${probe.warmUpMs / 1000} s warm-up + ${probe.windowMs / 1000} s of arrivals at rates ${search.minRate}…${search.maxRate} orders/s, precision ${search.precision}; terminals ${probe.fund ? 'funded by top-ups (the scenario\'s agreements, or one sized from the probe\'s spending)' : 'funded by the scenario\'s own top-up agreements only'}${leftOut(scenario, probe).length > 0 ? `; left out (after the probe's end): ${leftOut(scenario, probe).join(', ')}` : ''}`);
  /** Other work on the host, sampled before each real probe of --compare (our processes are not running then). */
  const backgroundDuringReal: number[] = [];
  const probeOnce = async (inMqtt: boolean, shards: number, rate: number): Promise<ProbeResult> => {
    if (inMqtt && host) backgroundDuringReal.push(await sampleBackgroundThreads(host.cores));
    const probeStarted = performance.now();
    const { summary: _summary, ...result } = inMqtt ? await runMqttProbe(scenario, shards, rate, slos, probe, join(dirname(out), 'probes')) : runProbe(scenario, shards, rate, slos, probe, host);
    void _summary;
    if (inMqtt && host) backgroundDuringReal.push(await sampleBackgroundThreads(host.cores));
    const d = result.details ?? {};
    const hostNote = d.hostBottleneck === undefined ? '' : `, host: the run needs ${d.hostDemandCores} cores, its busiest process (${d.hostBottleneck}) ${pct(d.hostBottleneckUtilisation)} of the ${d.hostShareCores} core it can have`;
    const where = inMqtt
      ? `machine CPU busy ${pct(d.machineCpuBusy)}${d.serverCpuMsPerOrder === undefined ? '' : `, CPU ms per order: servers ${d.serverCpuMsPerOrder}, broker ${d.brokerCpuMsPerOrder}, swarm ${d.swarmCpuMsPerOrder}`}`
      : `busiest shard busy ${pct(d.serverBusyShare)}, queue ≤ ${d.peakQueueDepth}${hostNote}`;
    console.log(
      `  ${f.compare ? (inMqtt ? '[mqtt] ' : '[virtual] ') : ''}shards=${shards} rate=${rate}/s: ${result.pass ? 'pass' : `FAIL (${result.failed.join('; ')})`}  p99 ${result.p99Ms ?? '–'} ms, system failures ${pct(d.systemFailureRate)}, business declines ${pct(d.businessDeclineRate)}, top-ups ${d.topUps ?? 0}, ${where}  (${((performance.now() - probeStarted) / 1000).toFixed(1)} s)`,
    );
    return result;
  };
  /** One search per shard count; `guesses` start each (the other mode's capacity, in --compare). */
  const searchRows = async (inMqtt: boolean, guesses?: ReadonlyMap<number, number | null>): Promise<CapacityRow[]> => {
    const found: CapacityRow[] = [];
    let previous: CapacityRow | undefined;
    for (const shards of shardCounts) {
      const result = await searchCapacity((rate) => probeOnce(inMqtt, shards, rate), {
        ...search,
        startRate: guesses?.get(shards) ?? (previous && nextGuess(previous, shards)),
        // From a guess, steps of twice the precision: the guess is near, and a probe far above the capacity (a
        // backlog to drain) costs most. From minRate, ×4 while the busiest shard is nearly idle.
        guessStep: 1 + 2 * search.precision,
        growth: (passed) => (farBelowLimits(passed) ? 4 : 2),
        // The low-load p99 does not depend on the shard count: a later search reads its knee against the first's.
        baselineP99Ms: found[0]?.baselineP99Ms ?? undefined,
      });
      found.push({ shards, ...result, boundBy: boundBy(result) });
      if (result.capacity !== null) previous = found.at(-1);
    }
    return found;
  };
  let rows = await searchRows(mqtt && !f.compare);
  let comparison: ComparisonRow[] | undefined;
  if (f.compare) {
    const real = await searchRows(true, new Map(rows.map((r) => [r.shards, r.capacity])));
    if (host && backgroundDuringReal.length > 0) {
      // Other work on this machine changes while the real search runs: the model is searched again, told the other
      // work as it was sampled just before and after each real probe (on average), so both modes face the same host.
      host = { ...host, backgroundThreads: Math.round((backgroundDuringReal.reduce((a, b) => a + b, 0) / backgroundDuringReal.length) * 1000) / 1000 };
      console.log(`  model searched again with the other work sampled before and after each real probe: ${host.backgroundThreads} busy threads on average (${Math.min(...backgroundDuringReal)} to ${Math.max(...backgroundDuringReal)})`);
      rows = await searchRows(false);
    }
    comparison = await compareModes(rows, real, async (inMqtt, shards, rate) => {
      // Each pair's model (probed after its real probe) is told the other work sampled just before and just after it.
      if (!inMqtt && host) host = { ...host, backgroundThreads: Math.round(((backgroundDuringReal.at(-1)! + backgroundDuringReal.at(-2)!) / 2) * 1000) / 1000 };
      return probeOnce(inMqtt, shards, rate);
    });
    console.log('');
    console.log(`  virtual (calibrated model; ${host ? `co-located host: ${host.cores} cores, the test bed's CPU charged` : 'dedicated hosts'}):`);
    console.log(formatTable(rows));
    console.log('  mqtt (real servers and broker on this machine):');
    console.log(formatTable(real));
    console.log('');
    console.log(formatComparison(comparison));
  }
  const recommendation = recommend(rows, peakRate, headroom);
  const wallMs = Math.round(performance.now() - started);
  if (!f.compare) {
    console.log('');
    console.log(formatTable(rows));
  }
  console.log('');
  console.log(`  ${recommendation.text}`);
  const answer = { scenario: scenario.name, file, seed: scenario.seed, mode: f.compare ? 'compare' : mqtt ? 'mqtt' : 'virtual', slos: probeSlos(slos, probe), probe, search, servers: cost, model: mqtt ? 'real' : describeHost(host), ...(host && { host }), peakRate, headroom, recommendation, rows, ...(comparison && { comparison }), wallMs };
  mkdirSync(dirname(out), { recursive: true });
  writeAtomically(out, `${JSON.stringify(answer, null, 2)}\n`);
  const reportFile = join(dirname(out), 'report.html');
  writeAtomically(reportFile, capacityReportHtml(answer));
  console.log(`\n  wrote ${out} and ${reportFile} (${(wallMs / 1000).toFixed(1)} s)`);
  return 0;
}

/** The co-located host model: the calibration's test bed on this machine, other work on it sampled now. */
async function hostOf(scenario: Scenario, file: string): Promise<HostModel> {
  const testBed = scenario.servers.calibration?.calibration.testBed;
  if (!testBed) {
    throw new ScenarioError([
      {
        file,
        path: 'servers.calibration',
        message: `${scenario.servers.calibration ? `${scenario.servers.calibration.file} has no testBed` : 'no calibration'}: servers co-located with their test bed (--compare, --host co-located) are charged the test bed's CPU per order, which \`payfleet calibrate\` measures unless --server-only`,
      },
    ]);
  }
  return { cores: cpus().length, backgroundThreads: await sampleBackgroundThreads(cpus().length), testBed };
}

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** 1, 2, 4, … up to twice the scenario's shard count. */
function defaultShardCounts(scenarioShards: number): number[] {
  const counts: number[] = [];
  for (let n = 1; n <= Math.max(2, scenarioShards * 2); n *= 2) counts.push(n);
  return counts;
}

/**
 * Where the search of a larger shard count starts: the smaller count's capacity, scaled by the shard ratio (90 % of
 * it) when its first failing probe saturated the servers, as it is otherwise (a backlog at the terminals, a
 * latency: the fleet around the servers, which more shards do not lift much).
 */
function nextGuess(previous: CapacityRow, shards: number): number | undefined {
  if (previous.capacity === null) return undefined;
  const failing = previous.probes.find((p) => p.rate === previous.firstFailing);
  const serverBound = failing?.failed.some((f) => f.startsWith('servers saturated')) ?? false;
  return serverBound ? previous.capacity * (shards / previous.shards) * 0.9 : previous.capacity;
}

/** A passing probe far below every limit: the busiest shard (and the busiest process of a co-located host) under 20 %. */
function farBelowLimits(passed: ProbeResult): boolean {
  const d = passed.details ?? {};
  const server = d.serverBusyShare;
  const host = d.hostBottleneckUtilisation;
  return typeof server === 'number' && server < 0.2 && (host === undefined || (typeof host === 'number' && host < 0.2));
}

/** What bound the rate: a shard busy most of the window at the first failing probe is the servers; else the fleet. */
function boundBy(result: SearchResult): string {
  if (result.limitedBy === 'maxRate') return '--max-rate (nothing failed below it)';
  const failing = result.probes.find((p) => p.rate === result.firstFailing);
  const machine = failing?.details?.machineCpuBusy;
  const own = failing?.details?.runCpuShare;
  if (typeof machine === 'number' && machine >= 0.9) {
    const whose = typeof own === 'number' && own < 0.6 ? `, this run's processes ${pct(own)}: other work shared the machine` : `, this run's processes ${pct(own)}: the broker, the servers and the swarm share them`;
    return `this machine, not the servers (its ${cpus().length} cores ${pct(machine)} busy${whose})`;
  }
  if (typeof machine === 'number') return `the system under test (machine CPU ${pct(machine)} busy: not this machine's limit)`;
  const busy = failing?.details?.serverBusyShare;
  const share = typeof busy === 'number' ? `busiest shard busy ${pct(busy)} of the window` : 'servers not costed';
  if (typeof busy === 'number' && busy >= 0.85) return `the servers (${share})`;
  return `the fleet, not the servers (${share}): terminals, their queues or the network`;
}

export interface Recommendation {
  peakRate: number;
  needed: number;
  shards: number | null;
  text: string;
}

/** The smallest shard count whose capacity keeps the peak rate with headroom. */
export function recommend(rows: readonly CapacityRow[], peakRate: number, headroom: number): Recommendation {
  const needed = Math.round(peakRate * (1 + headroom) * 1000) / 1000;
  const fit = rows.find((r) => r.capacity !== null && r.capacity >= needed);
  const head = `peak ${formatRate(peakRate)} orders/s, with ${Math.round(headroom * 100)} % headroom ${formatRate(needed)} orders/s`;
  if (fit) {
    return { peakRate, needed, shards: fit.shards, text: `recommended: ${fit.shards} shard${fit.shards === 1 ? '' : 's'} — ${head}; ${fit.shards} take${fit.shards === 1 ? 's' : ''} ${fit.capacity}/s (${((fit.capacity! / needed) * 100).toFixed(0)} % of the need), knee ${fit.knee ?? '–'}/s` };
  }
  const best = [...rows].filter((r) => r.capacity !== null).sort((a, b) => b.capacity! - a.capacity!)[0];
  return { peakRate, needed, shards: null, text: `no shard count probed keeps it — ${head}; the most taken is ${best ? `${best.capacity}/s with ${best.shards} shards (bound by ${best.boundBy})` : 'none (every shard count failed at --min-rate)'}` };
}

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate >= 1 ? rate.toFixed(2) : rate.toPrecision(3);
}

function pct(value: unknown): string {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)}%` : '–';
}

export function formatTable(rows: readonly CapacityRow[]): string {
  const header = ['shards', 'capacity/s', 'first fail/s', 'knee/s', 'p99 low (ms)', 'p99 at cap (ms)', 'system fail at cap', 'business decl at cap', 'top-ups at cap', 'failed at first fail', 'bound by'];
  const body = rows.map((r) => {
    const atCap = r.probes.find((p) => p.rate === r.capacity)?.details ?? {};
    return [
      String(r.shards),
      r.capacity === null ? `< ${r.firstFailing}` : String(r.capacity),
      r.firstFailing === null ? '–' : String(r.firstFailing),
      r.knee === null ? '–' : String(r.knee),
      r.baselineP99Ms === null ? '–' : String(r.baselineP99Ms),
      r.p99AtCapacityMs === null ? '–' : String(r.p99AtCapacityMs),
      pct(atCap.systemFailureRate),
      pct(atCap.businessDeclineRate),
      atCap.topUps === undefined ? '–' : `${atCap.topUps} (${pct(atCap.topUpShare)})`,
      r.failedAt.length === 0 ? '–' : r.failedAt.join('; '),
      r.boundBy,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i < 9 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}
