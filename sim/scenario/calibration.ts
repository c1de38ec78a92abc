// Goal: the calibration file of the payment servers — what `payfleet calibrate` measured on a real server (its
// rules, signatures and durable commits) — and its validation, so a scenario can say
// `servers.calibration: calibrations/<name>.json` and the virtual SD serves each request as long as the real one took.
// Method: plain JSON. Per request kind, the service time as a quantile table (µs at the probabilities QUANTILES,
// so the distribution is kept, not just its mean) measured one request per batch with the commit's own time taken
// out, and the batch's fixed overhead too (see groupCommit.batchOverheadUs), and for the kinds that carry a list (grouped and aggregate remittances, settlements) the extra time per item;
// then the group commit: the commit's own time (BEGIN…COMMIT, the fsync included) per batch size as another
// quantile table. Optionally (`testBed`), what the test bed around the servers costs in CPU on the same machine —
// the broker, the swarm workers, the harness and the servers' own processes, per remote order of a small real mqtt
// run — for a model of servers co-located with their test bed (load/capacity/hostModel.ts). `parseCalibration` checks every field and names the first bad one by its JSON path; the loader
// turns that into a scenario problem on the `servers.calibration` line. A relative path is looked up from the
// scenario file's folder upwards, then from the current directory, so `calibrations/x.json` in scenarios/ finds the
// repository's calibrations/, and so does a copy of that scenario elsewhere run from the repository's root.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export const CALIBRATION_VERSION = 1;

/** Probabilities of a quantile table, in order; 0 is the smallest sample and 1 the largest. */
export const QUANTILES = [0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1] as const;

/** The request kinds a calibration measures (remittances by mode). */
export const CALIBRATED_KINDS = ['auth', 'capture', 'release', 'debit', 'sync', 'remit.grouped', 'remit.aggregate', 'settle'] as const;
export type CalibratedKind = (typeof CALIBRATED_KINDS)[number];
/** Kinds whose cost grows with the items they carry (transactions, txIds, proofs). */
export const ITEM_KINDS: readonly CalibratedKind[] = ['remit.grouped', 'remit.aggregate', 'settle'];

export interface ServiceTimes {
  samples: number;
  /** µs at each probability of QUANTILES. */
  quantilesUs: number[];
  /** Extra µs per item beyond the first (item kinds only). */
  perItemUs?: number;
}

export interface Calibration {
  version: number;
  /** Where and when it was measured. */
  machine: { cpuModel: string; cores: number; node: string; platform: string; date: string; loadAverage: number[] };
  ledger: string;
  crypto: 'ed25519' | 'sim';
  method: string;
  /**
   * Per request kind; `topUp` (optional: files measured before top-ups existed lack it) is a top-up made inside a
   * posting's transaction (machines/domain/ledgerTopUps.ts), measured as the extra time of a debit that makes one.
   */
  kinds: Record<CalibratedKind, ServiceTimes> & { topUp?: ServiceTimes };
  groupCommit: {
    /** Batch sizes measured, increasing; a larger batch uses the last one's table. */
    batchSizes: number[];
    /** Per batch size (same order): µs of the commit itself at each probability of QUANTILES. */
    commitQuantilesUs: number[][];
    /** Per batch size: median wall µs of a whole batch of debits (the senders' view), for the report. */
    batchMedianUs: number[];
    /**
     * µs every batch costs besides its commit and its requests (an event-loop turn, the actor's messages): the
     * intercept of the batch's work (wall less commit) against its size. The kinds' tables have it taken out.
     */
    batchOverheadUs: number;
    /** The slope of that fit: µs per debit inside a batch (for the report). */
    debitInBatchUs: number;
  };
  /** What a real mqtt run on this machine costs its processes' CPU, for servers co-located with the test bed. */
  testBed?: TestBedCost;
}

/** CPU ms of each role of a real mqtt run (payment servers, broker, swarm workers, the harness process). */
export interface RoleCpu {
  servers: number;
  broker: number;
  swarm: number;
  harness: number;
}

/**
 * The test bed's CPU as measured by `payfleet calibrate` on a small remote-debit mqtt run at two constant rates:
 * each role's CPU over the window is fitted as fixed ms per second (timers, keep-alives) plus ms per remote order.
 */
export interface TestBedCost {
  /** The cores of the machine it was measured on (the host the model shares among the run's processes). */
  cores: number;
  /** The run's processes that compete for the cores: servers, the broker, swarm workers. */
  processes: { servers: number; broker: number; workers: number };
  terminals: number;
  /** The rates measured (orders/s) and each one's CPU per order by role, as read. */
  runs: Array<{ rate: number; orders: number; windowMs: number; cpuMsPerOrder: RoleCpu; machineBusy: number; loadAverage: number }>;
  /** The fit: CPU ms per remote order by role. */
  cpuMsPerOrder: RoleCpu;
  /** The fit: CPU ms per second of wall time by role, whatever the rate. */
  fixedCpuMsPerSecond: RoleCpu;
}

/** A calibration as a scenario holds it: the file it came from, and its contents. */
export interface ScenarioCalibration {
  file: string;
  calibration: Calibration;
}

export class CalibrationError extends Error {
  constructor(message: string, readonly path: string) {
    super(path === '' ? message : `${path}: ${message}`);
    this.name = 'CalibrationError';
  }
}

function expect(condition: boolean, path: string, message: string): void {
  if (!condition) throw new CalibrationError(message, path);
}

function quantileTable(value: unknown, path: string): number[] {
  expect(Array.isArray(value) && value.length === QUANTILES.length, path, `expected ${QUANTILES.length} quantiles (µs at ${QUANTILES.join(', ')})`);
  const list = value as unknown[];
  list.forEach((q, i) => {
    expect(typeof q === 'number' && Number.isFinite(q) && q >= 0, `${path}[${i}]`, `expected a number of µs ≥ 0, got ${JSON.stringify(q)}`);
    if (i > 0) expect(q as number >= (list[i - 1] as number), `${path}[${i}]`, `expected quantiles in increasing order, got ${String(q)} after ${String(list[i - 1])}`);
  });
  return list as number[];
}

/** Checks a parsed calibration file; throws CalibrationError naming the first bad field. */
export function parseCalibration(value: unknown): Calibration {
  expect(typeof value === 'object' && value !== null && !Array.isArray(value), '', 'expected a JSON object');
  const c = value as Record<string, unknown>;
  expect(c.version === CALIBRATION_VERSION, 'version', `expected ${CALIBRATION_VERSION}, got ${JSON.stringify(c.version)}`);
  const machine = c.machine as Record<string, unknown> | undefined;
  expect(typeof machine === 'object' && machine !== null, 'machine', 'expected the machine it was measured on');
  for (const field of ['cpuModel', 'node', 'platform', 'date']) expect(typeof machine![field] === 'string', `machine.${field}`, 'expected a string');
  expect(Number.isInteger(machine!.cores) && (machine!.cores as number) >= 1, 'machine.cores', 'expected an integer ≥ 1');
  expect(c.crypto === 'ed25519' || c.crypto === 'sim', 'crypto', `expected "ed25519" or "sim", got ${JSON.stringify(c.crypto)}`);
  expect(typeof c.ledger === 'string', 'ledger', 'expected a string');
  const kinds = c.kinds as Record<string, unknown> | undefined;
  expect(typeof kinds === 'object' && kinds !== null, 'kinds', 'expected the service times per request kind');
  for (const kind of CALIBRATED_KINDS) {
    const entry = kinds![kind] as Record<string, unknown> | undefined;
    expect(typeof entry === 'object' && entry !== null, `kinds.${kind}`, 'missing');
    expect(Number.isInteger(entry!.samples) && (entry!.samples as number) >= 1, `kinds.${kind}.samples`, 'expected an integer ≥ 1');
    quantileTable(entry!.quantilesUs, `kinds.${kind}.quantilesUs`);
    if (ITEM_KINDS.includes(kind)) {
      const perItem = entry!.perItemUs;
      expect(typeof perItem === 'number' && Number.isFinite(perItem) && perItem >= 0, `kinds.${kind}.perItemUs`, 'expected a number of µs ≥ 0');
    }
  }
  const topUp = kinds!.topUp as Record<string, unknown> | undefined;
  if (topUp !== undefined) {
    expect(typeof topUp === 'object' && topUp !== null, 'kinds.topUp', 'expected the service times of a top-up');
    expect(Number.isInteger(topUp.samples) && (topUp.samples as number) >= 1, 'kinds.topUp.samples', 'expected an integer ≥ 1');
    quantileTable(topUp.quantilesUs, 'kinds.topUp.quantilesUs');
  }
  const group = c.groupCommit as Record<string, unknown> | undefined;
  expect(typeof group === 'object' && group !== null, 'groupCommit', 'expected the group-commit costs');
  const sizes = group!.batchSizes;
  expect(Array.isArray(sizes) && sizes.length >= 1, 'groupCommit.batchSizes', 'expected at least one batch size');
  (sizes as unknown[]).forEach((s, i) => {
    expect(Number.isInteger(s) && (s as number) >= 1 && (i === 0 || (s as number) > ((sizes as number[])[i - 1] as number)), `groupCommit.batchSizes[${i}]`, 'expected increasing integers ≥ 1');
  });
  const tables = group!.commitQuantilesUs;
  expect(Array.isArray(tables) && tables.length === (sizes as unknown[]).length, 'groupCommit.commitQuantilesUs', 'expected one quantile table per batch size');
  (tables as unknown[]).forEach((t, i) => quantileTable(t, `groupCommit.commitQuantilesUs[${i}]`));
  const medians = group!.batchMedianUs;
  expect(Array.isArray(medians) && medians.length === (sizes as unknown[]).length, 'groupCommit.batchMedianUs', 'expected one median per batch size');
  for (const field of ['batchOverheadUs', 'debitInBatchUs']) {
    const v = group![field];
    expect(typeof v === 'number' && Number.isFinite(v) && v >= 0, `groupCommit.${field}`, 'expected a number of µs ≥ 0');
  }
  if (c.testBed !== undefined) parseTestBed(c.testBed);
  return value as Calibration;
}

const ROLES = ['servers', 'broker', 'swarm', 'harness'] as const;

function roleCpu(value: unknown, path: string, anySign = false): void {
  expect(typeof value === 'object' && value !== null, path, 'expected CPU ms by role (servers, broker, swarm, harness)');
  for (const role of ROLES) {
    const v = (value as Record<string, unknown>)[role];
    expect(typeof v === 'number' && Number.isFinite(v) && (anySign || v >= 0), `${path}.${role}`, `expected a number of ms${anySign ? '' : ' ≥ 0'}`);
  }
}

function parseTestBed(value: unknown): void {
  expect(typeof value === 'object' && value !== null, 'testBed', 'expected the test bed\'s CPU cost');
  const t = value as Record<string, unknown>;
  expect(Number.isInteger(t.cores) && (t.cores as number) >= 1, 'testBed.cores', 'expected an integer ≥ 1');
  expect(Number.isInteger(t.terminals) && (t.terminals as number) >= 1, 'testBed.terminals', 'expected an integer ≥ 1');
  const processes = t.processes as Record<string, unknown> | undefined;
  expect(typeof processes === 'object' && processes !== null, 'testBed.processes', 'expected the process counts');
  for (const field of ['servers', 'broker', 'workers']) expect(Number.isInteger(processes![field]) && (processes![field] as number) >= 0, `testBed.processes.${field}`, 'expected an integer ≥ 0');
  expect(Array.isArray(t.runs) && t.runs.length >= 1, 'testBed.runs', 'expected at least one measured run');
  (t.runs as unknown[]).forEach((run, i) => roleCpu((run as Record<string, unknown> | null)?.cpuMsPerOrder, `testBed.runs[${i}].cpuMsPerOrder`));
  roleCpu(t.cpuMsPerOrder, 'testBed.cpuMsPerOrder');
  roleCpu(t.fixedCpuMsPerSecond, 'testBed.fixedCpuMsPerSecond');
}

/**
 * The file a scenario's `servers.calibration` names: an absolute path as it is; a relative one from the scenario's
 * folder, then each folder above it, then the current directory, the first that has it. Undefined when none has it.
 */
export function findCalibrationFile(reference: string, scenarioFile: string): string | undefined {
  if (isAbsolute(reference)) return existsSync(reference) ? reference : undefined;
  let dir = resolve(dirname(scenarioFile));
  for (;;) {
    const candidate = join(dir, reference);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // A scenario copied out of the repository still finds the repository's calibrations when run from its root.
  const fromCwd = resolve(reference);
  return existsSync(fromCwd) ? fromCwd : undefined;
}

/** Reads and checks a calibration file; throws CalibrationError (path '' for a file that cannot be read or parsed). */
export function readCalibration(file: string): Calibration {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CalibrationError(`cannot read ${file} (${error instanceof Error && 'code' in error ? String(error.code) : String(error)})`, '');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CalibrationError(`${file} is not JSON (${error instanceof Error ? error.message : String(error)})`, '');
  }
  try {
    return parseCalibration(json);
  } catch (error) {
    if (error instanceof CalibrationError) throw new CalibrationError(`${file}: ${error.message}`, '');
    throw error;
  }
}
