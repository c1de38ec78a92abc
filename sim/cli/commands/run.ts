// Goal: `payfleet run <scenario>`: run a scenario in virtual or mqtt mode, print every option it runs with (so a
// run can be repeated from its log) and its verdict, write its files, and exit with what it found.
// Method: declare and check the flags; a virtual run goes to sim/run/runVirtual.ts, an mqtt run to
// sim/mqtt/runMqtt.ts with its options already checked (broker URL, secret from PAYFLEET_BROKER_SECRET, time
// scale, metrics port, the servers' ledgers, the agents to spread it over: --agents N --listen HOST:PORT). Exit
// status: 0 every invariant held, 1 a violation or a backlog that did not drain, 2 bad input (nothing is run and
// nothing is written), 3 the environment failed (mqtt mode: an endpoint never connected, and no safety invariant
// was violated), 99 a threshold failed.

import { join } from 'node:path';
import { defineFlags, UsageError, type FlagValues } from '../args.ts';
import { defineCommand, EXIT_ENVIRONMENT, EXIT_OK, EXIT_THRESHOLD, EXIT_VIOLATION, type CliIo } from '../command.ts';
import { brokerUrlsOf, MAX_PORT, portFlag } from './brokerFlags.ts';
import { loadScenario, withOverrides } from '../../scenario/load.ts';
import type { Scenario } from '../../scenario/types.ts';
import { formatDuration } from '../../scenario/durations.ts';
import { verdictOf, type RunSummary } from '../../run/summary.ts';
import type { MqttRunOptions } from '../../mqtt/runMqtt.ts';
import { ledgerSpecOf } from './server.ts';
import type { LedgerSpec } from '../../sd/ledgerSpec.ts';

/**
 * The servers' ledgers of an mqtt run: `sqlite` (a file per server in the out directory, as without the flag:
 * undefined) or a PostgreSQL database without ?schema= (the run names a schema per server after itself and its
 * shards). Anything else is a UsageError naming --ledger.
 */
function runLedgerOf(text: string): LedgerSpec | undefined {
  if (text === 'sqlite') return undefined;
  const ledger = ledgerSpecOf('ledger', text);
  // Each server of the run has its own ledger: a file each in the out directory, or a schema each in PostgreSQL.
  if (ledger.engine !== 'postgres') throw new UsageError(`--ledger: expected sqlite (a file per server in the out directory) or postgres://…, got '${text}'`, 'ledger');
  if (ledger.schema !== undefined) throw new UsageError(`--ledger: a run names each server's schema itself (after the run and its shards); give the URL without ?schema=`, 'ledger');
  return ledger;
}

/** HOST:PORT for --listen (an IPv6 host in brackets); a UsageError naming the flag otherwise. */
export function listenAddressOf(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > MAX_PORT) throw new UsageError(`--listen: expected HOST:PORT, such as 10.0.0.1:7400 (port 0: any free one), got '${text}'`, 'listen');
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/** How long a run waits for its agents by default. */
const AGENTS_TIMEOUT_DEFAULT_MS = 120_000;

export const runFlags = defineFlags({
  mode: { kind: 'string', oneOf: ['virtual', 'mqtt'], help: 'virtual (deterministic, virtual time) or mqtt (real broker, real time)', defaultText: 'virtual' },
  seed: { kind: 'int', help: 'seed of every random draw', defaultText: "the scenario's" },
  terminals: { kind: 'int', help: 'number of terminals', defaultText: "the scenario's" },
  duration: { kind: 'duration', help: 'length of the safety phase, e.g. 30m, 24h', defaultText: "the scenario's" },
  out: { kind: 'string', placeholder: 'DIR', help: 'directory for summary.json, timeseries.csv, report.html', defaultText: 'runs/<scenario>-<seed> (mqtt: …-mqtt)' },
  quiet: { kind: 'boolean', help: 'no progress line' },
  'no-hibernate': {
    kind: 'boolean',
    help: "virtual mode: keep every terminal's actors alive all run instead of letting idle ones hibernate (the same run to the event, more memory; for comparison)",
    defaultText: 'idle terminals hibernate',
  },
  broker: {
    kind: 'string',
    parse: (text) => brokerUrlsOf('broker', text),
    placeholder: 'URL[,URL…]',
    help:
      'mqtt mode: external broker(s), e.g. mqtt://127.0.0.1:1883 (secret from PAYFLEET_BROKER_SECRET); several separated by commas: terminals spread over them by index and fail over to the next, servers subscribe on each',
    defaultText: 'an embedded aedes broker in its own process',
  },
  'server-broker': {
    kind: 'string',
    parse: (text) => brokerUrlsOf('server-broker', text),
    placeholder: 'URL[,URL…]',
    help: "mqtt mode, with --broker: the brokers the payment servers subscribe on instead, when they are clustered with --broker's (payfleet broker --cluster); terminals fail over to them too",
    defaultText: "--broker's",
  },
  'time-scale': { kind: 'number', help: 'mqtt mode: simulated ms per real ms (60 plays an hour in a minute)', defaultText: '1' },
  ledger: {
    kind: 'string',
    parse: runLedgerOf,
    placeholder: 'SPEC',
    help: "mqtt mode: the servers' ledgers, sqlite (a file each in the out directory) or postgres://user@host:port/db (a schema each, named after the run and its shards)",
    defaultText: 'sqlite',
  },
  agents: { kind: 'int', min: 1, help: 'mqtt mode: spread the run over N `payfleet agent` processes (on other hosts); waits for them, then places every worker and server on them', defaultText: 'none: everything runs here' },
  listen: { kind: 'string', parse: listenAddressOf, placeholder: 'HOST:PORT', help: 'with --agents: where to listen for them, an address they reach (port 0: any free one; the ws:// URL is printed)', defaultText: '127.0.0.1:0' },
  'agents-timeout': { kind: 'duration', help: 'with --agents: how long to wait for them before giving up (exit 2)', defaultText: '2m' },
  'ledger-pgdata': {
    kind: 'string',
    placeholder: 'DIR',
    help: "mqtt mode with --ledger postgres://…: the data directory of that PostgreSQL (as pg_ctl -D takes it), so the scenario's databaseCrash faults can crash it (pg_ctl stop -m immediate) and start it again (pg_ctl restart, its last options; its log then goes to <out>/logs/postgres.log)",
    defaultText: 'no control: a databaseCrash fault is refused',
  },
  'metrics-port': portFlag(
    'mqtt mode only: serve live Prometheus metrics at http://127.0.0.1:<n>/metrics while the run goes (0: any free port; the URL is printed). A virtual run holds the event loop until it ends, so it serves none',
    'no endpoint',
  ),
});

type RunFlags = FlagValues<typeof runFlags>;

function loadWithOverrides(file: string, flags: RunFlags): Scenario {
  return withOverrides(loadScenario(file), { seed: flags.seed, terminals: flags.terminals, duration: flags.duration });
}

/** The mqtt run's options from the flags; throws UsageError naming the flag. */
export function mqttOptionsOf(flags: RunFlags, outDir: string, env: Record<string, string | undefined>): MqttRunOptions {
  const brokerUrl = flags.broker;
  const secret = brokerUrl === undefined && flags.agents === undefined ? undefined : env.PAYFLEET_BROKER_SECRET;
  if (brokerUrl !== undefined && !secret) {
    throw new UsageError(`--broker: set PAYFLEET_BROKER_SECRET to the secret the broker's credentials were issued with (its password and ACL files can be written with it)`, 'broker');
  }
  const serverBrokerUrl = flags['server-broker'];
  if (serverBrokerUrl !== undefined && brokerUrl === undefined) {
    throw new UsageError(`--server-broker: only with --broker (the embedded broker is one broker: the servers are on it)`, 'server-broker');
  }
  if (flags.agents !== undefined && !secret) {
    throw new UsageError(`--agents: set PAYFLEET_BROKER_SECRET to the run's secret, here and for every agent (their token derives from it)`, 'agents');
  }
  if (flags.agents === undefined && flags.listen !== undefined) throw new UsageError(`--listen: only with --agents N (it is where the agents connect)`, 'listen');
  if (flags.agents === undefined && flags['agents-timeout'] !== undefined) throw new UsageError(`--agents-timeout: only with --agents N`, 'agents-timeout');
  const listen = flags.listen ?? { host: '127.0.0.1', port: 0 };
  const agents = flags.agents === undefined ? undefined : { count: flags.agents, host: listen.host, port: listen.port, waitRealMs: flags['agents-timeout'] ?? AGENTS_TIMEOUT_DEFAULT_MS };
  return { outDir, timeScale: flags['time-scale'] ?? 1, brokerUrl, serverBrokerUrl, secret, quiet: flags.quiet === true, metricsPort: flags['metrics-port'], ledger: flags.ledger, ledgerPgdata: flags['ledger-pgdata'], agents };
}

function printOptions(io: CliIo, scenario: Scenario, file: string, outDir: string, hibernate: boolean): void {
  const p = scenario.population;
  io.out(
    [
      `payfleet run ${file}`,
      `  mode=virtual seed=${scenario.seed} terminals=${p.terminals} pos=${p.pos.units} shards=${p.shards} crypto=${scenario.crypto}`,
      `  duration=${scenario.durationMs}ms drain=${scenario.drainMs}ms threshold=${scenario.policy.thresholdMinor} remittance=${scenario.policy.remittance.mode}`,
      `  network: loss=${scenario.network.lossProbability} dup=${scenario.network.duplicateProbability} reorder=${scenario.network.reorderProbability} latency p50/p99=${scenario.network.latency.medianMs}/${scenario.network.latency.p99Ms}ms`,
      `  coverage: on=${scenario.coverage.meanOnDurationMs}ms off=${scenario.coverage.meanOffDurationMs}ms outages=${scenario.coverage.outages.length} faults=${scenario.faults.length}`,
      `  out=${outDir}${hibernate ? '' : ' (--no-hibernate: every terminal stays awake)'}`,
    ].join('\n'),
  );
}

export function printVerdict(io: CliIo, summary: RunSummary): void {
  const o = summary.orders;
  const lines = [
    '',
    `${verdictOf(summary)}  ${summary.scenario.name} seed=${summary.seed} mode=${summary.mode}  simulated ${(summary.simulatedMs / 1000).toFixed(0)} s in ${(summary.wallMs / 1000).toFixed(1)} s wall, ${summary.events} events`,
    `  orders ${o.total}: approved ${o.approved}, declined ${o.declined}${o.failures ? ` (business ${o.failures.business}, system failures ${o.failures.system})` : ''}; by path internal ${o.byPath.internal ?? 0}, local-offline ${o.byPath.localOffline ?? 0}, local-below-threshold ${o.byPath.localBelowThreshold ?? 0}, remote ${o.byPath.remote ?? 0}`,
    `  latency local p50/p99 ${summary.latencyMs.local.p50}/${summary.latencyMs.local.p99} ms, remote p50/p99 ${summary.latencyMs.remote.p50}/${summary.latencyMs.remote.p99} ms`,
    `  remittance: ${summary.remittance.transactions} tx in ${summary.remittance.batches} batches, lag p50/p99 ${summary.remittance.lagMs.p50}/${summary.remittance.lagMs.p99} ms, peak money at risk ${summary.remittance.peakBacklogAmountMinor}, pending at end ${summary.remittance.pendingAtEnd}`,
    `  ledger: approved ${summary.ledger.approvedAmountMinor}, posted ${summary.ledger.postedAmountMinor}, lost ${summary.ledger.lost}, duplicated ${summary.ledger.duplicated}, sum of balances ${summary.ledger.sumOfBalancesMinor}${summary.ledger.topUps ? `, top-ups ${summary.ledger.topUps.count} (${summary.ledger.topUps.amountMinor} in from outside)` : ''}`,
    ...summary.invariants.map((i) => `  ${i.violations === 0 ? 'ok  ' : 'FAIL'} ${i.id.padEnd(6)} ${i.name}: ${i.checks} checks, ${i.violations} violations`),
    ...(summary.thresholds ?? []).map((t) => `  ${t.pass ? 'ok  ' : 'FAIL'} threshold ${t.expression}: actual ${formatActual(t.actual)}${t.problem ? ` (${t.problem})` : ''}`),
    `  trace ${summary.traceHash}`,
  ];
  if (summary.violation) {
    lines.push(`  first violation: ${summary.violation.invariant} at t=${summary.violation.timeMs} ms: ${summary.violation.message}`);
    for (const e of summary.violation.recent) lines.push(`    t=${e.timeMs} ${e.actor}: ${e.text}`);
    lines.push(`  replay: ${summary.replay}`);
  }
  io.out(lines.join('\n'));
}

function formatActual(actual: unknown): string {
  return typeof actual === 'number' && !Number.isInteger(actual) ? actual.toPrecision(4) : String(actual);
}

/** The exit status of a run: a violation (1) wins over a failed environment (3), which wins over a failed threshold (99). */
export function exitStatusOf(summary: Parameters<typeof verdictOf>[0] & Pick<RunSummary, 'thresholds'>): number {
  const verdict = verdictOf(summary);
  if (verdict === 'ENVIRONMENT') return EXIT_ENVIRONMENT;
  if (verdict === 'VIOLATION') return EXIT_VIOLATION;
  return (summary.thresholds ?? []).every((t) => t.pass) ? EXIT_OK : EXIT_THRESHOLD;
}

export const runCommand = defineCommand({
  summary: 'run a scenario (virtual or mqtt mode) and check every invariant',
  usage: 'payfleet run <scenario.yaml> [--mode virtual|mqtt] [--seed N] [--terminals N] [--duration 24h] [--out DIR] [--time-scale X] [--broker URL[,URL…] [--server-broker URL[,URL…]]] [--metrics-port N] [--ledger sqlite|postgres://…] [--ledger-pgdata DIR] [--agents N [--listen HOST:PORT]]',
  description: 'Runs a scenario and checks every invariant and threshold. Exit 0: all held; 1: a violation or a backlog that did not drain; 2: bad input; 3: the environment failed (mqtt mode: an endpoint never connected to the broker, and no safety invariant was violated); 99: a threshold failed.',
  flags: runFlags,
  positionals: true,
  async run({ positionals, flags }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
    const mode = flags.mode ?? 'virtual';
    // A virtual run is synchronous: an endpoint could not answer a single scrape before the run ended.
    if (mode !== 'mqtt' && flags.ledger !== undefined) {
      throw new UsageError(`--ledger: only with --mode mqtt (a virtual run keeps its ledgers in memory)`, 'ledger');
    }
    if (mode !== 'mqtt' && flags.agents !== undefined) {
      throw new UsageError(`--agents: only with --mode mqtt (a virtual run is one deterministic process)`, 'agents');
    }
    for (const flag of ['broker', 'server-broker'] as const) {
      if (mode !== 'mqtt' && flags[flag] !== undefined) throw new UsageError(`--${flag}: only with --mode mqtt (a virtual run has no broker)`, flag);
    }
    if (mode !== 'mqtt' && flags['ledger-pgdata'] !== undefined) {
      throw new UsageError(`--ledger-pgdata: only with --mode mqtt and --ledger postgres://… (a virtual run keeps its ledgers in memory)`, 'ledger-pgdata');
    }
    if (mode === 'mqtt' && flags['no-hibernate'] !== undefined) {
      throw new UsageError(`--no-hibernate: only in virtual mode (an mqtt run's terminals never hibernate)`, 'no-hibernate');
    }
    if (mode !== 'mqtt' && flags['metrics-port'] !== undefined) {
      throw new UsageError(`--metrics-port: only with --mode mqtt (a virtual run holds the event loop until it ends, so nothing could be served while it goes)`, 'metrics-port');
    }
    const file = positionals[0]!;
    const scenario = loadWithOverrides(file, flags);
    const defaultOutDir = join('runs', `${scenario.name}-${scenario.seed}`);
    if (mode === 'mqtt') {
      // Without --out, an mqtt run gets its own directory, so it never overwrites the virtual run of the same
      // scenario and seed (which `payfleet replay` can re-run; an mqtt run cannot be replayed).
      const options = mqttOptionsOf(flags, flags.out ?? `${defaultOutDir}-mqtt`, io.env);
      const { runMqttCommand, MqttRunInputError } = await import('../../mqtt/runMqtt.ts');
      try {
        return await runMqttCommand(scenario, file, options, { out: io.out, err: io.err, handleSignals: io.signal === undefined });
      } catch (error) {
        if (error instanceof MqttRunInputError) throw new UsageError(error.message, error.flag);
        throw error;
      }
    }
    // The virtual servers keep their ledgers in memory: no database to crash, and a stand-in would claim a test
    // that did not happen (sim/core/nemesis.ts).
    const databaseCrash = scenario.faults.find((f) => f.kind === 'databaseCrash');
    if (databaseCrash) {
      throw new UsageError(`${file}: faults: kind databaseCrash at ${formatDuration(databaseCrash.atMs)}: not modelled in virtual mode (its servers keep no database); run it with --mode mqtt --ledger postgres://… --ledger-pgdata DIR, or remove the fault`);
    }
    const outDir = flags.out ?? defaultOutDir;
    // Loaded here, not at the top: every `payfleet` process (a broker, a server restarted in an mqtt run) loads
    // this module, and only a virtual run needs the simulator and the report.
    const { runVirtual } = await import('../../run/runVirtual.ts');
    const { writeRunFiles } = await import('../../run/summary.ts');
    const { ProgressLine } = await import('../../run/progress.ts');
    const { estimateVirtualRun, keepHeapCompact, memoryRefusal, LIVE_BYTES_PER_AWAKE_TERMINAL } = await import('../../run/memoryBudget.ts');
    const { writeReportQuietly } = await import('../../report/write.ts');
    // Refused before anything is built: a fleet that cannot fit would otherwise build for minutes and die in V8.
    const hibernate = flags['no-hibernate'] !== true;
    const refusal = memoryRefusal(estimateVirtualRun(scenario, undefined, undefined, hibernate ? undefined : LIVE_BYTES_PER_AWAKE_TERMINAL));
    if (refusal) throw new UsageError(`the run does not fit in memory; nothing was run:\n${refusal}`);
    printOptions(io, scenario, file, outDir, hibernate);
    keepHeapCompact();
    const progress = new ProgressLine(process.stderr, !flags.quiet);
    const result = runVirtual(scenario, { file, outDir, onProgress: (p) => progress.update(p), hibernate });
    progress.done();
    writeRunFiles(outDir, result);
    writeReportQuietly(outDir, io.err);
    printVerdict(io, result.summary);
    io.out(`  wrote ${outDir}/summary.json, timeseries.csv, report.html`);
    return exitStatusOf(result.summary);
  },
});
