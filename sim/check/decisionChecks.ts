// Goal: the checks made after every decision of a proxy, written once for both runners (the virtual simulator
// and the mqtt worker): the order was answered once and as the policy allows [ORACLE], MTDL < SL [INV-1], and
// the means moved only as the decision allows [INV-2].
// Method: the proxy's `proxy.decided` event carries the order, the response and the means as the decision left
// it; each goes to its invariant's checker (oracle.ts, inv1LocalBalance.ts, inv2PeriodLimits.ts). The runner
// hands the workload's issued orders to `expect` (the oracle's record), so the checks never touch the workload.

import type { ProxyEmitted } from '../../machines/proxy.ts';
import type { ProxyPolicy } from '../../machines/domain/proxyRules.ts';
import type { MeansState } from '../../machines/domain/means.ts';
import type { InvariantBook, RecentEvents } from './invariantBook.ts';
import { OrderOracle } from './oracle.ts';
import { checkLocalBalanceAfterDecision } from './inv1LocalBalance.ts';
import { PeriodLimitsCheck } from './inv2PeriodLimits.ts';

export type DecidedEvent = Extract<ProxyEmitted, { type: 'proxy.decided' }>;

export class DecisionChecks {
  private readonly oracle: OrderOracle;
  private readonly periodLimits: PeriodLimitsCheck;

  constructor(
    private readonly book: InvariantBook,
    private readonly recent: RecentEvents,
    policy: ProxyPolicy,
  ) {
    this.oracle = new OrderOracle(book, policy);
    this.periodLimits = new PeriodLimitsCheck(book);
  }

  /** The means a terminal starts with, so its first decision is checked against it. */
  seed(terminalId: string, means: MeansState): void {
    this.periodLimits.seed(terminalId, means);
  }

  /** The workload issued this order: the oracle expects exactly one answer to it. */
  expect(orderId: string): void {
    this.oracle.expect(orderId);
  }

  check(terminalId: string, event: DecidedEvent, nowMs: number): void {
    const { order, response, means, decidedWith } = event;
    this.recent.push({ timeMs: nowMs, actor: terminalId, text: `${order.orderId} ${order.type} ${order.amountMinor} → ${response.ok ? response.proof.path : response.reason}` });
    this.oracle.check(terminalId, order, response, decidedWith);
    if (!means) return;
    checkLocalBalanceAfterDecision(this.book, terminalId, means);
    this.periodLimits.check(terminalId, means, response);
  }
}
