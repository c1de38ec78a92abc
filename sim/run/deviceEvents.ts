// Goal: what a run does with the events of its devices (terminals, proxies, POS units), written once for both
// modes: answer the user's prompts, check every decision, record approvals and remittances in the run record,
// and count refusals.
// Method: `DeviceEvents` implements the device half of `FleetObserver`; the part that differs between the modes
// — the virtual simulator feeds its metrics directly, the mqtt worker batches records for its coordinator — is a
// `DeviceEventSink` each runner supplies. The decision checks (oracle, INV-1, INV-2) run before anything is
// recorded, so a decision is checked exactly once whichever mode saw it; the workload is told of the answer after
// them, and nothing a check does changes it.

import type { FleetObserver, TerminalSlot } from '../core/fleet.ts';
import type { Workload } from '../core/workload.ts';
import type { DecisionChecks, DecidedEvent } from '../check/decisionChecks.ts';
import type { RecentEvents } from '../check/invariantBook.ts';
import type { TerminalEmitted } from '../../machines/terminal.ts';
import type { ProxyEmitted } from '../../machines/proxy.ts';
import type { PosEmitted } from '../../machines/pos.ts';
import type { Proof } from '../../machines/messages.ts';
import type { RunRecord } from './runRecord.ts';

/** One remittance SD acknowledged, as the run records it. */
export interface Remittance {
  count: number;
  amountMinor: number;
  /** Approval → acknowledgement, run ms, of each transaction the run record saw approved. */
  lagsMs: number[];
  txIds: string[];
}

/** The runner's own handling, called after the shared part. */
export interface DeviceEventSink {
  /** Adds one to a named counter (refusals by reason, POS declines…). */
  count(name: string): void;
  /** A decision, after it was checked and (when approved) recorded in the run record. */
  decided(terminalId: string, event: DecidedEvent, nowMs: number): void;
  /** A remittance, after it left the run record's backlog. */
  remitted(terminalId: string, remittance: Remittance, nowMs: number): void;
  /** A receipt a POS unit now holds. */
  receipt(proof: Proof): void;
}

export interface DeviceEventParts {
  record: RunRecord;
  decisions: DecisionChecks;
  workload: Workload;
  recent: RecentEvents;
  now(): number;
  slotOf(terminalId: string): TerminalSlot | undefined;
  sink: DeviceEventSink;
}

export class DeviceEvents implements Pick<FleetObserver, 'onTerminal' | 'onProxy' | 'onPos'> {
  constructor(private readonly parts: DeviceEventParts) {}

  onTerminal(event: TerminalEmitted): void {
    if (event.type === 'terminal.confirm') {
      const slot = this.parts.slotOf(event.terminalId);
      if (slot) this.parts.workload.answerPrompt(slot, event.orderId, event.kind);
    } else if (event.type === 'terminal.refused') {
      this.parts.sink.count('terminalRefused');
    }
  }

  onProxy(terminalId: string, event: ProxyEmitted): void {
    switch (event.type) {
      case 'proxy.decided':
        return this.onDecided(terminalId, event);
      case 'proxy.remitted':
        return this.onRemitted(terminalId, event);
      case 'proxy.refused':
        return this.parts.sink.count(`proxyRefused:${event.reason}`);
      default:
        return;
    }
  }

  onPos(event: PosEmitted): void {
    if (event.type === 'pos.receipt') this.parts.sink.receipt(event.proof);
    else if (event.type === 'pos.declined') this.parts.sink.count(`posDeclined:${event.reason}`);
  }

  private onDecided(terminalId: string, event: DecidedEvent): void {
    const now = this.parts.now();
    const { order, response } = event;
    // The order oracle (sim/check/oracle.ts) hears the answer first; then the workload, which only learns that the
    // order is no longer in flight.
    this.parts.decisions.check(terminalId, event, now);
    this.parts.workload.answered(order);
    if (response.ok) this.parts.record.recordApproved({ proof: response.proof, approvedAtMs: now, remoteMode: order.remoteMode });
    else if (event.declinedRemoteTxId !== undefined) this.parts.record.declinedRemote.add(event.declinedRemoteTxId);
    this.parts.sink.decided(terminalId, event, now);
  }

  private onRemitted(terminalId: string, event: Extract<ProxyEmitted, { type: 'proxy.remitted' }>): void {
    const now = this.parts.now();
    let amountMinor = 0;
    const txIds: string[] = [];
    for (const tx of event.txs) {
      amountMinor += tx.amountMinor;
      txIds.push(tx.txId);
    }
    const lagsMs = this.parts.record.recordRemitted(txIds, amountMinor, now);
    this.parts.sink.remitted(terminalId, { count: event.txs.length, amountMinor, lagsMs, txIds }, now);
    this.parts.recent.push({ timeMs: now, actor: terminalId, text: `remitted ${event.txs.length} tx (${event.reqId})` });
  }
}
