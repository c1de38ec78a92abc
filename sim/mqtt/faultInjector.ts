// Goal: fault application of an mqtt run — the scenario's faults done for real: a server or broker crash is a
// SIGKILL followed by a restart after the scenario's delay, a database crash is `pg_ctl stop -m immediate` of the
// PostgreSQL holding the ledgers and `pg_ctl restart` after the delay, a partition is SIGSTOP … SIGCONT of the shard's
// server, adversarial messages go through the broker (adversary.ts). Device faults are the workers' own.
// Method: each fault is scheduled at its run time on the run's `RealTime`; the pending restarts and resumes are
// kept, so the drain can bring everything back at once (`restoreAll`) instead of waiting for their timers.

import type { Fault } from '../scenario/types.ts';
import type { RealTime } from '../core/realTime.ts';
import type { RecentEvents } from '../check/invariantBook.ts';
import type { Adversary, AdversarialKind } from './adversary.ts';
import type { ProcessFailure, ProcessSupervisor } from './supervisor.ts';
import type { BrokerControl } from './runOptions.ts';
import type { RunLog } from './runLog.ts';
import type { DatabaseControl } from '../sd/postgresControl.ts';

/** The faults the coordinator applied, and the processes that failed by themselves. */
export interface FaultCounters extends Record<ProcessFailure, number> {
  serverCrashes: number;
  brokerCrashes: number;
  brokerCrashesSkipped: number;
  databaseCrashes: number;
  partitions: number;
}

export interface FaultInjectorParts {
  time: RealTime;
  supervisor: ProcessSupervisor;
  adversary: Adversary;
  /** Crash control of an external broker; without it (and without an embedded one) a broker crash is skipped. */
  brokerControl: BrokerControl | undefined;
  /** Crash control of the PostgreSQL holding the ledgers; a run with a databaseCrash fault is refused without it. */
  databaseControl?: DatabaseControl;
  recent: RecentEvents;
  runLog: RunLog;
}

export class FaultInjector {
  readonly counters: FaultCounters = { serverCrashes: 0, brokerCrashes: 0, brokerCrashesSkipped: 0, databaseCrashes: 0, partitions: 0, serverFailures: 0, brokerFailures: 0 };
  private running = true;
  private readonly pendingRestarts = new Set<() => Promise<void>>();

  constructor(private readonly parts: FaultInjectorParts) {}

  /** Schedules every fault of the scenario at its run time (device faults are left to the workers). */
  schedule(faults: readonly Fault[]): void {
    const { time, supervisor } = this.parts;
    for (const fault of faults) time.at(fault.atMs, () => this.running && supervisor.track(this.apply(fault)));
  }

  /** The safety phase is over: no more faults, and everything crashed or paused comes back now. */
  async restoreAll(): Promise<void> {
    this.running = false;
    const restarts = [...this.pendingRestarts];
    await this.parts.supervisor.settle();
    await Promise.all(restarts.map((restart) => restart()));
    this.pendingRestarts.clear();
    await this.parts.supervisor.restartWhateverIsDown();
  }

  /**
   * The run ends, however it ends (a worker failed, the harness broke): a database it crashed is started again. A
   * crashed broker or server is the run's own and dies with it; the database is the user's, and stays.
   */
  async restoreDatabase(): Promise<void> {
    const control = this.parts.databaseControl;
    if (!control?.down) return;
    this.parts.runLog.event('run ending with the database down: starting it again (pg_ctl restart)');
    await control.restart();
  }

  /** Runs `action` after `delayMs` of run time, unless `restoreAll` ran it first. */
  private later(delayMs: number, action: () => Promise<void>): void {
    const run = async (): Promise<void> => {
      if (!this.pendingRestarts.delete(run)) return;
      await action();
    };
    this.pendingRestarts.add(run);
    this.parts.time.schedule(delayMs, () => this.parts.supervisor.track(run()));
  }

  private async apply(fault: Fault): Promise<void> {
    const { time, supervisor, adversary, recent, runLog } = this.parts;
    runLog.event(`fault ${JSON.stringify(fault)}`);
    switch (fault.kind) {
      case 'serverCrash': {
        const server = supervisor.serverOfShard(fault.shard);
        if (!server) return;
        this.counters.serverCrashes++;
        recent.push({ timeMs: time.now(), actor: `sd.${server.range}`, text: `SIGKILL server ${server.range} (pid ${server.process.pid})` });
        await server.process.kill();
        this.later(fault.restartAfterMs, () => supervisor.restart(server.process));
        return;
      }
      case 'brokerCrash': {
        const broker = supervisor.broker;
        const control: BrokerControl | undefined = broker ? { kill: () => broker.kill(), restart: () => supervisor.restart(broker) } : this.parts.brokerControl;
        if (!control) {
          this.counters.brokerCrashesSkipped++;
          return;
        }
        this.counters.brokerCrashes++;
        recent.push({ timeMs: time.now(), actor: 'broker', text: 'SIGKILL broker' });
        await control.kill();
        this.later(fault.restartAfterMs, () => control.restart());
        return;
      }
      case 'databaseCrash': {
        const control = this.parts.databaseControl;
        // Refused before the run starts (runMqtt.ts, MqttCoordinator); reaching here without one is a bug.
        if (!control) throw new Error(`databaseCrash at ${fault.atMs} ms: the run has no control of its database`);
        this.counters.databaseCrashes++;
        recent.push({ timeMs: time.now(), actor: 'database', text: `pg_ctl stop -m immediate: ${control.description}` });
        await control.crash();
        runLog.event(`database crashed: ${control.description}`);
        this.later(fault.restartAfterMs, async () => {
          if (!control.down) return;
          runLog.event('starting the database again (pg_ctl restart)');
          await control.restart();
          runLog.event('database ready again');
        });
        return;
      }
      case 'partition': {
        const server = supervisor.serverOfShard(fault.shard);
        if (!server) return;
        this.counters.partitions++;
        server.process.pause();
        this.later(fault.durationMs, async () => server.process.resume());
        return;
      }
      case 'forgedSignature':
      case 'replayedRemittance':
      case 'malformedPayload':
      case 'wrongTopic': {
        const before = adversary.injections.length;
        await adversary.inject(fault.kind as AdversarialKind, fault.count);
        for (const i of adversary.injections.slice(before)) {
          runLog.event(`${i.kind} ${i.reqId}: ${i.outcome}${i.answer ? ` (${i.answer.code})` : ''}${i.notSentBecause ? `: ${i.notSentBecause}` : ''}`);
        }
        return;
      }
      default:
        // terminalCrash, simMove, clockSkew and alteredInFlight are applied by the workers to their own devices.
        return;
    }
  }
}
