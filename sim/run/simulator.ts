// Goal: one deterministic virtual run of a scenario — the simulator loop of payfleet, laid out like
// TigerBeetle's VOPR: a scheduler in virtual time, a simulated network with named fault knobs, a fleet of
// XState actors, a workload that knows what each order may come to, a nemesis, and one checker per invariant.
// Method: a safety phase (orders, coverage changes and faults for `durationMs`), then a liveness phase (faults
// stop, every terminal back in coverage, crashed things restarted, the network clean) that must drain every
// backlog within `drainMs`. Invariants are checked after every event that could break them and again at the
// end; the first violation stops the run with the seed. Every delivered message feeds the trace hash.

import type { Scenario } from '../scenario/types.ts';
import { proxyPolicyOf } from '../scenario/policy.ts';
import { Scheduler } from '../core/scheduler.ts';
import { Prng } from '../core/prng.ts';
import { SimNetwork } from '../core/network.ts';
import { createSimLink } from '../core/link.ts';
import { TraceHash } from '../core/traceHash.ts';
import { Metrics } from './metrics.ts';
import { Fleet, proxyStateOf, type FleetObserver, type TerminalSlot } from '../core/fleet.ts';
import { planPos, planTerminal } from '../core/population.ts';
import { Workload } from '../core/workload.ts';
import { DecisionChecks } from '../check/decisionChecks.ts';
import { CoverageModel } from '../core/coverage.ts';
import { Nemesis } from '../core/nemesis.ts';
import { InvariantBook, InvariantViolation, RecentEvents } from '../check/invariantBook.ts';
import { checkAtEnd, type EndCheckInput, type LedgerFigures } from '../check/endChecks.ts';
import { checkLedgerConserves } from '../check/inv3Conservation.ts';
import { AnswersOfSd } from '../check/inv4NothingLostNothingTwice.ts';
import { checkAdversarialApplied } from '../check/inv6Signatures.ts';
import { EMPTY_JOURNAL } from '../check/inv7Liveness.ts';
import type { SumTrackingLedgerStore } from '../core/ledgerStore.ts';
import type { TerminalEmitted } from '../../machines/terminal.ts';
import type { ProxyEmitted } from '../../machines/proxy.ts';
import type { PosEmitted } from '../../machines/pos.ts';
import type { ServerEmitted } from '../../machines/server.ts';
import type { LinkMessage, Proof, ServerRequest, ServerResult } from '../../machines/messages.ts';
import { isDrained } from '../../machines/domain/remittance.ts';

const MINUTE_MS = 60_000;
const NEAR_LINK_DELAY_MS = 50;
/** How often the liveness phase looks whether everything has drained. */
const DRAIN_POLL_MS = 5_000;

export interface RunOptions {
  /** Called about every simulated minute with progress figures (the CLI draws its live line from it). */
  onProgress?: (p: Progress) => void;
}

export interface Progress {
  simulatedMs: number;
  totalMs: number;
  events: number;
  terminalsInCoverage: number;
  backlogCount: number;
  phase: 'safety' | 'liveness';
}

export interface ApprovedPayment {
  proof: Proof;
  approvedAtMs: number;
  remoteMode?: 'debit' | 'authCapture';
}

export class Simulator implements FleetObserver {
  readonly scheduler = new Scheduler();
  readonly prng: Prng;
  readonly network: SimNetwork;
  readonly fleet: Fleet;
  readonly workload: Workload;
  readonly coverage: CoverageModel;
  readonly nemesis: Nemesis;
  readonly metrics = new Metrics();
  readonly trace = new TraceHash();
  readonly recent = new RecentEvents();
  readonly book: InvariantBook;
  private readonly decisions: DecisionChecks;
  /** Every payment approved by a proxy, by transaction id (the workload's ledger of expectations). */
  readonly approved = new Map<string, ApprovedPayment>();
  /** Proofs held by POS units (their receipts). */
  readonly posProofs: Proof[] = [];
  /** SD's answers as they come: a transaction posted twice is caught as it happens, reversals kept [INV-4]. */
  private readonly answers: AnswersOfSd;
  private backlogCount = 0;
  private backlogAmountMinor = 0;
  private peakBacklogAmountMinor = 0;
  private phase: 'safety' | 'liveness' = 'safety';
  private minutesSampled = 0;
  drainedAtMs: number | undefined;
  /** Ledger figures, set by the end checks. */
  endFigures: LedgerFigures | undefined;

  constructor(
    readonly scenario: Scenario,
    private readonly options: RunOptions = {},
  ) {
    this.prng = new Prng(scenario.seed);
    this.book = new InvariantBook(scenario.seed, () => this.scheduler.now(), this.recent);
    const net = scenario.network;
    this.network = new SimNetwork(this.scheduler, this.prng.fork('network'), {
      lossProbability: net.lossProbability,
      duplicateProbability: net.duplicateProbability,
      reorderProbability: net.reorderProbability,
      oneWayDelayMsMedian: net.latency.medianMs,
      oneWayDelayMsP99: net.latency.p99Ms,
    });
    this.network.onDeliver = (timeMs, from, to, message) => this.onDeliver(timeMs, from, to, message);
    this.network.onReconnect = () => this.metrics.recordReconnect();
    const policy = proxyPolicyOf(scenario.policy);
    this.fleet = new Fleet(
      {
        scheme: scenario.crypto,
        policy,
        shards: scenario.population.shards,
        pin: scenario.population.users.pin,
        nearLinkDelayMs: NEAR_LINK_DELAY_MS,
        serviceTimeMs: scenario.servers.serviceTimeMs,
      },
      { time: this.scheduler, clock: this.scheduler.clock, link: createSimLink(this.network) },
      this.prng.fork('fleet'),
      this,
    );
    this.coverage = new CoverageModel(scenario, this.scheduler, this.fleet, this.prng.fork('coverage'));
    this.nemesis = new Nemesis(this.scheduler, this.network, this.fleet, this.coverage, this.prng.fork('nemesis'));
    this.workload = new Workload(scenario, this.scheduler, this.fleet, this.prng.fork('workload'));
    this.decisions = new DecisionChecks(this.book, this.recent, policy);
    this.workload.onIssued = (order) => this.decisions.expect(order.orderId);
    this.answers = new AnswersOfSd(this.book);
  }

  /** Builds the fleet and runs both phases; returns normally even when an invariant broke (see `book`). */
  run(): void {
    this.build();
    const { durationMs, drainMs } = this.scenario;
    try {
      // A violation found inside an actor's callback cannot unwind through XState, so the book raises a flag
      // and the loop stops at the next event.
      this.scheduler.runUntil(durationMs, () => this.book.stopped);
      if (this.book.stopped) return;
      this.beginLiveness();
      this.scheduler.runUntil(durationMs + drainMs, () => this.drainedAtMs !== undefined || this.book.stopped);
      if (this.book.stopped) return;
      this.sampleMinute();
      this.book.stopOnViolation = false;
      this.endFigures = checkAtEnd(this.endCheckInput());
    } catch (error) {
      if (!(error instanceof InvariantViolation)) throw error;
    }
  }

  private build(): void {
    const scenario = this.scenario;
    for (let shard = 0; shard < scenario.population.shards; shard++) this.fleet.startServer(shard);
    for (const plan of planPos(scenario)) this.fleet.startPos(plan);
    const planner = this.prng.fork('population');
    for (let i = 0; i < scenario.population.terminals; i++) {
      const plan = planTerminal(scenario, i, planner.fork(`t${i}`));
      const slot = this.fleet.addTerminal(plan, this.coverage.initialCoverage(i));
      this.fleet.startTerminal(slot);
      this.decisions.seed(plan.terminalId, plan.means);
    }
    this.workload.start();
    this.coverage.start();
    this.nemesis.schedule(scenario.faults);
    this.armMinuteSampler();
  }

  private beginLiveness(): void {
    this.phase = 'liveness';
    this.workload.stop();
    this.nemesis.stop();
    this.network.setOptions({ lossProbability: 0, duplicateProbability: 0, reorderProbability: 0 });
    this.coverage.restoreAll();
    for (const slot of this.fleet.terminals) slot.skewMs = 0;
    // Anything still waiting on a backoff timer gets a nudge: coverage is back for every terminal.
    for (const slot of this.fleet.terminals) slot.actor?.send({ type: 'remit.now' });
    this.pollDrain();
  }

  private pollDrain(): void {
    if (this.isDrained()) {
      this.drainedAtMs = this.scheduler.now();
      return;
    }
    // An order that was waiting for its user when the drain began is approved after the first nudge.
    this.fleet.nudgePendingRemittances();
    this.scheduler.schedule(DRAIN_POLL_MS, () => this.pollDrain());
  }

  isDrained(): boolean {
    // An order still being decided (a remote payment on its way back) is not drained either.
    if (this.workload.hasOrdersInFlight()) return false;
    for (const slot of this.fleet.terminals) {
      if (!slot.actor) return false;
      const state = proxyStateOf(slot);
      if (state && !isDrained(state.journal)) return false;
    }
    for (const pos of this.fleet.pos.values()) if (pos.getSnapshot().context.unsettled.length > 0) return false;
    return true;
  }

  private armMinuteSampler(): void {
    this.scheduler.schedule(MINUTE_MS, () => {
      this.sampleMinute();
      if (this.drainedAtMs === undefined) this.armMinuteSampler();
    });
  }

  private sampleMinute(): void {
    const now = this.scheduler.now();
    this.metrics.setGauges({
      terminalsInCoverage: this.coverage.inCoverageCount,
      backlogCount: this.backlogCount,
      backlogAmountMinor: this.backlogAmountMinor,
      // In virtual mode the network stands for the broker: its open links are the broker's connections.
      brokerConnections: this.network.connectedCount,
    });
    this.metrics.sample(now);
    this.minutesSampled++;
    // [INV-3 conservation] the full sum over every account, hourly, on top of the O(1) running sum checked after
    // every request (summing 100,000 accounts every simulated minute would cost more than the run itself).
    if (this.minutesSampled % 60 === 0) {
      this.fleet.ledgers.forEach((ledger, shard) => checkLedgerConserves(this.book, `shard ${shard}`, ledger));
    }
    this.options.onProgress?.({
      simulatedMs: now,
      totalMs: this.scenario.durationMs + this.scenario.drainMs,
      events: this.scheduler.eventsRun,
      terminalsInCoverage: this.coverage.inCoverageCount,
      backlogCount: this.backlogCount,
      phase: this.phase,
    });
  }

  // ------------------------------------------------------------------ observer

  private onDeliver(timeMs: number, from: string, to: string, message: LinkMessage): void {
    this.trace.update(timeMs, from, to, message.kind, message.reqId);
    this.recent.push({ timeMs, actor: from, text: `${from} → ${to} ${message.kind} ${message.reqId}` });
    this.nemesis.observe(from, to, message);
  }

  slotOf(terminalId: string): TerminalSlot | undefined {
    return this.fleet.terminals[Number(terminalId.slice(1))];
  }

  onTerminal(event: TerminalEmitted): void {
    if (event.type === 'terminal.confirm') {
      const slot = this.slotOf(event.terminalId);
      if (slot) this.workload.answerPrompt(slot, event.orderId, event.kind);
    } else if (event.type === 'terminal.refused') {
      this.metrics.count('terminalRefused');
    }
  }

  onProxy(terminalId: string, event: ProxyEmitted): void {
    switch (event.type) {
      case 'proxy.decided':
        return this.onDecided(terminalId, event);
      case 'proxy.remitted': {
        const now = this.scheduler.now();
        let amount = 0;
        const lags: number[] = [];
        for (const tx of event.txs) {
          amount += tx.amountMinor;
          const approved = this.approved.get(tx.txId);
          if (approved) lags.push(now - approved.approvedAtMs);
        }
        this.backlogCount -= event.txs.length;
        this.backlogAmountMinor -= amount;
        this.metrics.recordRemittance(event.txs.length, lags);
        this.recent.push({ timeMs: now, actor: terminalId, text: `remitted ${event.txs.length} tx (${event.reqId})` });
        return;
      }
      case 'proxy.refused':
        this.metrics.count(`proxyRefused:${event.reason}`);
        return;
      default:
        return;
    }
  }

  private onDecided(terminalId: string, event: Extract<ProxyEmitted, { type: 'proxy.decided' }>): void {
    const now = this.scheduler.now();
    const { order, response } = event;
    this.metrics.recordOrder(response.ok ? response.proof.path : undefined, response.ok, response.ok ? undefined : response.reason);
    this.decisions.check(terminalId, event, now);
    this.workload.answered(order);
    if (!response.ok) return;
    const latencyMs = event.decidedAtMs - event.startedAtMs;
    this.metrics.recordLatency(response.proof.path === 'remote' ? 'remote' : 'local', latencyMs);
    this.approved.set(response.proof.txId, { proof: response.proof, approvedAtMs: now, remoteMode: order.remoteMode });
    if (response.proof.path !== 'remote') {
      this.backlogCount++;
      this.backlogAmountMinor += response.proof.amountMinor;
      if (this.backlogAmountMinor > this.peakBacklogAmountMinor) this.peakBacklogAmountMinor = this.backlogAmountMinor;
    }
  }

  onPos(event: PosEmitted): void {
    if (event.type === 'pos.receipt') this.posProofs.push(event.proof);
    else if (event.type === 'pos.declined') this.metrics.count(`posDeclined:${event.reason}`);
  }

  onServer(shard: number, event: ServerEmitted): void {
    if (event.type !== 'server.handled') return;
    this.metrics.recordServerRequest(shard);
    // [INV-4 nothing twice] every answer, as it leaves SD.
    this.answers.seeAnswer(event.request.from, event.request.reqId, event.result);
  }

  isAdversarial(request: ServerRequest): boolean {
    return this.nemesis.adversaryIds.has(`${request.from}/${request.reqId}`) || this.nemesis.isAlteredInFlight(request);
  }

  onLedgerApplied(shard: number, request: ServerRequest, result: ServerResult, fingerprints?: { before: string; after: string }): void {
    const store = this.fleet.ledgers[shard]!.store as SumTrackingLedgerStore;
    // [INV-3 conservation] after every request, in O(1).
    checkLedgerConserves(this.book, `shard ${shard} after ${request.kind} ${request.reqId}`, { sumOfBalancesMinor: () => store.runningSumMinor }, [request.from]);
    if (!fingerprints) return;
    // [INV-6 signatures] any adversarial message changes nothing; a forged, altered or malformed one is also
    // refused as such (an exact replay may get its stored answer back, which can be ok).
    checkAdversarialApplied(this.book, request, result, fingerprints, this.nemesis.exactReplayIds.has(`${request.from}/${request.reqId}`));
  }

  /** What the end checks read: the shards' ledgers, the approvals and receipts, and every backlog as it ended. */
  private endCheckInput(): EndCheckInput {
    const fleet = this.fleet;
    return {
      book: this.book,
      ledgers: fleet.ledgers.map((ledger, shard) => ({ label: `shard ${shard}`, ledger })),
      approved: this.approved,
      posProofs: this.posProofs,
      reversed: this.answers.reversed,
      terminals: fleet.terminals.map((slot) => ({ terminalId: slot.plan.terminalId, up: slot.actor !== undefined, journal: proxyStateOf(slot)?.journal ?? EMPTY_JOURNAL })),
      pos: [...fleet.pos].map(([posId, pos]) => ({ posId, unsettled: pos.getSnapshot().context.unsettled.length })),
      publicKeyOf: fleet.publicKeyOf,
      scheme: fleet.options.scheme,
      duplicatedPostings: this.answers.duplicatedPostings,
    };
  }

  get backlog(): { count: number; amountMinor: number; peakAmountMinor: number } {
    return { count: this.backlogCount, amountMinor: this.backlogAmountMinor, peakAmountMinor: this.peakBacklogAmountMinor };
  }
}
