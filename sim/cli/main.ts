// Goal: the `payfleet` command — run a scenario, replay a recorded run, validate a scenario file, rebuild or
// compare reports, and start the broker or a payment server.
// Method: one small function per command; each prints every option it runs with (so a run can be repeated
// from its log), and returns an exit status: 0 every invariant held, 1 a violation or liveness failure, 2 bad
// input (a bad flag, a bad scenario file: nothing is run and nothing is written).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadScenario, ScenarioError, withOverrides } from '../scenario/load.ts';
import { parseDuration } from '../scenario/durations.ts';
import type { Scenario } from '../scenario/types.ts';
import { runVirtual } from '../run/runVirtual.ts';
import { thresholdsPassed, writeRunFiles, type RunSummary } from '../run/summary.ts';
import { ProgressLine } from '../run/progress.ts';
import { estimateVirtualRun, memoryRefusal } from '../run/memoryBudget.ts';
import { formatHelp, parseArgs, UsageError, type FlagSpec } from './args.ts';
import { registeredCommands } from './registry.ts';

const EXIT_OK = 0;
const EXIT_VIOLATION = 1;
const EXIT_BAD_INPUT = 2;
/** k6's convention: the run completed but a threshold (SLO) failed. */
export const EXIT_THRESHOLD = 99;

type Command = { summary: string; run: (argv: string[]) => Promise<number> };

function durationMs(text: string): number | undefined {
  const parsed = parseDuration(text);
  return parsed.ok ? parsed.ms : undefined;
}

const runFlags: Record<string, FlagSpec> = {
  mode: { kind: 'string', help: 'virtual (deterministic, virtual time) or mqtt (real broker, real time)', defaultText: 'virtual' },
  seed: { kind: 'int', help: 'seed of every random draw', defaultText: "the scenario's" },
  terminals: { kind: 'int', help: 'number of terminals', defaultText: "the scenario's" },
  duration: { kind: 'duration', help: 'length of the safety phase, e.g. 30m, 24h', defaultText: "the scenario's" },
  out: { kind: 'string', help: 'directory for summary.json, timeseries.csv, report.html', defaultText: 'runs/<scenario>-<seed>' },
  quiet: { kind: 'boolean', help: 'no progress line' },
  broker: { kind: 'string', help: 'mqtt mode: URL of an external broker, e.g. mqtt://127.0.0.1:1883 (secret from PAYFLEET_BROKER_SECRET)', defaultText: 'an embedded aedes broker in its own process' },
  'time-scale': { kind: 'number', help: 'mqtt mode: simulated ms per real ms (60 plays an hour in a minute)', defaultText: '1' },
  'metrics-port': {
    kind: 'int',
    help: 'mqtt mode only: serve live Prometheus metrics at http://127.0.0.1:<n>/metrics while the run goes (0: any free port; the URL is printed). A virtual run holds the event loop until it ends, so it serves none',
    defaultText: 'no endpoint',
  },
  help: { kind: 'boolean', help: 'show this help' },
};

const RUN_USAGE = 'payfleet run <scenario.yaml> [--mode virtual|mqtt] [--seed N] [--terminals N] [--duration 24h] [--out DIR] [--time-scale X] [--metrics-port N]';

function loadWithOverrides(file: string, flags: Record<string, string | number | boolean>): Scenario {
  const scenario = loadScenario(file);
  return withOverrides(scenario, {
    seed: flags.seed as number | undefined,
    terminals: flags.terminals as number | undefined,
    duration: flags.duration as number | undefined,
  });
}

function printOptions(scenario: Scenario, file: string, outDir: string, mode: string): void {
  const p = scenario.population;
  console.log(
    [
      `payfleet run ${file}`,
      `  mode=${mode} seed=${scenario.seed} terminals=${p.terminals} pos=${p.pos.units} shards=${p.shards} crypto=${scenario.crypto}`,
      `  duration=${scenario.durationMs}ms drain=${scenario.drainMs}ms threshold=${scenario.policy.thresholdMinor} remittance=${scenario.policy.remittance.mode}`,
      `  network: loss=${scenario.network.lossProbability} dup=${scenario.network.duplicateProbability} reorder=${scenario.network.reorderProbability} latency p50/p99=${scenario.network.latency.medianMs}/${scenario.network.latency.p99Ms}ms`,
      `  coverage: on=${scenario.coverage.meanOnDurationMs}ms off=${scenario.coverage.meanOffDurationMs}ms outages=${scenario.coverage.outages.length} faults=${scenario.faults.length}`,
      `  out=${outDir}`,
    ].join('\n'),
  );
}

export function printVerdict(summary: RunSummary): void {
  const o = summary.orders;
  const lines = [
    '',
    `${summary.ok ? 'OK' : 'VIOLATION'}  ${summary.scenario.name} seed=${summary.seed} mode=${summary.mode}  simulated ${(summary.simulatedMs / 1000).toFixed(0)} s in ${(summary.wallMs / 1000).toFixed(1)} s wall, ${summary.events} events`,
    `  orders ${o.total}: approved ${o.approved}, declined ${o.declined}; by path internal ${o.byPath.internal ?? 0}, local-offline ${o.byPath.localOffline ?? 0}, local-below-threshold ${o.byPath.localBelowThreshold ?? 0}, remote ${o.byPath.remote ?? 0}`,
    `  latency local p50/p99 ${summary.latencyMs.local.p50}/${summary.latencyMs.local.p99} ms, remote p50/p99 ${summary.latencyMs.remote.p50}/${summary.latencyMs.remote.p99} ms`,
    `  remittance: ${summary.remittance.transactions} tx in ${summary.remittance.batches} batches, lag p50/p99 ${summary.remittance.lagMs.p50}/${summary.remittance.lagMs.p99} ms, peak money at risk ${summary.remittance.peakBacklogAmountMinor}, pending at end ${summary.remittance.pendingAtEnd}`,
    `  ledger: approved ${summary.ledger.approvedAmountMinor}, posted ${summary.ledger.postedAmountMinor}, lost ${summary.ledger.lost}, duplicated ${summary.ledger.duplicated}, sum of balances ${summary.ledger.sumOfBalancesMinor}`,
    ...summary.invariants.map((i) => `  ${i.violations === 0 ? 'ok  ' : 'FAIL'} ${i.id.padEnd(6)} ${i.name}: ${i.checks} checks, ${i.violations} violations`),
    ...(summary.thresholds ?? []).map((t) => `  ${t.pass ? 'ok  ' : 'FAIL'} threshold ${t.expression}: actual ${formatActual(t.actual)}${t.problem ? ` (${t.problem})` : ''}`),
    `  trace ${summary.traceHash}`,
  ];
  if (summary.violation) {
    lines.push(`  first violation: ${summary.violation.invariant} at t=${summary.violation.timeMs} ms: ${summary.violation.message}`);
    for (const e of summary.violation.recent) lines.push(`    t=${e.timeMs} ${e.actor}: ${e.text}`);
    lines.push(`  replay: ${summary.replay}`);
  }
  console.log(lines.join('\n'));
}

function formatActual(actual: unknown): string {
  return typeof actual === 'number' && !Number.isInteger(actual) ? actual.toPrecision(4) : String(actual);
}

/** The exit status of a run: a violation (1) wins over a failed threshold (99). */
export function exitStatusOf(summary: Pick<RunSummary, 'ok' | 'thresholds'>): number {
  if (!summary.ok) return EXIT_VIOLATION;
  return thresholdsPassed(summary) ? EXIT_OK : EXIT_THRESHOLD;
}

async function runCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, runFlags, durationMs);
  if (flags.help) {
    console.log(formatHelp(RUN_USAGE, 'Runs a scenario and checks every invariant and threshold. Exit 0: all held; 1: a violation or a backlog that did not drain; 2: bad input; 99: a threshold failed.', runFlags));
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
  const mode = (flags.mode as string | undefined) ?? 'virtual';
  if (mode !== 'virtual' && mode !== 'mqtt') throw new UsageError(`--mode: expected virtual or mqtt, got '${mode}'`);
  // A virtual run is synchronous: an endpoint could not answer a single scrape before the run ended.
  if (mode !== 'mqtt' && flags['metrics-port'] !== undefined) throw new UsageError(`--metrics-port: only with --mode mqtt (a virtual run holds the event loop until it ends, so nothing could be served while it goes)`);
  const file = positionals[0]!;
  const scenario = loadWithOverrides(file, flags);
  const outDir = (flags.out as string | undefined) ?? join('runs', `${scenario.name}-${scenario.seed}`);
  if (mode === 'mqtt') {
    const { runMqttCommand } = await import('../mqtt/runMqtt.ts');
    return runMqttCommand(scenario, file, outDir, flags);
  }
  // Refused before anything is built: a fleet that cannot fit would otherwise build for minutes and die in V8.
  const refusal = memoryRefusal(estimateVirtualRun(scenario));
  if (refusal) throw new UsageError(`the run does not fit in memory; nothing was run:\n${refusal}`);
  printOptions(scenario, file, outDir, mode);
  const progress = new ProgressLine(process.stderr, !flags.quiet);
  const result = runVirtual(scenario, { file, outDir, onProgress: (p) => progress.update(p) });
  progress.done();
  writeRunFiles(outDir, result);
  await writeReportQuietly(outDir);
  printVerdict(result.summary);
  console.log(`  wrote ${outDir}/summary.json, timeseries.csv, report.html`);
  return exitStatusOf(result.summary);
}

/** The report is a view of the run; a failure to draw it must not change the run's verdict. */
async function writeReportQuietly(outDir: string): Promise<void> {
  try {
    const { writeReport } = await import('../report/write.ts');
    writeReport(outDir);
  } catch (error) {
    console.error(`payfleet: report.html not written: ${(error as Error).message}`);
  }
}

const replayFlags: Record<string, FlagSpec> = { help: { kind: 'boolean', help: 'show this help' }, quiet: { kind: 'boolean', help: 'no progress line' } };

async function replayCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, replayFlags, durationMs);
  if (flags.help) {
    console.log(formatHelp('payfleet replay <run-dir>', 'Re-runs a recorded virtual run with the same scenario and seed and confirms its trace hash.', replayFlags));
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one run directory, got ${positionals.length}`);
  const dir = positionals[0]!;
  const summaryPath = join(dir, 'summary.json');
  if (!existsSync(summaryPath)) throw new UsageError(`${summaryPath}: no such file (is ${dir} a run directory?)`);
  let recorded: RunSummary;
  try {
    recorded = JSON.parse(readFileSync(summaryPath, 'utf8')) as RunSummary;
  } catch (error) {
    throw new UsageError(`${summaryPath}: not valid JSON (${(error as Error).message})`);
  }
  if (recorded.mode !== 'virtual') throw new UsageError(`${summaryPath}: mode is ${recorded.mode}; only virtual runs replay exactly`);
  if (!recorded.scenario || typeof recorded.traceHash !== 'string') throw new UsageError(`${summaryPath}: missing scenario or traceHash`);
  const { file: _file, ...scenario } = recorded.scenario;
  void _file;
  console.log(`payfleet replay ${dir}: scenario ${scenario.name}, seed ${scenario.seed}, recorded trace ${recorded.traceHash}`);
  const progress = new ProgressLine(process.stderr, !flags.quiet);
  const result = runVirtual(scenario as Scenario, { file: recorded.scenario.file, onProgress: (p) => progress.update(p) });
  progress.done();
  const same = result.summary.traceHash === recorded.traceHash;
  console.log(`  trace ${result.summary.traceHash} ${same ? 'matches' : `DIFFERS from ${recorded.traceHash}`}; verdict ${result.summary.ok ? 'OK' : 'VIOLATION'}`);
  if (!same) return EXIT_VIOLATION;
  return result.summary.ok ? EXIT_OK : EXIT_VIOLATION;
}

async function validateCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, { help: { kind: 'boolean', help: 'show this help' } }, durationMs);
  if (flags.help) {
    console.log('usage: payfleet validate <scenario.yaml>...\n\nChecks scenario files without running them; prints every problem with file, line and field.');
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('expected at least one scenario file');
  for (const file of positionals) {
    const scenario = loadScenario(file);
    console.log(`${file}: ok (${scenario.name}: ${scenario.population.terminals} terminals, ${scenario.durationMs} ms, seed ${scenario.seed})`);
  }
  return EXIT_OK;
}

async function reportCommand(argv: string[]): Promise<number> {
  const { reportCommand: command } = await import('../report/write.ts');
  return command(argv);
}

async function compareCommand(argv: string[]): Promise<number> {
  const { compareCommand: command } = await import('../report/write.ts');
  return command(argv);
}

async function brokerCommand(argv: string[]): Promise<number> {
  const { brokerCommand: command } = await import('../../broker/brokerCommand.ts');
  return command(argv);
}

async function serverCommand(argv: string[]): Promise<number> {
  const { serverCommand: command } = await import('../sd/serverProcess.ts');
  return command(argv);
}

const commands: Record<string, Command> = {
  run: { summary: 'run a scenario (virtual or mqtt mode) and check every invariant', run: runCommand },
  replay: { summary: 're-run a recorded virtual run and confirm its trace hash', run: replayCommand },
  validate: { summary: 'check scenario files without running them', run: validateCommand },
  report: { summary: 'rebuild report.html of a run directory', run: reportCommand },
  compare: { summary: 'put two runs side by side', run: compareCommand },
  broker: { summary: 'run the embedded MQTT broker (aedes)', run: brokerCommand },
  server: { summary: 'run a payment-server process for a range of shards', run: serverCommand },
  http: { summary: "serve the payment servers' HTTP interface over a scenario's ledger", run: httpCommand },
};

async function httpCommand(argv: string[]): Promise<number> {
  const { httpCommand: command } = await import('../http/command.ts');
  return command(argv);
}

/** The built-in commands, then those registered from above sim/ (bin/payfleet.mjs imports load/commands.ts). */
function allCommands(): Record<string, Command> {
  return { ...commands, ...Object.fromEntries(registeredCommands()) };
}

function mainHelp(): string {
  const all = allCommands();
  const width = Math.max(...Object.keys(all).map((c) => c.length));
  return [
    'usage: payfleet <command> [options]   (payfleet <command> --help for its options)',
    '',
    ...Object.entries(all).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Exit status: 0 every invariant held; 1 a violation or a backlog that did not drain; 2 bad input; 99 a threshold failed.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === 'help' || name === '-h') {
    console.log(mainHelp());
    return name ? EXIT_OK : EXIT_BAD_INPUT;
  }
  const command = allCommands()[name];
  try {
    if (!command) throw new UsageError(`unknown command '${name}'\n\n${mainHelp()}`);
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`payfleet ${name}: ${error.message}`);
      return EXIT_BAD_INPUT;
    }
    if (error instanceof ScenarioError) {
      console.error(`payfleet ${name}: the scenario is not valid; nothing was run:\n${error.message}`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
}
