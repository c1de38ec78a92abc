// Goal: the run's workload — the payment orders of every terminal's apps, the shop visits that make a POS ask
// for a proximity payment, the spending of shared means through other points of issue, and the simulated users
// who answer confirmation prompts. What outcome the policy allows is the order oracle's to say, not the workload's.
// Method: each terminal is one Poisson process over the sum of its rates (one pending timer per terminal, not
// one per app); at each arrival the kind of order is drawn by rate. With a scenario `arrival` (open-model load)
// the per-terminal processes give way to one global arrival stream (`ArrivalSchedule`, one pending timer): each
// arrival draws its source from the mix and a terminal uniformly among those up, and an arrival that cannot be
// issued (no terminal up, the in-flight bound reached) is counted as dropped, never skipped in silence. The
// workload only generates: each order it issues is announced to `onIssued` (the runner hands it to the order
// oracle, sim/check/oracle.ts), and the runner tells it of each answer (`answered`) so that it knows what is still
// in flight. Nothing a check does changes it.

import type { PaymentOrder } from '../../machines/messages.ts';
import type { AppProfile, Scenario } from '../scenario/types.ts';
import type { Prng } from './prng.ts';
import type { TimeSource } from './timeSource.ts';
import type { Fleet, TerminalSlot } from './fleet.ts';
import { drawAmountMinor } from './amounts.ts';
import { ArrivalSchedule } from './arrival.ts';

const HOUR_MS = 3_600_000;

export interface WorkloadCounters {
  issued: number;
  /** Orders not issued because their terminal was down (crashed or between SIM moves). */
  notIssuedTerminalDown: number;
  posVisits: number;
  elsewhere: number;
  elsewhereRefused: number;
  /** Open-model arrivals, and those dropped (also in `arrival`; here so that runners summing counters get them). */
  arrivals: number;
  arrivalDropped: number;
}

/** Why an open-model arrival was not issued. */
export type DropReason = 'noTerminalUp' | 'maxInFlight' | 'noSource';

/** What the arrival executor did: summary.arrival. `arrivals` = `issued` + `dropped` (POS visits included). */
export interface ArrivalStats {
  executor: string;
  arrivals: number;
  issued: number;
  dropped: number;
  droppedByReason: Record<DropReason, number>;
  /** Most app orders in flight at once (issued, not yet answered), as seen at each arrival. */
  peakInFlight: number;
}

export interface WorkloadOptions {
  /** Fraction of the scenario's global arrival rate this process issues (mqtt mode: a worker's slice). */
  arrivalShare?: number;
  /** Issue every open-model arrival already due when a timer fires (real time, where timers fire late). */
  catchUpArrivals?: boolean;
}

export class Workload {
  readonly counters: WorkloadCounters = { issued: 0, notIssuedTerminalDown: 0, posVisits: 0, elsewhere: 0, elsewhereRefused: 0, arrivals: 0, arrivalDropped: 0 };
  /** Set when the scenario has an `arrival` section. */
  readonly arrival: ArrivalStats | undefined;
  /** Hears of every order this workload issues (the runner's order oracle). */
  onIssued: ((order: PaymentOrder, terminalId: string) => void) | undefined;
  private running = true;
  /** The POS units a terminal may visit: read at `start`, once the runner has started them. */
  private posIds: string[] = [];
  private orderSeq = 0;
  /** App orders not yet known to be answered, with the actor that took each (the in-flight bound counts them). */
  /** Orders waiting for their answer, with the generation of the terminal they went to (a restart forgets them). */
  private readonly inFlight = new Map<string, { slot: TerminalSlot; generation: number }>();
  /** POS orders whose answer was seen: each is counted as issued once. */
  private readonly posOrdersSeen = new Set<string>();

  constructor(
    private readonly scenario: Scenario,
    private readonly scheduler: TimeSource,
    private readonly fleet: Fleet,
    private readonly prng: Prng,
    private readonly options: WorkloadOptions = {},
  ) {
    if (scenario.arrival) {
      this.arrival = {
        executor: scenario.arrival.executor,
        arrivals: 0,
        issued: 0,
        dropped: 0,
        droppedByReason: { noTerminalUp: 0, maxInFlight: 0, noSource: 0 },
        peakInFlight: 0,
      };
    }
  }

  /** Stops issuing: the liveness phase has begun. */
  stop(): void {
    this.running = false;
  }

  /** Arms the first arrival of every terminal (or of the open-model stream) and of every shared means' other points of issue. */
  start(): void {
    // Read here, not when the workload is built: the virtual simulator starts its POS units after building the
    // workload, and a list taken then was empty, so no terminal ever visited a shop in virtual mode.
    this.posIds = [...this.fleet.pos.keys()];
    if (this.scenario.arrival) this.startArrivals();
    // A means shared by several terminals (a family wallet) has one account, so one stream of spending elsewhere,
    // armed by the first of its terminals.
    const elsewhereArmed = new Set<string>();
    for (const slot of this.fleet.terminals) {
      if (!slot) continue;
      const rate = this.orderRatePerHour(slot);
      if (rate > 0 && !this.scenario.arrival) this.armOrder(slot, rate);
      const elsewhere = slot.plan.profile.elsewhere;
      if (!slot.plan.profile.dedicated && elsewhere && elsewhere.ordersPerHour > 0 && !elsewhereArmed.has(slot.plan.means.meansId)) {
        elsewhereArmed.add(slot.plan.means.meansId);
        this.armElsewhere(slot, elsewhere.ordersPerHour);
      }
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
    if (!slot.up) {
      this.counters.notIssuedTerminalDown++;
      return;
    }
    const app = this.drawApp(slot, ratePerHour);
    if (app) this.payFromApp(slot, app);
    else this.visitShop(slot);
  }

  /** The app of the terminal's next order, drawn by rate; undefined for a shop visit. */
  private drawApp(slot: TerminalSlot, ratePerHour: number): AppProfile | undefined {
    let pick = this.prng.nextFloat() * ratePerHour;
    for (const app of slot.plan.apps) {
      pick -= app.ordersPerHour;
      if (pick < 0) return app;
    }
    return undefined;
  }

  private payFromApp(slot: TerminalSlot, app: AppProfile): string {
    const order: PaymentOrder = {
      orderId: `${slot.plan.terminalId}:o${++this.orderSeq}`,
      source: { kind: 'app', appId: app.name },
      type: app.type,
      // Internal payments of a terminal with local value pay from its purse on the SIM.
      meansId: app.type === 'internal' && slot.plan.purse ? slot.plan.purse.meansId : slot.plan.means.meansId,
      amountMinor: drawAmountMinor(app.amount, this.prng),
      payee: app.payee,
      remoteMode: app.remoteMode,
      captureAfterMs: app.captureAfterMs,
    };
    this.counters.issued++;
    this.onIssued?.(order, slot.plan.terminalId);
    this.inFlight.set(order.orderId, { slot, generation: slot.generation });
    this.fleet.sendToTerminal(slot, { type: 'app.pay', order });
    return order.orderId;
  }

  /** A shop visit: a POS asks this terminal for a proximity payment over the near link. False without POS units. */
  private visitShop(slot: TerminalSlot): boolean {
    if (this.posIds.length === 0) return false;
    const pos = this.scenario.population.pos;
    const posId = this.posIds[this.prng.int(0, this.posIds.length - 1)]!;
    const amountMinor = drawAmountMinor(pos.amount, this.prng);
    this.counters.posVisits++;
    this.fleet.pos.get(posId)!.send({ type: 'pos.sale', terminalId: slot.plan.terminalId, meansId: slot.plan.means.meansId, amountMinor });
    return true;
  }

  // ------------------------------------------------------------------ open-model load

  private startArrivals(): void {
    const arrival = this.scenario.arrival!;
    const schedule = new ArrivalSchedule(arrival, this.scenario.durationMs, this.options.arrivalShare ?? 1);
    // Dense lists: in mqtt mode a worker's fleet holds only its slice of the terminals.
    const all = this.fleet.terminals.filter((slot): slot is TerminalSlot => slot !== undefined);
    const sources = arrival.mix.map((entry) => ({
      entry,
      app: this.scenario.population.apps.find((app) => app.name === entry.source),
      slots: entry.source === 'pos' ? all : all.filter((slot) => slot.plan.apps.some((app) => app.name === entry.source)),
    }));
    const totalWeight = arrival.mix.reduce((sum, entry) => sum + entry.weight, 0);
    const arriveOnce = (): void => {
      if (sources.length === 0) return this.arriveOwnMix(all);
      let pick = this.prng.nextFloat() * totalWeight;
      const source = sources.find((s) => (pick -= s.entry.weight) < 0) ?? sources[sources.length - 1]!;
      this.arriveFrom(source.slots, source.app);
    };
    let dueMs = schedule.next();
    const arm = (): void => {
      if (dueMs === undefined) return;
      this.scheduler.at(dueMs, () => {
        if (!this.running) return;
        arriveOnce();
        dueMs = schedule.next();
        // A real-time timer fires late (a busy event loop, Node's whole-millisecond timers, at least 1 ms per timer),
        // so one arrival per timer caps the rate near one per loop turn, and the generator falls behind while the
        // machine is far from busy. As k6's executors do, every arrival already due is issued now. The virtual mode
        // leaves this off: its timers fire on time, and arrivals of the same millisecond issued in one callback would
        // move against that millisecond's other events, changing the trace.
        if (this.options.catchUpArrivals) {
          while (this.running && dueMs !== undefined && dueMs <= this.scheduler.now()) {
            arriveOnce();
            dueMs = schedule.next();
          }
        }
        arm();
      });
    };
    arm();
  }

  /** An arrival from the terminal's own mix: its apps by ordersPerHour, and its shop visits. */
  private arriveOwnMix(all: readonly TerminalSlot[]): void {
    const stats = this.arrival!;
    stats.arrivals++;
    this.counters.arrivals++;
    const slot = this.pickUp(all);
    if (!slot) return this.drop('noTerminalUp');
    const rate = this.orderRatePerHour(slot);
    if (rate <= 0) return this.drop('noSource');
    const app = this.drawApp(slot, rate);
    if (app) this.issueApp(slot, app);
    else if (this.visitShop(slot)) stats.issued++;
    else this.drop('noSource');
  }

  /** An arrival from one source of the mix: an app (from a terminal having it), or a shop visit (app undefined). */
  private arriveFrom(slots: readonly TerminalSlot[], app: AppProfile | undefined): void {
    const stats = this.arrival!;
    stats.arrivals++;
    this.counters.arrivals++;
    const slot = this.pickUp(slots);
    if (!slot) return this.drop('noTerminalUp');
    if (app) this.issueApp(slot, app);
    else if (this.visitShop(slot)) stats.issued++;
    else this.drop('noSource');
  }

  private issueApp(slot: TerminalSlot, app: AppProfile): void {
    const stats = this.arrival!;
    const bound = this.scenario.arrival!.maxInFlight;
    const inFlight = bound > 0 && this.inFlight.size >= bound ? this.pruneInFlight() : this.inFlight.size;
    stats.peakInFlight = Math.max(stats.peakInFlight, inFlight);
    if (bound > 0 && inFlight >= bound) return this.drop('maxInFlight');
    this.payFromApp(slot, app);
    stats.issued++;
    stats.peakInFlight = Math.max(stats.peakInFlight, this.inFlight.size);
  }

  /**
   * One order from the terminal's app `appName` now, outside the scenario's rates (a benchmark driver's closed
   * loop). Returns the order id, or undefined when the terminal is down or has not got that app.
   */
  payNow(slot: TerminalSlot, appName: string): string | undefined {
    const app = slot.plan.apps.find((a) => a.name === appName);
    if (!slot.up || !app) return undefined;
    return this.payFromApp(slot, app);
  }

  /**
   * A proxy answered `order`: it no longer counts as in flight. A POS order was made by the POS machine after a
   * shop visit this workload drove; it is counted as issued when its first answer is seen.
   */
  answered(order: PaymentOrder): void {
    this.inFlight.delete(order.orderId);
    if (order.source.kind !== 'pos' || this.posOrdersSeen.has(order.orderId)) return;
    this.posOrdersSeen.add(order.orderId);
    this.counters.issued++;
  }

  /**
   * True while an app order is still waiting for its answer at a terminal that is up: the run has not drained
   * until it is answered (a remote payment posted at SD but not yet answered would otherwise look unapproved).
   */
  hasOrdersInFlight(): boolean {
    return this.pruneInFlight() > 0;
  }

  /** The orders still waiting for their answer at a terminal that is up (at the end: INV-7's last check). */
  ordersInFlight(): string[] {
    this.pruneInFlight();
    return [...this.inFlight.keys()];
  }

  /**
   * Forgets orders whose terminal crashed (its app will never hear back) and those a refusing terminal answered
   * itself; answered orders left the map when their answer was seen.
   */
  private pruneInFlight(): number {
    for (const [orderId, { slot, generation }] of this.inFlight) {
      // A terminal that refused to start its proxy (untrusted code, a strongbox it could not open) answers its
      // apps itself, without a proxy decision: its orders are answered too. (A refusing terminal never hibernates.)
      const answeredByTerminal = slot.actor?.getSnapshot().context.refusal !== undefined;
      if (!slot.up || slot.generation !== generation || answeredByTerminal) this.inFlight.delete(orderId);
    }
    return this.inFlight.size;
  }

  /** A terminal drawn uniformly among the `slots` that are up: one draw, and a second among the up ones if it is down. */
  private pickUp(slots: readonly TerminalSlot[]): TerminalSlot | undefined {
    if (slots.length === 0) return undefined;
    const first = slots[this.prng.int(0, slots.length - 1)]!;
    if (first.up) return first;
    const up = slots.filter((slot) => slot.up);
    return up.length === 0 ? undefined : up[this.prng.int(0, up.length - 1)];
  }

  private drop(reason: DropReason): void {
    const stats = this.arrival!;
    stats.dropped++;
    stats.droppedByReason[reason]++;
    this.counters.arrivalDropped++;
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
    const generation = slot.generation;
    this.scheduler.schedule(users.thinkTimeMs, () => {
      // Only the terminal that asked hears the answer: not one restarted since.
      if (slot.up && slot.generation === generation) this.fleet.sendToTerminal(slot, { type: 'user.answer', orderId, approved, pin });
    });
  }
}

export { HOUR_MS };
