// Goal: the order ORACLE — every order is answered once, and as the policy allows — kept apart from the workload,
// so the workload only generates orders and nothing the checks do changes it.
// Method: the runner tells the oracle of each order the workload issues (`expect`) and of each answer a proxy
// gives (`check`). The oracle keeps its own record of the app orders still waiting for their answer and forgets
// each once answered, so a day's run does not hold every order: an answer to an app order it is not waiting for
// was given twice (or to an order never issued). An order made by a POS unit (the workload only drove the shop
// visit) is first seen with its answer, so only the ids of answered POS orders are kept. What the policy allows
// is a pure function of the policy, the order and the response (`oracleProblem`).

import type { PaymentOrder, ProxyResponse } from '../../machines/messages.ts';
import type { ProxyPolicy } from '../../machines/domain/proxyRules.ts';
import type { DecisionContext } from '../../machines/proxyTypes.ts';
import { discriminate } from '../../machines/domain/discriminate.ts';
import type { InvariantBook } from './invariantBook.ts';

/** The decline reasons of the discrimination itself (B2's offline criteria): given only when the route says so. */
const ROUTE_DECLINES: ReadonlySet<string> = new Set(['offlineOverThreshold', 'offlinePerPaymentCap', 'offlinePendingCount', 'offlinePendingAmount']);

/**
 * What the policy allows for an answered order; a non-empty string names what is wrong. With `decidedWith` (the
 * coverage and backlog the proxy saw), the route is derived again from the policy (B1 internal, B2 coverage and the
 * offline caps, B3 the threshold M0): a decline the route calls for must be given with its reason, and only then;
 * an approval must be on the route's path (or remote, when a payment below M0 in coverage was over a local limit).
 */
export function oracleProblem(policy: ProxyPolicy, order: PaymentOrder, response: ProxyResponse, decidedWith?: DecisionContext): string | undefined {
  if (response.orderId !== order.orderId) return `response for ${response.orderId} given to ${order.orderId}`;
  const route =
    decidedWith === undefined || !Number.isSafeInteger(order.amountMinor) || order.amountMinor <= 0
      ? undefined
      : discriminate({ type: order.type, amountMinor: order.amountMinor, ...decidedWith }, policy.discrimination);
  const where = () => `${decidedWith!.inCoverage ? 'in coverage' : 'offline'}, ${decidedWith!.pendingCount} pending for ${decidedWith!.pendingAmountMinor}`;
  if (!response.ok) {
    if (route?.route === 'decline' && response.reason !== route.reason) return `declined ${response.reason}, the policy declines it ${route.reason} (${where()})`;
    if (ROUTE_DECLINES.has(response.reason) && route !== undefined && route.route !== 'decline') return `declined ${response.reason} though the policy routes it ${route.path} (${where()})`;
    return undefined;
  }
  if (route?.route === 'decline') return `approved on ${response.proof.path}, the policy declines it ${route.reason} (${where()})`;
  if (route !== undefined && response.proof.path !== route.path && !(route.path === 'localBelowThreshold' && response.proof.path === 'remote')) {
    return `approved on ${response.proof.path}, the policy routes it ${route.path} (${where()})`;
  }
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
  /** The app orders issued and not answered yet; an answered one leaves. */
  private readonly waiting = new Set<string>();
  /** The POS orders answered: they are first heard of with their answer, so a second one is told apart only here. */
  private readonly answeredPos = new Set<string>();

  constructor(
    private readonly book: InvariantBook,
    private readonly policy: ProxyPolicy,
  ) {}

  /** The workload issued this order: it must be answered exactly once. */
  expect(orderId: string): void {
    this.waiting.add(orderId);
  }

  /** App orders issued and not answered yet. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** [ORACLE] A proxy answered `order` with `response`: answered once, and as the policy allows. */
  check(terminalId: string, order: PaymentOrder, response: ProxyResponse, decidedWith?: DecisionContext): void {
    if (order.source.kind === 'pos') {
      // A POS order was made by the POS machine after a shop visit: its answer is the first the oracle hears of it.
      if (this.answeredPos.has(order.orderId)) this.book.check('ORACLE', false, () => `order ${order.orderId} answered twice`, [terminalId]);
      else this.answeredPos.add(order.orderId);
    } else {
      const wasWaiting = this.waiting.delete(order.orderId);
      this.book.check('ORACLE', wasWaiting, () => `order ${order.orderId} answered twice, or never issued`, [terminalId]);
    }
    const problem = oracleProblem(this.policy, order, response, decidedWith);
    this.book.check('ORACLE', problem === undefined, () => problem!, [terminalId]);
  }
}
