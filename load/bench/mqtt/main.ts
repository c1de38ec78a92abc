// Goal: `npm run bench:mqtt` — the mqtt mode's capacity on this machine, in one run: how many terminals stay
// connected, payment round trips/s and p50/p99 through the harness against a bare mqtt.js client pair through the
// same broker (the baseline, measured in the same run), memory per connected terminal in the swarm processes,
// and a reconnect storm (every terminal loses coverage, pays offline, and regains coverage at once): seconds until
// all are reconnected and the backlog is drained, and money lost, from the same end checks as any run.
// Method: the embedded broker as its own process; the baseline against it first; then the real harness
// (`MqttCoordinator`: payment-server processes with SQLite ledgers, swarm worker processes with one mqtt.js
// connection per terminal) on that same broker, with this module as the driver of its safety phase (see
// sim/mqtt/benchCommands.ts). Targets are printed beside the figures, never asserted; the exit status is 1
// only when an invariant broke (money lost or paid twice), 2 for a bad flag.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defineFlags, parseArgs, formatHelp, UsageError } from '../../../sim/cli/args.ts';
import { loadScenario, withOverrides } from '../../../sim/scenario/load.ts';
import { MqttCoordinator } from '../../../sim/mqtt/coordinator.ts';
import type { BenchControl } from '../../../sim/mqtt/benchControl.ts';
import { ManagedProcess, killAllChildren } from '../../../sim/mqtt/processes.ts';
import { newSecret } from '../../../broker/credentials.ts';
import type { BenchProbe } from '../../../sim/mqtt/protocol.ts';
import type { RunSummary } from '../../../sim/run/summary.ts';
import { bareConnectStorm, bareRoundTrips, figuresOf, type RoundTripFigures } from './bareRoundTrips.ts';
import { terminalId } from '../../../sim/core/population.ts';

const SCENARIO_FILE = resolve(import.meta.dirname, '../../scenarios/bench-mqtt.yaml');
const TARGET_TERMINALS = 10_000;
const TARGET_RATIO = 0.6;
const TARGET_RSS_PER_TERMINAL_BYTES = 60 * 1000;
const PROBE_EVERY_MS = 100;

const FLAGS = defineFlags({
  terminals: { kind: 'int', help: 'Terminals connected at once.', defaultText: '10000' },
  workers: { kind: 'int', help: 'Swarm worker processes (one process holds fewer than 10,000 sockets here).', defaultText: '2' },
  concurrency: { kind: 'string', help: 'Payments in flight, comma-separated; each is measured for --seconds.', defaultText: '1,64,256' },
  seconds: { kind: 'number', help: 'Real seconds of each closed loop (harness and baseline).', defaultText: '10' },
  'storm-payments': { kind: 'int', help: 'Offline payments each terminal makes during the storm.', defaultText: '1' },
  'storm-timeout': { kind: 'number', help: 'Real seconds the storm may take to reconnect and drain before it is reported as not drained.', defaultText: '300' },
  crypto: { kind: 'string', oneOf: ['ed25519', 'sim'], help: "Signatures of requests and answers: ed25519 (real, the cost of the system under test) or sim (cheap, so the harness's own cost shows).", defaultText: 'sim' },
  synchronous: { kind: 'string', oneOf: ['full', 'normal'], help: "The servers' SQLite durability: full (a commit survives power loss) or normal (survives a killed process).", defaultText: 'full' },
  out: { kind: 'string', help: 'Directory of the harness run (ledgers, logs, summary.json) and bench.json.', defaultText: 'runs/bench-mqtt' },
  help: { kind: 'boolean', short: 'h', help: 'This text.' },
});

const USAGE = 'npm run bench:mqtt -- [options]';

interface BenchOptions {
  terminals: number;
  workers: number;
  concurrencies: number[];
  seconds: number;
  stormPayments: number;
  stormTimeoutMs: number;
  crypto: 'ed25519' | 'sim';
  synchronous: 'full' | 'normal';
  outDir: string;
}

function options(argv: readonly string[]): BenchOptions | undefined {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const positive = (name: 'terminals' | 'workers' | 'seconds' | 'storm-payments' | 'storm-timeout', fallback: number): number => {
    const value = flags[name] ?? fallback;
    if (!(value > 0)) throw new UsageError(`--${name}: expected a positive number, got '${value}'`, name);
    return value;
  };
  const concurrencyText = flags.concurrency ?? '1,64,256';
  const concurrencies = concurrencyText.split(',').map((part) => Number(part.trim()));
  if (concurrencies.some((c) => !Number.isInteger(c) || c < 1)) throw new UsageError(`--concurrency: expected positive integers separated by commas, got '${concurrencyText}'`, 'concurrency');
  const terminals = positive('terminals', TARGET_TERMINALS);
  const workers = positive('workers', 2);
  if (concurrencies.some((c) => c > terminals)) throw new UsageError(`--concurrency: each value must be at most --terminals (${terminals}), got '${concurrencyText}'`, 'concurrency');
  return {
    terminals,
    workers,
    crypto: flags.crypto ?? 'sim',
    synchronous: flags.synchronous ?? 'full',
    concurrencies,
    seconds: positive('seconds', 10),
    stormPayments: positive('storm-payments', 1),
    stormTimeoutMs: positive('storm-timeout', 300) * 1000,
    outDir: resolve(flags.out ?? 'runs/bench-mqtt'),
  };
}

/** Resident memory of a process, from /proc (Linux); undefined elsewhere or once it is gone. */
function rssOfPid(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const mib = (bytes: number | undefined): string => (bytes === undefined ? '?' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`);
const kb = (bytes: number): string => `${(bytes / 1000).toFixed(1)} KB`;
const met = (ok: boolean): string => (ok ? 'met' : 'NOT MET');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sumProbes(probes: readonly BenchProbe[]): BenchProbe {
  return probes.reduce(
    (a, p) => ({
      linksUp: a.linksUp + p.linksUp,
      expectedLinks: a.expectedLinks + p.expectedLinks,
      unacknowledged: a.unacknowledged + p.unacknowledged,
      ordersInFlight: a.ordersInFlight || p.ordersInFlight,
      rssBytes: a.rssBytes + p.rssBytes,
      heapUsedBytes: a.heapUsedBytes + p.heapUsedBytes,
    }),
    { linksUp: 0, expectedLinks: 0, unacknowledged: 0, ordersInFlight: false, rssBytes: 0, heapUsedBytes: 0 },
  );
}

interface HarnessLoop extends RoundTripFigures {
  approved: number;
  byReason: Record<string, number>;
  byPath: Record<string, number>;
}

interface StormFigures {
  terminals: number;
  offlineApproved: number;
  offlineApprovedAmountMinor: number;
  offlineDeclined: Record<string, number>;
  secondsToAllDown: number | undefined;
  secondsToReconnect: number | undefined;
  secondsToDrain: number | undefined;
}

interface DriverFigures {
  startupSeconds: number;
  connected: number;
  endpoints: number;
  workerRssBytes: number;
  workerRssBeforeFleetBytes: number;
  workerRssAfterLoopsBytes: number;
  workerHeapAtStartBytes: number;
  workerHeapAfterLoopsBytes: number;
  brokerRssBytes: number | undefined;
  serverRssBytes: Array<number | undefined>;
  loops: HarnessLoop[];
  storm: StormFigures | undefined;
}

/** Polls the workers until `done` holds for their summed probe, or the time is up; returns seconds, or undefined. */
async function waitFor(control: BenchControl, fromMs: number, timeoutMs: number, done: (p: BenchProbe) => boolean): Promise<number | undefined> {
  for (;;) {
    const probe = sumProbes(await control.all({ kind: 'probe' }));
    const now = performance.now();
    if (done(probe)) return (now - fromMs) / 1000;
    if (now - fromMs > timeoutMs) return undefined;
    await sleep(PROBE_EVERY_MS);
  }
}

function driver(o: BenchOptions, figures: DriverFigures, startedAtMs: number, log: (line: string) => void, brokerPid: number | undefined) {
  return async (control: BenchControl): Promise<void> => {
    figures.startupSeconds = (performance.now() - startedAtMs) / 1000;
    figures.connected = control.ready.reduce((sum, r) => sum + r.linksUp, 0);
    figures.endpoints = control.ready.reduce((sum, r) => sum + r.endpoints, 0);
    figures.workerRssBytes = control.ready.reduce((sum, r) => sum + r.rssBytes, 0);
    figures.workerRssBeforeFleetBytes = control.ready.reduce((sum, r) => sum + r.rssBeforeFleetBytes, 0);
    figures.workerHeapAtStartBytes = sumProbes(await control.all({ kind: 'probe', collectGarbage: true })).heapUsedBytes;
    figures.brokerRssBytes = rssOfPid(brokerPid);
    figures.serverRssBytes = control.pids.servers.map(rssOfPid);
    log(`harness: ${figures.connected}/${figures.endpoints} terminals connected ${figures.startupSeconds.toFixed(1)} s after the start; swarm RSS ${mib(figures.workerRssBytes)}`);

    const workers = control.ready.length;
    for (const concurrency of o.concurrencies) {
      // The payments in flight are split between the workers, as the terminals are.
      const shareOf = (i: number) => Math.floor(concurrency / workers) + (i < concurrency % workers ? 1 : 0);
      const replies = await control.all((i) => ({ kind: 'closedLoop' as const, app: 'remote', concurrency: shareOf(i), durationRealMs: o.seconds * 1000 }));
      const latencies = replies.flatMap((r) => r.latenciesRealMs);
      const elapsedMs = Math.max(...replies.map((r) => r.elapsedRealMs));
      const loop: HarnessLoop = { ...figuresOf(concurrency, latencies, elapsedMs), approved: 0, byReason: {}, byPath: {} };
      for (const r of replies) {
        loop.approved += r.approved;
        for (const [k, n] of Object.entries(r.byReason)) loop.byReason[k] = (loop.byReason[k] ?? 0) + n;
        for (const [k, n] of Object.entries(r.byPath)) loop.byPath[k] = (loop.byPath[k] ?? 0) + n;
      }
      figures.loops.push(loop);
      log(`harness: ${concurrency} in flight: ${loop.perSecond.toFixed(0)} payments/s, p50 ${loop.p50Ms.toFixed(1)} ms, p99 ${loop.p99Ms.toFixed(1)} ms (${loop.approved}/${loop.roundTrips} approved)`);
    }
    const afterLoops = sumProbes(await control.all({ kind: 'probe', collectGarbage: true }));
    figures.workerRssAfterLoopsBytes = afterLoops.rssBytes;
    figures.workerHeapAfterLoopsBytes = afterLoops.heapUsedBytes;

    // The storm: everyone out of coverage, a payment each offline, everyone back at once.
    const downAtMs = performance.now();
    await control.all({ kind: 'coverage', inCoverage: false });
    const secondsToAllDown = await waitFor(control, downAtMs, 60_000, (p) => p.linksUp === 0);
    const paid = await control.all({ kind: 'payEach', app: 'offline', perTerminal: o.stormPayments });
    const storm: StormFigures = {
      terminals: figures.endpoints,
      offlineApproved: paid.reduce((sum, r) => sum + r.approved, 0),
      offlineApprovedAmountMinor: paid.reduce((sum, r) => sum + r.approvedAmountMinor, 0),
      offlineDeclined: {},
      secondsToAllDown,
      secondsToReconnect: undefined,
      secondsToDrain: undefined,
    };
    for (const r of paid) for (const [k, n] of Object.entries(r.byReason)) storm.offlineDeclined[k] = (storm.offlineDeclined[k] ?? 0) + n;
    log(`storm: all ${storm.terminals} terminals out of coverage; ${storm.offlineApproved} offline payments approved (${storm.offlineApprovedAmountMinor} minor units at risk); coverage back for all`);
    const backAtMs = performance.now();
    await control.all({ kind: 'coverage', inCoverage: true });
    storm.secondsToReconnect = await waitFor(control, backAtMs, o.stormTimeoutMs, (p) => p.linksUp >= p.expectedLinks);
    storm.secondsToDrain = await waitFor(control, backAtMs, o.stormTimeoutMs, (p) => p.linksUp >= p.expectedLinks && p.unacknowledged === 0 && !p.ordersInFlight);
    figures.storm = storm;
    log(`storm: reconnected in ${storm.secondsToReconnect?.toFixed(1) ?? 'NOT within the time'} s, backlog drained in ${storm.secondsToDrain?.toFixed(1) ?? 'NOT within the time'} s`);
  };
}

function printReport(o: BenchOptions, baseline: RoundTripFigures[], fanOut: RoundTripFigures[], bareStormSeconds: number | undefined, figures: DriverFigures, summary: RunSummary, out: (line: string) => void): void {
  const connected = figures.connected;
  const rssPerTerminal = connected > 0 ? figures.workerRssBytes / connected : 0;
  const marginalPerTerminal = connected > 0 ? (figures.workerRssBytes - figures.workerRssBeforeFleetBytes) / connected : 0;
  const storm = figures.storm;
  const paymentsInLoops = figures.loops.reduce((sum, loop) => sum + loop.roundTrips, 0);
  const lines = [
    '',
    `payfleet bench:mqtt — ${o.terminals} terminals, ${o.workers} swarm processes, embedded aedes broker, ${summary.scenario.name}, crypto ${o.crypto}, SQLite synchronous ${o.synchronous}`,
    '',
    `connected terminals    ${connected}/${figures.endpoints} in ${figures.startupSeconds.toFixed(1)} s from start (servers, workers, keys, connections)   target ${TARGET_TERMINALS}: ${met(connected >= TARGET_TERMINALS)}`,
    `RSS per terminal       ${kb(rssPerTerminal)} (swarm processes ${mib(figures.workerRssBytes)} / ${connected}); ${kb(marginalPerTerminal)} above the processes' own ${mib(figures.workerRssBeforeFleetBytes)}   target ≤ ${kb(TARGET_RSS_PER_TERMINAL_BYTES)}: ${met(rssPerTerminal <= TARGET_RSS_PER_TERMINAL_BYTES)}`,
    `                       after the payment loops: ${kb(connected > 0 ? figures.workerRssAfterLoopsBytes / connected : 0)} per terminal (live heap ${mib(figures.workerHeapAtStartBytes)} → ${mib(figures.workerHeapAfterLoopsBytes)} over ${paymentsInLoops} payments); broker ${mib(figures.brokerRssBytes)}, servers ${figures.serverRssBytes.map(mib).join(', ')}`,
    '',
    `round trips (closed loop, ${o.seconds} s each)   harness: payment order → proxy → broker → server (signature, SQLite commit) → proxy → decision`,
    `                                       baseline: bare mqtt.js request → broker → bare responder → broker → requester (one requester: the client pair)`,
    `                                       fan-out: the same bare exchange from one requester connection per payment in flight`,
    `  in flight   harness /s   p50 ms   p99 ms   baseline /s   p50 ms   p99 ms   ratio   target ≥ ${TARGET_RATIO * 100}%   fan-out /s   ratio`,
  ];
  for (const loop of figures.loops) {
    const base = baseline.find((b) => b.concurrency === loop.concurrency);
    const spread = fanOut.find((b) => b.concurrency === loop.concurrency);
    const ratio = base && base.perSecond > 0 ? loop.perSecond / base.perSecond : 0;
    const spreadRatio = spread && spread.perSecond > 0 ? loop.perSecond / spread.perSecond : 0;
    lines.push(
      `  ${String(loop.concurrency).padStart(9)}   ${loop.perSecond.toFixed(0).padStart(10)}   ${loop.p50Ms.toFixed(1).padStart(6)}   ${loop.p99Ms.toFixed(1).padStart(6)}   ${(base?.perSecond ?? 0).toFixed(0).padStart(11)}   ${(base?.p50Ms ?? 0).toFixed(1).padStart(6)}   ${(base?.p99Ms ?? 0).toFixed(1).padStart(6)}   ${(ratio * 100).toFixed(0).padStart(4)}%   ${met(ratio >= TARGET_RATIO).padEnd(11)}   ${(spread?.perSecond ?? 0).toFixed(0).padStart(10)}   ${(spreadRatio * 100).toFixed(0).padStart(4)}%`,
    );
    const declined = Object.entries(loop.byReason).map(([k, n]) => `${k} ${n}`).join(', ');
    if (declined) lines.push(`              declined: ${declined}`);
  }
  lines.push('');
  if (storm) {
    lines.push(
      `reconnect storm        ${storm.terminals} terminals out of coverage (all sockets closed in ${storm.secondsToAllDown?.toFixed(1) ?? 'NOT within 60'} s), ${storm.offlineApproved} offline payments (${storm.offlineApprovedAmountMinor} minor units), coverage back for all at once`,
      `                       all reconnected after ${storm.secondsToReconnect?.toFixed(1) ?? 'NOT within the time'} s; backlog drained after ${storm.secondsToDrain?.toFixed(1) ?? 'NOT within the time'} s`,
      `                       baseline: ${o.terminals} bare mqtt.js clients connecting at once were all connected and subscribed after ${bareStormSeconds?.toFixed(1) ?? 'NOT within the time'} s`,
    );
    const declined = Object.entries(storm.offlineDeclined).map(([k, n]) => `${k} ${n}`).join(', ');
    if (declined) lines.push(`                       offline payments declined: ${declined}`);
  }
  const ledger = summary.ledger;
  lines.push(
    `money (end checks)     approved ${ledger.approvedAmountMinor}, posted ${ledger.postedAmountMinor}; lost ${ledger.lost} transactions, duplicated ${ledger.duplicated}; sum of balances ${ledger.sumOfBalancesMinor}   target nothing lost: ${met(ledger.lost === 0 && ledger.duplicated === 0 && summary.ok)}`,
    ...summary.invariants.filter((i) => i.violations > 0).map((i) => `  FAIL ${i.id} ${i.name}: ${i.violations} violations`),
    `verdict                ${summary.ok ? 'OK' : 'VIOLATION'} (${summary.invariants.map((i) => `${i.id} ${i.checks}`).join(', ')} checks)`,
  );
  out(lines.join('\n'));
}

export async function main(argv: readonly string[], out: (line: string) => void = (line) => console.log(line)): Promise<number> {
  let o: BenchOptions | undefined;
  try {
    o = options(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench:mqtt: ${error.message}\n\n${formatHelp(USAGE, 'The mqtt mode\'s capacity against a bare mqtt.js baseline.', FLAGS)}`);
    return 2;
  }
  if (!o) {
    out(formatHelp(USAGE, 'The mqtt mode\'s capacity against a bare mqtt.js baseline.', FLAGS));
    return 0;
  }
  const scenario = { ...withOverrides(loadScenario(SCENARIO_FILE), { terminals: o.terminals }), crypto: o.crypto };
  out(
    [
      `payfleet bench:mqtt`,
      `  scenario=${SCENARIO_FILE} seed=${scenario.seed} terminals=${o.terminals} workers=${o.workers} shards=${scenario.population.shards} crypto=${scenario.crypto} synchronous=${o.synchronous}`,
      `  concurrency=${o.concurrencies.join(',')} seconds=${o.seconds} storm-payments=${o.stormPayments} storm-timeout=${o.stormTimeoutMs / 1000}s out=${o.outDir}`,
    ].join('\n'),
  );
  mkdirSync(o.outDir, { recursive: true });
  const secret = newSecret();
  const broker = new ManagedProcess({ name: 'broker', args: ['broker', '--port', '0'], env: { ...process.env, PAYFLEET_BROKER_SECRET: secret }, ready: /listening on (mqtt:\/\/\S+)/, logDir: join(o.outDir, 'bench-logs') });
  const onSignal = (): void => {
    killAllChildren();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  try {
    const url = (await broker.start())[1]!;
    out(`broker: ${url} (embedded aedes, pid ${broker.pid})`);
    const baseline: RoundTripFigures[] = [];
    const fanOut: RoundTripFigures[] = [];
    for (const concurrency of o.concurrencies) {
      const pair = await bareRoundTrips(url, secret, ['bench-requester'], concurrency, o.seconds * 1000);
      baseline.push(pair);
      out(`baseline: ${concurrency} in flight, one requester: ${pair.perSecond.toFixed(0)} round trips/s, p50 ${pair.p50Ms.toFixed(1)} ms, p99 ${pair.p99Ms.toFixed(1)} ms`);
      // The same load from one connection per payment in flight, as the harness's closed loop has it: the broker
      // can no longer batch many packets into one socket write.
      const spread = await bareRoundTrips(url, secret, Array.from({ length: concurrency }, (_, i) => terminalId(i)), concurrency, o.seconds * 1000);
      fanOut.push(spread);
      out(`baseline: ${concurrency} in flight, ${concurrency} requesters: ${spread.perSecond.toFixed(0)} round trips/s, p50 ${spread.p50Ms.toFixed(1)} ms, p99 ${spread.p99Ms.toFixed(1)} ms`);
    }
    // The same identities as the harness's terminals, so the broker does the same work per connection.
    const terminalIds = Array.from({ length: o.terminals }, (_, i) => terminalId(i));
    const bareStormSeconds = await bareConnectStorm(url, secret, terminalIds, o.stormTimeoutMs);
    out(`baseline: ${o.terminals} bare mqtt.js clients connecting at once: all connected and subscribed after ${bareStormSeconds?.toFixed(1) ?? 'NOT within the time'} s`);
    const figures: DriverFigures = { startupSeconds: 0, connected: 0, endpoints: 0, workerRssBytes: 0, workerRssBeforeFleetBytes: 0, workerRssAfterLoopsBytes: 0, workerHeapAtStartBytes: 0, workerHeapAfterLoopsBytes: 0, brokerRssBytes: undefined, serverRssBytes: [], loops: [], storm: undefined };
    const startedAtMs = performance.now();
    const coordinator = new MqttCoordinator({
      scenario,
      outDir: o.outDir,
      timeScale: 1,
      brokerUrl: url,
      secret,
      workers: o.workers,
      connectTimeoutRealMs: 600_000,
      serverSynchronous: o.synchronous,
      driver: driver(o, figures, startedAtMs, out, broker.pid),
      log: (line) => out(line.trim() ? `harness: ${line.trim()}` : line),
    });
    const result = await coordinator.run();
    printReport(o, baseline, fanOut, bareStormSeconds, figures, result.summary, out);
    writeFileSync(join(o.outDir, 'bench.json'), `${JSON.stringify({ options: o, baseline, fanOut, bareStormSeconds, harness: figures, summary: { ok: result.summary.ok, ledger: result.summary.ledger, invariants: result.summary.invariants } }, null, 2)}\n`);
    writeFileSync(join(o.outDir, 'summary.json'), `${JSON.stringify(result.summary, null, 2)}\n`);
    out(`wrote ${join(o.outDir, 'bench.json')} and summary.json (process logs in ${join(o.outDir, 'logs')})`);
    return result.summary.ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    await broker.stop();
    killAllChildren();
  }
}

// `npm run bench:mqtt` runs this file and nothing imports it, so main runs unconditionally: a guard comparing
// process.argv[1] with import.meta.url fails wherever the path goes through a symlink (Node resolves one, not the
// other), and the bench then printed nothing and exited 0.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    killAllChildren();
    console.error(error);
    process.exit(1);
  },
);
