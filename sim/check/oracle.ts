// Goal: the order ORACLE — every order is answered once, and as the policy allows — kept apart from the workload,
// so the workload only generates orders and nothing the checks do changes it.
// Method: the runner tells the oracle of each order the workload issues (`expect`) and of each answer a proxy
// gives (`check`). The oracle keeps its own record of the orders it expects and whether each was answered; an
// order made by a POS unit (the workload only drove the shop visit) is first seen with its answer. What the policy
// allows is a pure function of the policy, the order and the response (`oracleProblem`).

import type { PaymentOrder, ProxyResponse } from '../../machines/messages.ts';
import type { ProxyPolicy } from '../../machines/domain/proxyRules.ts';
import type { InvariantBook } from './invariantBook.ts';

/** What the policy allows for an answered order; a non-empty string names what is wrong. */
export function oracleProblem(policy: ProxyPolicy, order: PaymentOrder, response: ProxyResponse): string | undefined {
  if (response.orderId !== order.orderId) return `response for ${response.orderId} given to ${order.orderId}`;
  if (!response.ok) return undefined;
  const proof = response.proof;
  if (proof.amountMinor !== order.amountMinor || proof.payee !== order.payee || proof.meansId !== order.meansId) {
    return `approved ${proof.amountMinor} to ${proof.payee} from ${proof.meansId}, ordered ${order.amountMinor} to ${order.payee} from ${order.meansId}`;
  }
  const { thresholdMinor, offline } = policy.discrimination;
  if (order.type === 'internal' && proof.path !== 'internal') return `internal order approved on path ${proof.path}`;
  if (order.type !== 'internal' && proof.path === 'internal') return `${order.type} order approved as internal`;
  // In coverage, only an amount up to the threshold M0 may be approved locally.
  if (proof.path === 'localBelowThreshold' && order.amountMinor > thresholdMinor) return `amount ${order.amountMinor} over M0 ${thresholdMinor} approved locally in coverage`;
  if (proof.path === 'localOffline') {
    if (order.amountMinor > offline.perPaymentCapMinor) return `offline approval of ${order.amountMinor} over the per-payment cap ${offline.perPaymentCapMinor}`;
    if (offline.overThreshold === 'decline' && order.amountMinor > thresholdMinor) return `offline approval over M0 while policy declines`;
  }
  return undefined;
}

export class OrderOracle {
  /** Every order expected or seen, by order id: true once answered. */
  private readonly answered = new Map<string, boolean>();

  constructor(
    private readonly book: InvariantBook,
    private readonly policy: ProxyPolicy,
  ) {}

  /** The workload issued this order: it must be answered exactly once. */
  expect(orderId: string): void {
    this.answered.set(orderId, false);
  }

  /** [ORACLE] A proxy answered `order` with `response`: answered once, and as the policy allows. */
  check(terminalId: string, order: PaymentOrder, response: ProxyResponse): void {
    const seen = this.answered.get(order.orderId);
    // A POS order was made by the POS machine after a shop visit: its answer is the first the oracle hears of it.
    if (seen !== undefined) this.book.check('ORACLE', !seen, () => `order ${order.orderId} answered twice`, [terminalId]);
    if (seen !== undefined || order.source.kind === 'pos') this.answered.set(order.orderId, true);
    const problem = oracleProblem(this.policy, order, response);
    this.book.check('ORACLE', problem === undefined, () => problem!, [terminalId]);
  }
}
