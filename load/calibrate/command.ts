// Goal: `payfleet calibrate [--ledger sqlite:PATH|postgres://…] [--crypto ed25519|sim] [--out calibrations/NAME.json]`
// — measure what each request kind costs a real payment server (its rules, signatures and durable group commits)
// and write the calibration file the virtual SD serves from (sim/scenario/calibration.ts), labelled with the machine.
// Method: the ledger driver of load/bench/ledgerDriver.ts (the machinery of `npm run bench:server`: the real
// group-commit actor over the real store) on a fresh ledger — a temporary SQLite file by default, a fresh schema
// (dropped after) on PostgreSQL. After a warm-up, each kind is sent one request per batch, --samples times; its
// service time is the batch's wall time less the commit's own time, kept as a quantile table. Kinds that carry a
// list are measured at 1 and at --items items; the difference gives the time per extra item. Then debits in
// batches of each --batch-sizes size give the commit's own time per batch size; their work (wall less commit)
// against their size gives, by least squares, a fixed cost per batch (the intercept), which is taken out of every
// one-per-batch service time, so that the model's batch of b costs overhead + commit(b) + b requests as the real
// one does. Every request must be answered ok (a refusal would measure the wrong path): otherwise exit 1 naming
// the kind. Exit 2 for bad input.

import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { defineFlags, formatHelp, parseArgs, UsageError } from '../../sim/cli/args.ts';
import { CALIBRATION_VERSION, CalibrationError, QUANTILES, parseCalibration, readCalibration, type CalibratedKind, type Calibration, type ServiceTimes } from '../../sim/scenario/calibration.ts';
import { formatLedgerSpec, LedgerSpecError, openLedgerStore, parseLedgerSpec, type LedgerSpec } from '../../sim/sd/ledgerSpec.ts';
import { PostgresLedgerStore } from '../../sim/sd/postgresLedgerStore.ts';
import type { SynchronousMode } from '../../sim/sd/sqliteLedgerStore.ts';
import type { ServerRequest } from '../../machines/messages.ts';
import { startLedgerDriver, type LedgerDriver } from '../bench/ledgerDriver.ts';
import { EXIT_OK, EXIT_VIOLATION } from '../../sim/run/exitStatus.ts';
import { leastSquares } from './fit.ts';
import { parseDuration } from '../../sim/scenario/durations.ts';
import { measureTestBed } from './testBed.ts';

const flags = defineFlags({
  ledger: { kind: 'string', placeholder: 'SPEC', help: 'sqlite:PATH (a file that must not exist yet) or postgres://… (a fresh schema, dropped after)', defaultText: 'a temporary SQLite file' },
  crypto: { kind: 'string', oneOf: ['ed25519', 'sim'], help: 'signatures of requests and answers (match the scenarios that use the file)', defaultText: 'ed25519' },
  synchronous: { kind: 'string', oneOf: ['full', 'normal'], help: "SQLite's durability (PostgreSQL: synchronous_commit on/off)", defaultText: 'full' },
  samples: { kind: 'int', min: 5, help: 'requests measured per kind (one per batch)', defaultText: '200' },
  items: { kind: 'int', min: 2, help: 'items per list request for the per-item time (remittances, settlements)', defaultText: '8' },
  'batch-sizes': { kind: 'string', help: 'group-commit batch sizes measured, comma-separated', defaultText: '1,2,4,8,16,32,64' },
  'server-only': { kind: 'boolean', help: "measure the server's costs only, not the test bed's CPU per remote order (broker, swarm, harness, server processes: a small real mqtt run per --test-bed-rates rate)" },
  'test-bed-only': { kind: 'string', placeholder: 'FILE', help: "measure only the test bed and write it into this existing calibration file, its server measurements kept (e.g. to add the test bed to a file measured before, or re-measure it); --crypto comes from the file" },
  'test-bed-rates': { kind: 'string', help: 'constant arrival rates (orders/s) of the test-bed runs, comma-separated, at least two', defaultText: '25,75' },
  'test-bed-window': { kind: 'string', placeholder: '<duration>', help: 'how long the arrivals of each test-bed run last (after a 2 s warm-up)', defaultText: '4s' },
  out: { kind: 'string', help: 'the calibration file written', defaultText: 'calibrations/<cores>cpu-<ledger>-<crypto>.json' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});

const USAGE = 'payfleet calibrate [--ledger sqlite:PATH|postgres://…] [--crypto ed25519|sim] [--out calibrations/NAME.json]';

/** Value at probability p of sorted samples, interpolated between neighbours. */
export function quantileOf(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const x = p * (sorted.length - 1);
  const i = Math.floor(x);
  const j = Math.min(sorted.length - 1, i + 1);
  return sorted[i]! + (sorted[j]! - sorted[i]!) * (x - i);
}

export function quantileTable(samples: readonly number[]): number[] {
  const sorted = [...samples].sort((a, b) => a - b);
  // Rounded to 0.1 µs; max(…) keeps the table non-decreasing after rounding.
  let previous = 0;
  return QUANTILES.map((p) => (previous = Math.max(previous, Math.round(quantileOf(sorted, p) * 10) / 10)));
}

function parseRates(text: string): number[] {
  const rates = text.split(',').map((part) => Number(part.trim()));
  if (rates.length < 2 || rates.some((r) => !(r > 0)) || new Set(rates).size !== rates.length) throw new UsageError(`--test-bed-rates: expected at least two different rates > 0 separated by commas, got '${text}'`, 'test-bed-rates');
  return rates;
}

function parseWindow(text: string): number {
  const parsed = parseDuration(text.trim());
  if (!parsed.ok || parsed.ms < 1_000) throw new UsageError(`--test-bed-window: expected a duration of at least 1s, got '${text}'`, 'test-bed-window');
  return parsed.ms;
}

function parseSizes(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^[1-9]\d*$/.test(p))) throw new UsageError(`--batch-sizes: expected positive integers separated by commas, got '${text}'`, 'batch-sizes');
  const sizes = [...new Set(parts.map(Number))].sort((a, b) => a - b);
  return sizes;
}

export async function calibrateCommand(argv: string[]): Promise<number> {
  const { positionals, flags: f } = parseArgs(argv, flags);
  if (f.help) {
    console.log(formatHelp(USAGE, "Measures a real payment server's cost per request kind (rules, signatures, durable group commit) and writes the calibration file that scenarios reference as servers.calibration. Exit 0: written; 1: a request was refused (the measurement would be wrong); 2: bad input.", flags));
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`expected no positional argument, got '${positionals[0]}'`);
  if (f['test-bed-only'] !== undefined) return addTestBed(f['test-bed-only'], f);
  const crypto = (f.crypto ?? 'ed25519') as 'ed25519' | 'sim';
  const synchronous = (f.synchronous ?? 'full') as SynchronousMode;
  const samples = f.samples ?? 200;
  const items = f.items ?? 8;
  const batchSizes = parseSizes(f['batch-sizes'] ?? '1,2,4,8,16,32,64');
  const testBedRates = f['server-only'] ? [] : parseRates(f['test-bed-rates'] ?? '25,75');
  const testBedWindowMs = parseWindow(f['test-bed-window'] ?? '4s');
  let spec: LedgerSpec;
  let tempDir: string | undefined;
  if (f.ledger === undefined) {
    tempDir = mkdtempSync(join(tmpdir(), 'payfleet-calibrate-'));
    spec = { engine: 'sqlite', path: join(tempDir, 'ledger.sqlite') };
  } else {
    try {
      spec = parseLedgerSpec(f.ledger);
    } catch (error) {
      if (error instanceof LedgerSpecError) throw new UsageError(`--ledger: ${error.message}`, 'ledger');
      throw error;
    }
    if (spec.engine === 'postgres') spec = { ...spec, schema: spec.schema ?? `payfleet_calibrate_${process.pid}` };
  }
  const ledgerName = spec.engine === 'sqlite' ? `sqlite-${synchronous}` : `postgres-${synchronous === 'full' ? 'sync' : 'async'}`;
  const out = f.out ?? join('calibrations', `${cpus().length}cpu-${ledgerName}-${crypto}.json`);

  const store = openLedgerStore(spec, { synchronous });
  console.log(`payfleet calibrate: ledger ${formatLedgerSpec(spec, true)} (${ledgerName}), crypto ${crypto}, ${samples} samples per kind, batch sizes ${batchSizes.join(',')}`);
  // Top-ups: while `topUps.on`, every means' agreement tops it up after each posting, and each top-up's own work is
  // timed inside its posting's transaction, from its rule's draw to the write of its transfer (its two accounts first).
  const topUps = { on: false, samplesUs: [] as number[] };
  let topUpStartedMs: number | undefined;
  const topUpRule = {
    belowMinor: Number.MAX_SAFE_INTEGER,
    amountMinor: () => {
      topUpStartedMs = performance.now();
      return 1;
    },
  };
  const putTransfer = store.putTransfer.bind(store);
  store.putTransfer = (transfer) => {
    putTransfer(transfer);
    if (topUpStartedMs !== undefined && transfer.id.startsWith('top:')) topUps.samplesUs.push((performance.now() - topUpStartedMs) * 1000);
    topUpStartedMs = undefined;
  };
  const driver = startLedgerDriver(store, { scheme: crypto, means: 400, topUpRules: () => (topUps.on ? topUpRule : undefined) });
  try {
    const calibration = await measure(driver, { crypto, samples, items, batchSizes, ledger: `${ledgerName} (${spec.engine === 'sqlite' ? 'SQLite file, WAL' : 'PostgreSQL'})`, topUps });
    driver.stop();
    if (testBedRates.length > 0) {
      // The test bed after the server alone, so neither measurement shares the cores with the other.
      console.log(`  test bed: a real mqtt run (embedded broker, 1 server process, swarm workers) of remote debits at ${testBedRates.join(', ')} orders/s, 2 s warm-up + ${testBedWindowMs / 1000} s each`);
      const outDir = mkdtempSync(join(tmpdir(), 'payfleet-calibrate-testbed-'));
      try {
        calibration.testBed = await measureTestBed({ crypto, rates: testBedRates, warmUpMs: 2_000, windowMs: testBedWindowMs, outDir, log: (line) => console.log(line) });
      } finally {
        rmSync(outDir, { recursive: true, force: true });
      }
    }
    parseCalibration(calibration);
    mkdirSync(dirname(out) === '' ? '.' : dirname(out), { recursive: true });
    // Through a temporary name and a rename: an interrupted calibration never leaves half a file.
    writeFileSync(`${out}.tmp`, `${JSON.stringify(calibration, null, 2)}\n`);
    renameSync(`${out}.tmp`, out);
    console.log(formatCalibration(calibration));
    console.log(`\n  wrote ${out}`);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof RefusedDuringCalibration) {
      console.error(`payfleet calibrate: ${error.message}`);
      return EXIT_VIOLATION;
    }
    throw error;
  } finally {
    driver.stop();
    if (store instanceof PostgresLedgerStore && spec.engine === 'postgres') store.connection.script(`DROP SCHEMA ${spec.schema} CASCADE`);
    store.close();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

/** `--test-bed-only FILE`: the test bed measured with the file's crypto, written into the file (its other fields kept). */
async function addTestBed(file: string, f: { crypto?: string; 'server-only'?: boolean; 'test-bed-rates'?: string; 'test-bed-window'?: string }): Promise<number> {
  if (f['server-only']) throw new UsageError('--test-bed-only measures the test bed only: --server-only would measure nothing', 'test-bed-only');
  let calibration: Calibration;
  try {
    calibration = readCalibration(file);
  } catch (error) {
    if (error instanceof CalibrationError) throw new UsageError(`--test-bed-only: ${error.message}`, 'test-bed-only');
    throw error;
  }
  if (f.crypto !== undefined && f.crypto !== calibration.crypto) throw new UsageError(`--test-bed-only: ${file} was measured with crypto ${calibration.crypto}, not ${f.crypto}`, 'crypto');
  const rates = parseRates(f['test-bed-rates'] ?? '25,75');
  const windowMs = parseWindow(f['test-bed-window'] ?? '4s');
  console.log(`payfleet calibrate: the test bed only, into ${file} (crypto ${calibration.crypto}): remote debits at ${rates.join(', ')} orders/s, 2 s warm-up + ${windowMs / 1000} s each`);
  const outDir = mkdtempSync(join(tmpdir(), 'payfleet-calibrate-testbed-'));
  try {
    calibration.testBed = await measureTestBed({ crypto: calibration.crypto, rates, warmUpMs: 2_000, windowMs, outDir, log: (line) => console.log(line) });
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  parseCalibration(calibration);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(calibration, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  console.log(formatCalibration(calibration));
  console.log(`\n  wrote ${file}`);
  return EXIT_OK;
}

class RefusedDuringCalibration extends Error {}

interface MeasureOptions { crypto: 'ed25519' | 'sim'; samples: number; items: number; batchSizes: number[]; ledger: string; topUps: { on: boolean; samplesUs: number[] } }

async function measure(driver: LedgerDriver, o: MeasureOptions): Promise<Calibration> {
  const { make } = driver;
  /** Service times (µs) of `count` requests sent one per batch; the requests are made before any is timed. */
  const oneByOne = async (kind: string, makeOne: () => ServerRequest | undefined, count: number): Promise<number[]> => {
    const requests = Array.from({ length: count }, makeOne).filter((r): r is ServerRequest => r !== undefined);
    const times: number[] = [];
    for (const request of requests) {
      const timing = await driver.send([request]);
      if (timing.codes[0] !== 'ok') throw new RefusedDuringCalibration(`a ${kind} request was answered ${timing.codes[0]}, not ok: the measurement would time a refusal`);
      times.push(Math.max(0, timing.wallUs - timing.commitUs));
    }
    return times;
  };
  // Warm-up: the JIT, the store's caches and the file's first pages, untimed.
  const warm = Array.from({ length: 64 }, () => make.debit());
  for (let i = 0; i < warm.length; i += 8) await driver.send(warm.slice(i, i + 8));

  const n = o.samples;
  const half = Math.max(5, Math.floor(n / 2));
  const kinds = {} as Record<CalibratedKind, ServiceTimes>;
  const plain = (times: number[]): ServiceTimes => ({ samples: times.length, quantilesUs: quantileTable(times) });
  const withItems = (one: number[], many: number[]): ServiceTimes => ({
    ...plain(one),
    perItemUs: Math.round(Math.max(0, (quantileOf([...many].sort((a, b) => a - b), 0.5) - quantileOf([...one].sort((a, b) => a - b), 0.5)) / (o.items - 1)) * 10) / 10,
  });

  const measured: Record<string, number[]> = {};
  measured.auth = await oneByOne('auth', make.auth, 2 * n);
  measured.capture = await oneByOne('capture', make.capture, n);
  measured.release = await oneByOne('release', make.release, n);
  measured.debit = await oneByOne('debit', make.debit, n);
  measured.sync = await oneByOne('sync', make.sync, n);
  o.topUps.on = true;
  await oneByOne('debit with a top-up', make.debit, n);
  o.topUps.on = false;
  const listKinds = { 'remit.grouped': make.remitGrouped, 'remit.aggregate': make.remitAggregate, settle: make.settle } as const;
  for (const [kind, makeList] of Object.entries(listKinds)) {
    measured[kind] = await oneByOne(kind, () => makeList(1), n);
    measured[`${kind}×${o.items}`] = await oneByOne(kind, () => makeList(o.items), half);
  }

  const commitQuantilesUs: number[][] = [];
  const batchMedianUs: number[] = [];
  const workMedianUs: number[] = [];
  for (const size of o.batchSizes) {
    const batches = Math.max(10, Math.min(n, Math.ceil((8 * n) / size)));
    const prepared = Array.from({ length: batches }, () => Array.from({ length: size }, () => make.debit()));
    const commits: number[] = [];
    const walls: number[] = [];
    for (const batch of prepared) {
      const timing = await driver.send(batch);
      const refused = timing.codes.find((c) => c !== 'ok');
      if (refused) throw new RefusedDuringCalibration(`a debit in a batch of ${size} was answered ${refused}, not ok`);
      commits.push(timing.commitUs);
      walls.push(timing.wallUs);
    }
    commitQuantilesUs.push(quantileTable(commits));
    batchMedianUs.push(Math.round(quantileOf([...walls].sort((a, b) => a - b), 0.5)));
    workMedianUs.push(quantileOf(walls.map((w, i) => w - commits[i]!).sort((a, b) => a - b), 0.5));
  }
  // A batch's work (wall less commit) against its size: the intercept is what a batch costs whatever it holds,
  // taken out of the one-per-batch service times so that a batch of b costs overhead + commit + b requests.
  const { slope, intercept } = leastSquares(o.batchSizes, workMedianUs);
  const batchOverheadUs = Math.round(Math.max(0, intercept) * 10) / 10;
  const service = (samples: number[]) => samples.map((us) => Math.max(1, us - batchOverheadUs));
  for (const kind of ['auth', 'capture', 'release', 'debit', 'sync'] as const) kinds[kind] = plain(service(measured[kind]!));
  for (const kind of Object.keys(listKinds) as Array<keyof typeof listKinds>) kinds[kind] = withItems(service(measured[kind]!), service(measured[`${kind}×${o.items}`]!));
  // A top-up is made inside its posting's transaction, so its own work is all it adds to that request.
  // (A PostgreSQL store's prefetch runs a batch once dry first, in memory: such a run's top-up is timed too.)
  if (o.topUps.samplesUs.length < n) throw new Error(`calibrate: ${o.topUps.samplesUs.length} top-ups timed for ${n} debits`);
  const topUp = plain(o.topUps.samplesUs.map((us) => Math.max(1, Math.round(us))));
  if (driver.ledger.sumOfBalancesMinor() !== 0) throw new Error(`calibrate: the ledger does not balance (${driver.ledger.sumOfBalancesMinor()}) [INV-3 conservation]`);

  const cpu = cpus();
  return {
    version: CALIBRATION_VERSION,
    machine: {
      cpuModel: cpu[0]?.model ?? 'unknown',
      cores: cpu.length,
      node: process.version,
      platform: `${platform()} ${release()}`,
      date: new Date().toISOString(),
      loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    },
    ledger: o.ledger,
    crypto: o.crypto,
    method:
      `payfleet calibrate: the group-commit ledger actor of payfleet server over the store, in one process. Per kind, ${n} requests ` +
      '(auth 2×) sent one per batch after a warm-up: service time = wall time of the batch less the commit\'s own time ' +
      `(BEGIN…COMMIT less the work inside it). List kinds also at ${o.items} items: perItemUs = (median at ${o.items} − median at 1) / ${o.items - 1}. ` +
      'Group commit: batches of debits per size, the commit\'s own time as quantiles and the batch\'s median wall time. Quantiles in µs at ' +
      `${QUANTILES.join(', ')}.`,
    kinds: { ...kinds, topUp },
    groupCommit: { batchSizes: o.batchSizes, commitQuantilesUs, batchMedianUs, batchOverheadUs, debitInBatchUs: Math.round(Math.max(0, slope) * 10) / 10 },
  };
}

export function formatCalibration(c: Calibration): string {
  const at = (table: number[], p: number) => (table[QUANTILES.indexOf(p as (typeof QUANTILES)[number])]! / 1000).toFixed(3);
  const lines = [
    `  machine: ${c.machine.cpuModel}, ${c.machine.cores} cores, node ${c.machine.node}, ${c.machine.date} (load ${c.machine.loadAverage.join(' ')})`,
    '',
    '  | kind | samples | p50 ms | p90 ms | p99 ms | per item ms |',
    '  |---|---:|---:|---:|---:|---:|',
    ...Object.entries(c.kinds).map(([kind, t]) => `  | ${kind} | ${t.samples} | ${at(t.quantilesUs, 0.5)} | ${at(t.quantilesUs, 0.9)} | ${at(t.quantilesUs, 0.99)} | ${t.perItemUs === undefined ? '–' : (t.perItemUs / 1000).toFixed(3)} |`),
    '',
    '  | batch size | commit p50 ms | commit p99 ms | batch wall p50 ms |',
    '  |---:|---:|---:|---:|',
    ...c.groupCommit.batchSizes.map((size, i) => `  | ${size} | ${at(c.groupCommit.commitQuantilesUs[i]!, 0.5)} | ${at(c.groupCommit.commitQuantilesUs[i]!, 0.99)} | ${(c.groupCommit.batchMedianUs[i]! / 1000).toFixed(3)} |`),
    '',
    `  per batch besides its commit: ${(c.groupCommit.batchOverheadUs / 1000).toFixed(3)} ms; a debit inside a batch: ${(c.groupCommit.debitInBatchUs / 1000).toFixed(3)} ms (least squares over the batch sizes)`,
    ...(c.testBed
      ? [
          '',
          `  test bed (${c.testBed.cores} cores; ${c.testBed.terminals} terminals, ${c.testBed.processes.workers} swarm worker(s), 1 broker, 1 server process), CPU ms per remote order and per second whatever the rate:`,
          '  | role | ms per order | ms per second |',
          '  |---|---:|---:|',
          ...(['servers', 'broker', 'swarm', 'harness'] as const).map((role) => `  | ${role} | ${c.testBed!.cpuMsPerOrder[role]} | ${c.testBed!.fixedCpuMsPerSecond[role]} |`),
        ]
      : []),
  ];
  return lines.join('\n');
}
