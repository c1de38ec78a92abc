// Goal: the run's workload — the payment orders of every terminal's apps, the shop visits that make a POS ask
// for a proximity payment, the spending of shared means through other points of issue, and the simulated users
// who answer confirmation prompts — and, for each order, what outcome the policy allows.
// Method: each terminal is one Poisson process over the sum of its rates (one pending timer per terminal, not
// one per app); at each arrival the kind of order is drawn by rate. Every order is recorded as `IssuedOrder`
// so the oracle can check that it is answered once, and answered as the policy allows.

import type { PaymentOrder, ProxyResponse } from '../machines/messages.ts';
import type { ProxyPolicy } from '../machines/domain/proxyRules.ts';
import type { Scenario } from './scenario/types.ts';
import type { Prng } from './prng.ts';
import type { TimeSource } from './timeSource.ts';
import type { Fleet, TerminalSlot } from './fleet.ts';
import { drawAmountMinor } from './amounts.ts';

const HOUR_MS = 3_600_000;

export interface IssuedOrder {
  order: PaymentOrder;
  terminalId: string;
  issuedAtMs: number;
  answered: boolean;
}

export interface WorkloadCounters {
  issued: number;
  /** Orders not issued because their terminal was down (crashed or between SIM moves). */
  notIssuedTerminalDown: number;
  posVisits: number;
  elsewhere: number;
  elsewhereRefused: number;
}

export class Workload {
  readonly orders = new Map<string, IssuedOrder>();
  readonly counters: WorkloadCounters = { issued: 0, notIssuedTerminalDown: 0, posVisits: 0, elsewhere: 0, elsewhereRefused: 0 };
  private running = true;
  private readonly posIds: string[];
  private orderSeq = 0;

  constructor(
    private readonly scenario: Scenario,
    private readonly scheduler: TimeSource,
    private readonly fleet: Fleet,
    private readonly prng: Prng,
  ) {
    this.posIds = [...fleet.pos.keys()];
  }

  /** Stops issuing: the liveness phase has begun. */
  stop(): void {
    this.running = false;
  }

  /** Arms the first arrival of every terminal and of every shared means' other points of issue. */
  start(): void {
    for (const slot of this.fleet.terminals) {
      const rate = this.orderRatePerHour(slot);
      if (rate > 0) this.armOrder(slot, rate);
      const elsewhere = slot.plan.profile.elsewhere;
      if (!slot.plan.profile.dedicated && elsewhere && elsewhere.ordersPerHour > 0) this.armElsewhere(slot, elsewhere.ordersPerHour);
    }
  }

  private orderRatePerHour(slot: TerminalSlot): number {
    const pos = this.scenario.population.pos;
    const posRate = pos.units > 0 ? pos.visitsPerTerminalPerHour : 0;
    return slot.plan.apps.reduce((sum, app) => sum + app.ordersPerHour, 0) + posRate;
  }

  private armOrder(slot: TerminalSlot, ratePerHour: number): void {
    this.scheduler.schedule(this.prng.exponential(HOUR_MS / ratePerHour), () => {
      if (!this.running) return;
      this.issue(slot, ratePerHour);
      this.armOrder(slot, ratePerHour);
    });
  }

  private issue(slot: TerminalSlot, ratePerHour: number): void {
    if (!slot.actor) {
      this.counters.notIssuedTerminalDown++;
      return;
    }
    const pos = this.scenario.population.pos;
    let pick = this.prng.nextFloat() * ratePerHour;
    for (const app of slot.plan.apps) {
      pick -= app.ordersPerHour;
      if (pick < 0) {
        const order: PaymentOrder = {
          orderId: `${slot.plan.terminalId}:o${++this.orderSeq}`,
          source: { kind: 'app', appId: app.name },
          type: app.type,
          meansId: slot.plan.means.meansId,
          amountMinor: drawAmountMinor(app.amount, this.prng),
          payee: app.payee,
          remoteMode: app.remoteMode,
          captureAfterMs: app.captureAfterMs,
        };
        this.record(order, slot);
        slot.actor.send({ type: 'app.pay', order });
        return;
      }
    }
    // A shop visit: a POS asks this terminal for a proximity payment over the near link.
    if (this.posIds.length === 0) return;
    const posId = this.posIds[this.prng.int(0, this.posIds.length - 1)]!;
    const amountMinor = drawAmountMinor(pos.amount, this.prng);
    this.counters.posVisits++;
    this.fleet.pos.get(posId)!.send({ type: 'pos.sale', terminalId: slot.plan.terminalId, meansId: slot.plan.means.meansId, amountMinor });
  }

  /** POS orders are made by the POS machine; the simulator records them when the POS reports them. */
  record(order: PaymentOrder, slot: { plan: { terminalId: string } }): void {
    this.counters.issued++;
    this.orders.set(order.orderId, { order, terminalId: slot.plan.terminalId, issuedAtMs: this.scheduler.now(), answered: false });
  }

  private armElsewhere(slot: TerminalSlot, ratePerHour: number): void {
    const elsewhere = slot.plan.profile.elsewhere!;
    this.scheduler.schedule(this.prng.exponential(HOUR_MS / ratePerHour), () => {
      if (!this.running) return;
      const meansId = slot.plan.means.meansId;
      const amountMinor = drawAmountMinor(elsewhere.amount, this.prng);
      try {
        this.fleet.ledgerOfMeans(meansId).spendElsewhere({ transferId: `elsewhere:${meansId}:${++this.orderSeq}`, meansId, payee: 'merchant:web', amountMinor });
        this.counters.elsewhere++;
      } catch {
        // A web shop's payment refused for insufficient funds is an ordinary event.
        this.counters.elsewhereRefused++;
      }
      this.armElsewhere(slot, ratePerHour);
    });
  }

  /** The simulated user answers a confirmation prompt after thinking. */
  answerPrompt(slot: TerminalSlot, orderId: string, kind: string): void {
    const users = this.scenario.population.users;
    const approved = !this.prng.chance(users.declineProbability);
    const pin = kind === 'pin' && this.prng.chance(users.wrongPinProbability) ? `${users.pin}x` : users.pin;
    const actor = slot.actor;
    this.scheduler.schedule(users.thinkTimeMs, () => {
      if (slot.actor === actor) actor?.send({ type: 'user.answer', orderId, approved, pin });
    });
  }
}

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
  if (proof.path === 'localBelowThreshold' && order.amountMinor > thresholdMinor) return `amount ${order.amountMinor} over M0 ${thresholdMinor} approved locally in coverage`;
  if (proof.path === 'localOffline') {
    if (order.amountMinor > offline.perPaymentCapMinor) return `offline approval of ${order.amountMinor} over the per-payment cap ${offline.perPaymentCapMinor}`;
    if (offline.overThreshold === 'decline' && order.amountMinor > thresholdMinor) return `offline approval over M0 while policy declines`;
  }
  return undefined;
}

export { HOUR_MS };
