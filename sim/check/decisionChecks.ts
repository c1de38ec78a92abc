// Goal: the checks made after every decision of a proxy, written once for both runners (the virtual simulator
// and the mqtt worker): the order was answered once and as the policy allows [ORACLE], MTDL < SL [INV-1], and
// the means moved only as the decision allows [INV-2].
// Method: the proxy's `proxy.decided` event carries the means as the decision left it; the last means seen per
// (terminal, means) is kept, because a shared means has one local image per proxy.

import type { ProxyEmitted } from '../../machines/proxy.ts';
import type { ProxyPolicy } from '../../machines/domain/proxyRules.ts';
import { holdsLocalBalance, type MeansState } from '../../machines/domain/means.ts';
import { checkMeansTransition } from '../../machines/domain/invariants.ts';
import { oracleProblem, type Workload } from '../core/workload.ts';
import type { InvariantBook, RecentEvents } from './checkers.ts';

export type DecidedEvent = Extract<ProxyEmitted, { type: 'proxy.decided' }>;

export class DecisionChecks {
  private readonly lastMeans = new Map<string, MeansState>();

  constructor(
    private readonly book: InvariantBook,
    private readonly recent: RecentEvents,
    private readonly workload: Workload,
    private readonly policy: ProxyPolicy,
  ) {}

  /** The means a terminal starts with, so its first decision is checked against it. */
  seed(terminalId: string, means: MeansState): void {
    this.lastMeans.set(`${terminalId}/${means.meansId}`, means);
  }

  check(terminalId: string, event: DecidedEvent, nowMs: number): void {
    const { order, response } = event;
    this.recent.push({ timeMs: nowMs, actor: terminalId, text: `${order.orderId} ${order.type} ${order.amountMinor} → ${response.ok ? response.proof.path : response.reason}` });
    const issued = this.workload.orders.get(order.orderId);
    if (issued) {
      this.book.check('ORACLE', !issued.answered, () => `order ${order.orderId} answered twice`, [terminalId]);
      this.workload.markAnswered(order.orderId);
    } else if (order.source.kind === 'pos') {
      // POS orders are made by the POS machine; they are recorded when their answer is.
      this.workload.record(order, { plan: { terminalId } });
      this.workload.orders.get(order.orderId)!.answered = true;
    }
    const problem = oracleProblem(this.policy, order, response);
    this.book.check('ORACLE', problem === undefined, () => problem!, [terminalId]);

    const means = event.means;
    if (!means) return;
    // [INV-1 MTDL<SL] after every decision of the proxy.
    this.book.check('INV-1', holdsLocalBalance(means), () => `${order.meansId}: MTDL ${means.localSpentMinor} ≥ SL ${means.localBalanceMinor}`, [terminalId]);
    const key = `${terminalId}/${order.meansId}`;
    const before = this.lastMeans.get(key);
    if (before) {
      // [INV-2 period limits] only a local approval says exactly how much the local limits moved.
      const payment = response.ok && response.proof.path !== 'remote' ? { amountMinor: response.proof.amountMinor, nowMs: response.proof.timeMs } : null;
      const problems = checkMeansTransition(before, means, payment);
      this.book.check('INV-2', problems.length === 0, () => problems.map((p) => p.message).join('; '), [terminalId]);
    }
    this.lastMeans.set(key, means);
  }
}
