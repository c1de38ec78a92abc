// Goal: the CPU time each part of a real mqtt run spent over a stretch of it — the payment servers (the system
// under test), and the test bed around them: the broker, the swarm workers and this harness process — so the cost
// the test bed adds per remote order can be measured, and a co-located run's host CPU can be modelled from it.
// Method: a benchmark driver of the mqtt coordinator (it is handed every process id once the workers are connected
// and started, and returns when the safety phase should end) reads /proc/<pid>/stat (utime + stime, in clock ticks)
// of each process, and process.cpuUsage() of this one, at the start and at the end of the probe window (after the
// warm-up). The difference per role over the window is the CPU that window's orders cost each role. Linux only:
// elsewhere the reading is undefined and the callers say the figure is missing.

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { BenchControl } from '../../sim/mqtt/benchControl.ts';
import type { RoleCpu } from '../../sim/scenario/calibration.ts';

/** CPU ms by role of a run's processes (the roles are the calibration file's, see TestBedCost). */
export type RoleCpuMs = RoleCpu;

/** Clock ticks a second of /proc/<pid>/stat; 100 on every Linux kernel built with the usual USER_HZ. */
const TICKS_PER_SECOND = 100;

/** utime + stime of a process (ms), or undefined when it cannot be read (not Linux, or the process is gone). */
export function processCpuMs(pid: number): number | undefined {
  try {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat(5): indexes 11 and 12 after the command name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** The CPU (ms) of every role now; undefined when a process of the run could not be read. */
export function roleCpuMs(pids: BenchControl['pids']): RoleCpuMs | undefined {
  const sum = (list: readonly number[]): number | undefined => {
    let total = 0;
    for (const pid of list) {
      const ms = pid > 0 ? processCpuMs(pid) : undefined;
      if (ms === undefined) return undefined;
      total += ms;
    }
    return total;
  };
  const servers = sum(pids.servers);
  const broker = pids.broker === undefined ? 0 : sum([pids.broker]);
  const swarm = sum(pids.workers);
  if (servers === undefined || broker === undefined || swarm === undefined) return undefined;
  return { servers, broker, swarm, harness: ownCpuMs() };
}

function minus(after: RoleCpuMs, before: RoleCpuMs): RoleCpuMs {
  return { servers: after.servers - before.servers, broker: after.broker - before.broker, swarm: after.swarm - before.swarm, harness: after.harness - before.harness };
}

export interface WindowCpu {
  /** CPU ms of each role over the window; undefined when it could not be read. */
  cpuMs: RoleCpuMs | undefined;
  /** Wall time of the window as the driver measured it (ms). */
  wallMs: number;
  /** The share of all the machine's cores that was busy over the window (whatever ran on them); undefined before it ends. */
  machineBusy?: number;
}

/** The share of all cores' time that was not idle since `before` (os.cpus() times). */
export function machineCpuBusySince(before: ReturnType<typeof cpus>): number {
  const after = cpus();
  let total = 0;
  let idle = 0;
  after.forEach((cpu, i) => {
    const was = before[i]?.times;
    if (!was) return;
    const now = cpu.times;
    const spent = now.user - was.user + (now.nice - was.nice) + (now.sys - was.sys) + (now.irq - was.irq) + (now.idle - was.idle);
    total += spent;
    idle += now.idle - was.idle;
  });
  return total > 0 ? Math.round((1 - idle / total) * 1000) / 1000 : 0;
}

/**
 * A driver for the mqtt coordinator that lets the scenario play (the workers run its arrivals on their own clock)
 * for `warmUpMs + windowMs` of real time, reading every role's CPU at the end of the warm-up and at the end of the
 * window into `into`, with the share of the machine's cores busy over the window.
 */
export function windowCpuDriver(warmUpMs: number, windowMs: number, into: WindowCpu): (control: BenchControl) => Promise<void> {
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
  return async (control) => {
    const started = performance.now();
    await sleep(warmUpMs);
    const before = roleCpuMs(control.pids);
    const machineBefore = cpus();
    const windowStarted = performance.now();
    await sleep(warmUpMs + windowMs - (performance.now() - started));
    const after = roleCpuMs(control.pids);
    // Over the window only: over the whole probe, the start-up and the drain (a few idle seconds) hid a window whose
    // cores were nearly full, and the table called the machine far from its limit.
    into.machineBusy = machineCpuBusySince(machineBefore);
    into.wallMs = performance.now() - windowStarted;
    into.cpuMs = before && after ? minus(after, before) : undefined;
  };
}
