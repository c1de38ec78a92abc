// Goal: what the coordinator of an mqtt run takes from the workers' report batches — orders, latencies,
// approvals and remittances into the metrics and the run record, POS receipts, spends through other points of
// issue to forward, named counters, the workers' gauges, and reconnects.
// Method: the same `RunRecord` calls the virtual mode makes as it happens (runRecord.ts), here from the records
// a worker made at the time (`atMs` is the worker's run time, on the run's one clock origin). The last
// remittances are kept for the adversary, which replays one of them.

import type { RealTime } from '../core/realTime.ts';
import type { Prng } from '../core/prng.ts';
import type { RecentEvents } from '../check/invariantBook.ts';
import type { Metrics } from '../run/metrics.ts';
import type { RunRecord } from '../run/runRecord.ts';
import type { Proof } from '../../machines/messages.ts';
import type { ElsewhereSpend, WorkerBatch } from './protocol.ts';
import type { WorkerHandle, WorkerPool } from './workerPool.ts';

/** Remittances kept for the adversary to pick from. */
const RECENT_REMITTANCES_KEPT = 256;

export interface WorkerReportParts {
  time: RealTime;
  metrics: Metrics;
  record: RunRecord;
  recent: RecentEvents;
  pool: WorkerPool;
  /** Hands a spend through another point of issue to its server. */
  forwardElsewhere(spend: ElsewhereSpend): void;
}

export class WorkerReports {
  private readonly recentRemittances: Array<{ terminalId: string; txIds: string[] }> = [];
  private lastConnects = 0;

  constructor(private readonly parts: WorkerReportParts) {}

  take(worker: WorkerHandle, batch: WorkerBatch): void {
    const { metrics, record, recent } = this.parts;
    for (const d of batch.decided) {
      recent.push({ timeMs: d.atMs, actor: d.terminalId, text: `${d.path} ${d.ok ? 'approved' : `declined ${d.reason}`}` });
      metrics.recordOrder(d.ok ? (d.proof!.path as Parameters<Metrics['recordOrder']>[0]) : undefined, d.ok, d.reason);
      if (d.declinedRemoteTxId !== undefined) record.declinedRemote.add(d.declinedRemoteTxId);
      if (!d.ok || !d.proof) continue;
      metrics.recordLatency(d.latencyKind, d.latencyRealMs);
      record.recordApproved({ proof: d.proof, approvedAtMs: d.atMs, remoteMode: d.remoteMode });
    }
    for (const r of batch.remitted) {
      const lagsMs = record.recordRemitted(r.txIds, r.amountMinor, r.atMs);
      metrics.recordRemittance(r.count, lagsMs);
      if (r.txIds.length > 0) {
        this.recentRemittances.push({ terminalId: r.terminalId, txIds: r.txIds });
        if (this.recentRemittances.length > RECENT_REMITTANCES_KEPT) this.recentRemittances.shift();
      }
    }
    const backlog = record.backlog;
    metrics.setBacklog(backlog.count, backlog.amountMinor);
    record.posProofs.push(...batch.posReceipts);
    for (const spend of batch.elsewhere) this.parts.forwardElsewhere(spend);
    for (const [name, by] of Object.entries(batch.counts)) metrics.count(name, by);
    worker.inCoverage = batch.inCoverage;
    worker.linksUp = batch.linksUp;
    worker.link = batch.link;
    if (this.parts.time.begun) {
      // Reconnects: every connection after the first of each endpoint (counted from the start of the run).
      const connects = this.parts.pool.connects;
      if (this.lastConnects === 0) this.lastConnects = connects;
      else if (connects > this.lastConnects) {
        metrics.recordReconnect(connects - this.lastConnects);
        this.lastConnects = connects;
      }
    }
  }

  /** One recent remittance with the proofs it carried, for the adversary to replay. */
  remittanceSample(prng: Prng): { terminalId: string; proofs: Proof[] } | undefined {
    if (this.recentRemittances.length === 0) return undefined;
    const pick = this.recentRemittances[prng.int(0, this.recentRemittances.length - 1)]!;
    const proofs = pick.txIds.map((txId) => this.parts.record.approved.get(txId)?.proof).filter((p): p is Proof => p !== undefined);
    return { terminalId: pick.terminalId, proofs };
  }
}
