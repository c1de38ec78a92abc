// Goal: one probe of the capacity search on the real thing (`payfleet capacity --mode mqtt`): the probe scenario of
// probe.ts played in real time against real payment-server processes (SQLite ledgers, group commit) and a real broker,
// judged by the same rules as a virtual probe, and telling when this machine, not the servers, bounds the rate.
// Method: the same probe scenario (warm-up, window, funded terminals, the failure bounds) with the scenario's own
// crypto (a real server pays for its signatures), run by the mqtt coordinator at time scale 1 into a folder of its own
// under the search's output folder (logs and ledgers kept for a look afterwards). Two CPU figures: the machine's
// (every core, os.cpus()) over the probe's window, and the run's own (this process and its ended children — broker,
// servers, swarm — from /proc/self/stat) as a share of all cores over the probe's wall time. At ≥ 90 % machine busy the cores
// were saturated, so the rate found is this machine's, and the table says whose work filled them.

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { MqttCoordinator } from '../../sim/mqtt/coordinator.ts';
import type { Scenario } from '../../sim/scenario/types.ts';
import type { RunSummary } from '../../sim/run/summary.ts';
import { judgeProbe, probeScenario, type ProbeOptions } from './probe.ts';
import type { ProbeResult } from './search.ts';
import { machineCpuBusySince, windowCpuDriver, type RoleCpuMs, type WindowCpu } from './processCpu.ts';

/** CPU ms of this process and of its children that ended (utime, stime, cutime, cstime of /proc/self/stat). */
function ownCpuMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    // Fields 14–17 of stat(5), in clock ticks (100 a second on Linux); here 0-based after the command name.
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return undefined;
  }
}

export async function runMqttProbe(
  base: Scenario,
  shards: number,
  ratePerSecond: number,
  slos: readonly string[],
  o: ProbeOptions,
  outRoot: string,
  log: (line: string) => void = () => undefined,
): Promise<ProbeResult & { summary: RunSummary; windowCpu: WindowCpu }> {
  const scenario = probeScenario(base, shards, ratePerSecond, slos, { ...o, crypto: 'scenario' });
  const before = cpus();
  const ownBefore = ownCpuMs();
  const wallBefore = performance.now();
  const windowCpu: WindowCpu = { cpuMs: undefined, wallMs: 0 };
  const driver = windowCpuDriver(o.warmUpMs, o.windowMs, windowCpu);
  const coordinator = new MqttCoordinator({ scenario, outDir: join(outRoot, `probe-${shards}-${ratePerSecond}`), timeScale: 1, log, driver });
  const { summary } = await coordinator.run();
  const ownAfter = ownCpuMs();
  const wallMs = performance.now() - wallBefore;
  const result = judgeProbe(summary, ratePerSecond, o);
  const runCpuShare = ownBefore === undefined || ownAfter === undefined ? null : Math.round(((ownAfter - ownBefore) / (wallMs * cpus().length)) * 1000) / 1000;
  const perOrder = cpuPerOrder(windowCpu.cpuMs, summary.arrival?.issued ?? 0);
  result.details = {
    ...result.details,
    // The window's reading when the driver made one (the figure that bounds the rate), else the whole probe's.
    machineCpuBusy: windowCpu.machineBusy ?? machineCpuBusySince(before),
    runCpuShare,
    ...(perOrder && { serverCpuMsPerOrder: perOrder.servers, brokerCpuMsPerOrder: perOrder.broker, swarmCpuMsPerOrder: perOrder.swarm, harnessCpuMsPerOrder: perOrder.harness }),
  };
  return { ...result, windowCpu };
}

/** CPU ms per order of each role over the window (3 decimals); undefined without a reading or an order. */
export function cpuPerOrder(cpuMs: RoleCpuMs | undefined, orders: number): RoleCpuMs | undefined {
  if (!cpuMs || orders <= 0) return undefined;
  const per = (ms: number) => Math.round((ms / orders) * 1000) / 1000;
  return { servers: per(cpuMs.servers), broker: per(cpuMs.broker), swarm: per(cpuMs.swarm), harness: per(cpuMs.harness) };
}
