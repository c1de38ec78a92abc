// Goal: synthetic calibrations for tests: every kind served in a fixed time, a fixed commit per batch, so a test
// can predict what the virtual SD does with it (a measured file varies from machine to machine).
// Method: quantile tables whose every entry is the same value; the machine label says it was not measured.

import { CALIBRATED_KINDS, CALIBRATION_VERSION, ITEM_KINDS, QUANTILES, type CalibratedKind, type Calibration, type ServiceTimes, type TestBedCost } from './calibration.ts';

export function constantCalibration(options: { crypto?: 'ed25519' | 'sim'; serviceUs: number; commitUs: number; perItemUs?: number }): Calibration {
  const table = (us: number) => QUANTILES.map(() => us);
  const kinds = Object.fromEntries(
    CALIBRATED_KINDS.map((kind): [CalibratedKind, ServiceTimes] => [
      kind,
      { samples: 1, quantilesUs: table(options.serviceUs), ...(ITEM_KINDS.includes(kind) ? { perItemUs: options.perItemUs ?? 0 } : {}) },
    ]),
  ) as Record<CalibratedKind, ServiceTimes>;
  return {
    version: CALIBRATION_VERSION,
    machine: { cpuModel: 'synthetic (not measured)', cores: 1, node: process.version, platform: 'test', date: '2026-01-01T00:00:00.000Z', loadAverage: [0, 0, 0] },
    ledger: 'synthetic',
    crypto: options.crypto ?? 'sim',
    method: 'constantCalibration (tests)',
    kinds,
    groupCommit: { batchSizes: [1], commitQuantilesUs: [table(options.commitUs)], batchMedianUs: [options.commitUs + options.serviceUs], batchOverheadUs: 0, debitInBatchUs: options.serviceUs },
  };
}

/**
 * A synthetic test bed (2 cores; one server, broker and swarm process; 40 terminals) whose processes cost the given
 * CPU per remote order and nothing per second, as if measured by one run at 50 orders/s.
 */
export function constantTestBed(cpuMsPerOrder: { servers: number; broker: number; swarm: number }): TestBedCost {
  const perOrder = { ...cpuMsPerOrder, harness: 0 };
  return {
    cores: 2,
    processes: { servers: 1, broker: 1, workers: 1 },
    terminals: 40,
    runs: [{ rate: 50, orders: 150, windowMs: 3_000, cpuMsPerOrder: perOrder, machineBusy: 0.5, loadAverage: 1 }],
    cpuMsPerOrder: perOrder,
    fixedCpuMsPerSecond: { servers: 0, broker: 0, swarm: 0, harness: 0 },
  };
}
