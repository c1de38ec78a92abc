// Goal: what the test bed around the payment servers costs this machine's CPU per remote order — the broker, the
// swarm workers (terminals, proxies, their MQTT links), the harness, and the server processes themselves (their
// calibrated work plus their own links) — so a model of servers co-located with their test bed (`capacity
// --compare`, load/capacity/hostModel.ts) charges the host what a real mqtt run charges it.
// Method: a small real mqtt run per rate (the capacity search's real probe, load/capacity/mqttProbe.ts: embedded
// broker, one server process, the swarm workers, all on this machine) of terminals whose every order is a remote
// debit, at constant arrival rates; each process's CPU (/proc/<pid>/stat, process.cpuUsage for the harness) is read
// at the start and at the end of the arrival window. Per role, the CPU per second of window against the rate is
// fitted by a line (least squares): its slope is the CPU per order, its intercept the CPU per second whatever the
// rate (timers, keep-alives). A negative intercept (noise) is taken as 0 and the slope as the mean CPU per order.

import { join } from 'node:path';
import { loadavg } from 'node:os';
import { loadScenarioText } from '../../sim/scenario/load.ts';
import type { RoleCpu, TestBedCost } from '../../sim/scenario/calibration.ts';
import { runMqttProbe } from '../capacity/mqttProbe.ts';
import { DEFAULT_PROBE, type ProbeOptions } from '../capacity/probe.ts';
import { defaultWorkerCount } from '../../sim/mqtt/workerPool.ts';
import { leastSquares } from './fit.ts';

export const TEST_BED_TERMINALS = 40;

function testBedScenarioText(crypto: 'ed25519' | 'sim', terminals: number): string {
  return `name: calibrate-test-bed
seed: 11
duration: 10s
drain: 30s
crypto: ${crypto}
population:
  terminals: ${terminals}
  shards: 1
  means: [{ name: p, kind: prepaid, openingBalanceMinor: 5000 }]
  apps: [{ name: shop, type: telepayment, ordersPerHour: 20, amount: { uniformMinor: [2500, 4000] }, payee: merchant-shop }]
  users: { declineProbability: 0, wrongPinProbability: 0 }
policy: { thresholdMinor: 2000, confirmation: { approveAboveMinor: 1000000, pinAboveMinor: 1000000 }, remoteTimeout: 5s }
coverage: { meanOffDuration: 0 }
network: { latency: { medianMs: 20, p99Ms: 40 } }
servers: { serviceTime: 1ms }
`;
}

const ROLES = ['servers', 'broker', 'swarm', 'harness'] as const;

export interface TestBedOptions {
  crypto: 'ed25519' | 'sim';
  /** Constant arrival rates measured (orders/s), at least two for the fit. */
  rates: number[];
  warmUpMs: number;
  windowMs: number;
  outDir: string;
  log?: (line: string) => void;
}

export async function measureTestBed(o: TestBedOptions): Promise<TestBedCost> {
  const scenario = loadScenarioText(testBedScenarioText(o.crypto, TEST_BED_TERMINALS), join(o.outDir, 'calibrate-test-bed.yaml'));
  const probe: ProbeOptions = { ...DEFAULT_PROBE, warmUpMs: o.warmUpMs, windowMs: o.windowMs, maxDrainMs: 30_000, crypto: 'scenario' };
  const runs: TestBedCost['runs'] = [];
  for (const rate of o.rates) {
    const result = await runMqttProbe(scenario, 1, rate, ['latency.remote.p99 < 60s'], probe, o.outDir);
    const orders = result.summary.arrival?.issued ?? 0;
    const cpu = result.windowCpu.cpuMs;
    if (!cpu || orders === 0) throw new Error(`calibrate: the test bed's CPU could not be read at ${rate} orders/s (${cpu ? 'no order issued' : 'no /proc/<pid>/stat: Linux only'})`);
    const per = (ms: number) => Math.round((ms / orders) * 1000) / 1000;
    const run = {
      rate,
      orders,
      windowMs: Math.round(result.windowCpu.wallMs),
      cpuMsPerOrder: { servers: per(cpu.servers), broker: per(cpu.broker), swarm: per(cpu.swarm), harness: per(cpu.harness) },
      machineBusy: Number(result.details?.machineCpuBusy ?? 0),
      loadAverage: Math.round(loadavg()[0]! * 100) / 100,
    };
    o.log?.(`  test bed at ${rate}/s: ${orders} orders, CPU ms per order servers ${run.cpuMsPerOrder.servers}, broker ${run.cpuMsPerOrder.broker}, swarm ${run.cpuMsPerOrder.swarm}, harness ${run.cpuMsPerOrder.harness} (machine ${(run.machineBusy * 100).toFixed(0)} % busy, load ${run.loadAverage})`);
    runs.push(run);
  }
  const perOrder = {} as RoleCpu;
  const fixed = {} as RoleCpu;
  for (const role of ROLES) {
    // CPU ms per second of window at each achieved rate (orders over the window).
    const xs = runs.map((r) => r.orders / (r.windowMs / 1000));
    const ys = runs.map((r) => (r.cpuMsPerOrder[role] * r.orders) / (r.windowMs / 1000));
    const { slope, intercept } = leastSquares(xs, ys);
    if (intercept >= 0 && slope >= 0) {
      perOrder[role] = round3(slope);
      fixed[role] = round3(intercept);
    } else {
      perOrder[role] = round3(ys.reduce((a, b) => a + b, 0) / xs.reduce((a, b) => a + b, 0));
      fixed[role] = 0;
    }
  }
  return {
    cores: (await import('node:os')).cpus().length,
    processes: { servers: 1, broker: 1, workers: defaultWorkerCount(TEST_BED_TERMINALS) },
    terminals: TEST_BED_TERMINALS,
    runs,
    cpuMsPerOrder: perOrder,
    fixedCpuMsPerSecond: fixed,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
