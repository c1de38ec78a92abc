// Goal: the minute sampler and live gauges of an mqtt run — once a minute of run time, the servers' figures read
// back from their ledgers [INV-3], the swarm's gauges and the backlog go into the time series; between samples,
// progress for the caller's live line and gauges for a live metrics endpoint.
// Method: the sampler re-arms itself on the run's `RealTime` until the run has drained (or, in the liveness
// phase, until every worker has); the live gauges read the workers' latest batch figures, never the processes.

import type { Scenario } from '../scenario/types.ts';
import type { RealTime } from '../core/realTime.ts';
import type { InvariantBook } from '../check/invariantBook.ts';
import type { Metrics } from '../run/metrics.ts';
import type { RunRecord } from '../run/runRecord.ts';
import type { LedgerReaders } from './ledgerReadBack.ts';
import type { MqttProgress } from './runOptions.ts';
import type { RunLog } from './runLog.ts';
import type { ServerGroup } from './supervisor.ts';
import type { WorkerPool } from './workerPool.ts';

const MINUTE_MS = 60_000;

export interface MinuteSamplerParts {
  time: RealTime;
  scenario: Scenario;
  metrics: Metrics;
  book: InvariantBook;
  record: RunRecord;
  pool: WorkerPool;
  readers: LedgerReaders;
  servers(): readonly ServerGroup[];
  runLog: RunLog;
  onProgress: ((p: MqttProgress) => void) | undefined;
}

export class MinuteSampler {
  constructor(private readonly parts: MinuteSamplerParts) {}

  /** Samples at the next whole minute of run time, and so on until the run has drained. */
  arm(): void {
    const { time, record, pool } = this.parts;
    time.schedule(MINUTE_MS - (time.now() % MINUTE_MS), () => {
      void this.sample().catch((error: Error) => this.parts.runLog.log(`  sample failed: ${error.message}`));
      if (record.drainedAtMs === undefined && record.phase === 'safety') this.arm();
      else if (record.phase === 'liveness' && !pool.allDrained()) this.arm();
    });
  }

  /** One sample; the servers' figures may come from agents, hence asynchronous (at most 2 s). */
  async sample(): Promise<void> {
    const { time, metrics, book, record, pool } = this.parts;
    const sampledAtMs = time.now();
    await this.parts.readers.sample(this.parts.servers(), book, metrics);
    metrics.setGauges({ terminalsInCoverage: pool.inCoverage, brokerConnections: pool.linksUp });
    const backlog = record.backlog;
    metrics.setBacklog(backlog.count, backlog.amountMinor);
    metrics.sample(sampledAtMs);
    this.parts.runLog.event(`sample: ${pool.inCoverage} in coverage, ${pool.linksUp} links up, backlog ${backlog.count}`);
    this.reportProgress();
  }

  /**
   * For a live metrics endpoint: brings the gauges up to now (the minute's sample sets them again) and returns
   * the figures `Metrics` has no gauge for.
   */
  liveGauges(): Record<string, number> {
    const { time, metrics, record, pool } = this.parts;
    metrics.setGauges({ terminalsInCoverage: pool.inCoverage, brokerConnections: pool.linksUp });
    return { linksUp: pool.linksUp, runTimeMs: time.begun ? time.now() : 0, liveness: record.phase === 'liveness' ? 1 : 0 };
  }

  reportProgress(): void {
    const { time, scenario, record, pool } = this.parts;
    this.parts.onProgress?.({
      simulatedMs: time.now(),
      totalMs: scenario.durationMs + scenario.drainMs,
      events: pool.messages,
      terminalsInCoverage: pool.inCoverage,
      backlogCount: record.backlog.count,
      phase: record.phase,
    });
  }
}
