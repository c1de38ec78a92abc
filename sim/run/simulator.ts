// Goal: one deterministic virtual run of a scenario — the simulator loop of payfleet, laid out like
// TigerBeetle's VOPR: a scheduler in virtual time, a simulated network with named fault knobs, a fleet of
// XState actors, a workload that generates the orders, an order oracle that knows what each may come to, a
// nemesis, and one checker per invariant (sim/check/).
// Method: a safety phase (orders, coverage changes and faults for `durationMs`), then a liveness phase (faults
// stop, every terminal back in coverage, crashed things restarted, the network clean; liveness.ts) that must drain
// every backlog within `drainMs`. The devices' events go through the shared `DeviceEvents` into the run record
// (runRecord.ts); SD's answers go to the INV-4 checker's `AnswersOfSd` as they leave SD. Invariants are checked
// after every event that could break them and again at the end (`checkAtEnd` on the run record's end-check input);
// the first violation stops the run with the seed. Every delivered message feeds the trace hash.

import type { Scenario } from '../scenario/types.ts';
import { proxyPolicyOf } from '../scenario/policy.ts';
import { Scheduler } from '../core/scheduler.ts';
import { Prng } from '../core/prng.ts';
import { SimNetwork } from '../core/network.ts';
import { createSimLink } from '../core/link.ts';
import type { HibernationOptions } from '../core/hibernation.ts';
import { TraceHash } from '../core/traceHash.ts';
import { Metrics } from './metrics.ts';
import { Fleet, type FleetObserver, type TerminalSlot } from '../core/fleet.ts';
import { planPos, planTerminal } from '../core/population.ts';
import { Workload } from '../core/workload.ts';
import { DecisionChecks } from '../check/decisionChecks.ts';
import { CoverageModel } from '../core/coverage.ts';
import { Nemesis } from '../core/nemesis.ts';
import { InvariantBook, InvariantViolation, RecentEvents } from '../check/invariantBook.ts';
import { checkAtEnd, type LedgerFigures } from '../check/endChecks.ts';
import { checkLedgerConserves } from '../check/inv3Conservation.ts';
import { AnswersOfSd } from '../check/inv4NothingLostNothingTwice.ts';
import { checkAdversarialApplied } from '../check/inv6Signatures.ts';
import { checkPursesReconcile, pursesAtEnd } from '../check/localValueCheck.ts';
import { lossAccountOf, SharedMeansTally, type LossAccountFigures, type MeansExposure } from '../check/lossAccount.ts';
import { SumTrackingLedgerStore } from '../core/ledgerStore.ts';
import type { TerminalEmitted } from '../../machines/terminal.ts';
import type { ProxyEmitted } from '../../machines/proxy.ts';
import type { PosEmitted } from '../../machines/pos.ts';
import type { ServerEmitted } from '../../machines/server.ts';
import type { LinkMessage, ServerRequest, ServerResult } from '../../machines/messages.ts';
import { RunRecord, type BacklogFigures } from './runRecord.ts';
import type { RunProgress } from './progress.ts';
import { DeviceEvents } from './deviceEvents.ts';
import { beginLiveness, journalsAtEnd } from './liveness.ts';
import { hasTopUps, TopUpAgreements } from '../core/topUps.ts';
import { Ledger } from '../../machines/domain/ledger.ts';

const MINUTE_MS = 60_000;
const NEAR_LINK_DELAY_MS = 50;

export interface RunOptions {
  /** Called about every simulated minute with progress figures (the CLI draws its live line from it). */
  onProgress?: (p: Progress) => void;
  /**
   * Idle terminals hibernate (sim/core/hibernation.ts): default true, with its default linger and cap, or with the
   * options given. False keeps every terminal's actors alive all run (`payfleet run --no-hibernate`); the run is
   * the same to the event either way, and takes more memory.
   */
  hibernate?: boolean | HibernationOptions;
}

export type Progress = RunProgress;

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
  /** Approved payments, POS receipts, the backlog and the drain state (runRecord.ts). */
  readonly record = new RunRecord();
  private readonly decisions: DecisionChecks;
  private readonly devices: DeviceEvents;
  /** SD's answers as they come: a transaction posted twice is caught as it happens, reversals kept [INV-4]. */
  private readonly answers: AnswersOfSd;
  private minutesSampled = 0;
  /** Ledger figures, set by the end checks. */
  endFigures: LedgerFigures | undefined;
  /** Payments on means shared by several terminals (family wallets). */
  readonly sharedMeans = new SharedMeansTally();
  /** What each means is exposed to (shared, spent elsewhere), for the loss account's causes. */
  private readonly exposures = new Map<string, MeansExposure>();
  /** The means' top-up agreements, when the scenario has any. */
  private topUps: TopUpAgreements | undefined;
  /** Shortfalls of local-value purse periods SD booked to the loss account, as the runner saw them. */
  readonly purseLosses: Array<{ meansId: string; amountMinor: number }> = [];
  private readonly purseLossIds = new Set<string>();
  /** The loss account by cause and means, set by the end checks. */
  lossAccount: LossAccountFigures | undefined;

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
        serverCost: scenario.servers.calibration && { calibration: scenario.servers.calibration.calibration, prng: this.prng.fork('server-cost') },
      },
      {
        time: this.scheduler,
        clock: this.scheduler.clock,
        link: createSimLink(this.network),
        hibernation:
          options.hibernate === false
            ? undefined
            : { scheduler: this.scheduler, network: this.network, options: typeof options.hibernate === 'object' ? options.hibernate : undefined },
      },
      this.prng.fork('fleet'),
      this,
    );
    // With top-up agreements, the shards' ledgers apply them (sim/core/topUps.ts); each means gets its own as it opens.
    if (hasTopUps(scenario)) {
      const topUps = (this.topUps = new TopUpAgreements(scenario.seed));
      this.fleet.ledgers.forEach((_, shard) => (this.fleet.ledgers[shard] = new Ledger(new SumTrackingLedgerStore(), topUps.rules)));
    }
    this.coverage = new CoverageModel(scenario, this.scheduler, this.fleet, this.prng.fork('coverage'));
    this.nemesis = new Nemesis(this.scheduler, this.network, this.fleet, this.coverage, this.prng.fork('nemesis'));
    this.workload = new Workload(scenario, this.scheduler, this.fleet, this.prng.fork('workload'));
    this.decisions = new DecisionChecks(this.book, this.recent, policy);
    // The order oracle expects one answer to each order the workload issues (sim/check/oracle.ts).
    this.workload.onIssued = (order) => this.decisions.expect(order.orderId);
    this.answers = new AnswersOfSd(this.book, (requestId) => this.nemesis.adversaryIds.has(requestId));
    this.devices = new DeviceEvents({
      record: this.record,
      decisions: this.decisions,
      workload: this.workload,
      recent: this.recent,
      now: () => this.scheduler.now(),
      slotOf: (terminalId) => this.slotOf(terminalId),
      sink: {
        count: (name) => this.metrics.count(name),
        decided: (_terminalId, event) => {
          const { response } = event;
          this.metrics.recordOrder(response.ok ? response.proof.path : undefined, response.ok, response.ok ? undefined : response.reason);
          if (response.ok) this.sharedMeans.decided(response.proof.path, response.proof.amountMinor, event.means?.pointsOfIssue);
          if (response.ok) this.metrics.recordLatency(response.proof.path === 'remote' ? 'remote' : 'local', event.decidedAtMs - event.startedAtMs);
        },
        remitted: (_terminalId, remittance) => this.metrics.recordRemittance(remittance.count, remittance.lagsMs),
        receipt: (proof) => this.record.posProofs.push(proof),
      },
    });
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
      beginLiveness({ time: this.scheduler, fleet: this.fleet, workload: this.workload, nemesis: this.nemesis, coverage: this.coverage, network: this.network, record: this.record });
      this.scheduler.runUntil(durationMs + drainMs, () => this.record.drainedAtMs !== undefined || this.book.stopped);
      if (this.book.stopped) return;
      this.sampleMinute();
      this.book.stopOnViolation = false;
      this.endChecks();
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
      this.topUps?.add(plan.means.meansId, plan.profile.topUp);
      const slot = this.fleet.addTerminal(plan, this.coverage.initialCoverage(i));
      this.fleet.startTerminal(slot);
      this.decisions.seed(plan.terminalId, plan.means);
      if (plan.purse) this.decisions.seed(plan.terminalId, plan.purse);
      const exposure = this.exposures.get(plan.means.meansId);
      this.exposures.set(plan.means.meansId, { proxies: (exposure?.proxies ?? 0) + 1, dedicated: plan.means.dedicated });
    }
    this.sharedMeans.plan(this.fleet.terminals.map((slot) => ({ meansId: slot.plan.means.meansId, pointsOfIssue: slot.plan.means.pointsOfIssue })));
    this.workload.start();
    this.coverage.start();
    this.nemesis.schedule(scenario.faults);
    this.armMinuteSampler();
  }

  /**
   * The checks after the drain, one checker per invariant (endChecks.ts): the run record's approvals and receipts,
   * SD's answers as they came, the shards' ledgers and the journals left in the fleet.
   */
  private endChecks(): void {
    const fleet = this.fleet;
    this.endFigures = checkAtEnd(
      this.record.endCheckInput(this.answers, {
        book: this.book,
        ledgers: fleet.ledgers.map((ledger, shard) => ({ label: `shard ${shard}`, ledger })),
        ...journalsAtEnd(fleet, this.workload),
        publicKeyOf: fleet.publicKeyOf,
        serverPublicKey: fleet.serverKey.publicKey,
        scheme: fleet.options.scheme,
        ...(this.topUps ? { hasTopUpAgreement: (meansId: string) => this.topUps!.has(meansId) } : {}),
      }),
    );
    // [INV-4 local value] each purse on a SIM is worth what SD's books say.
    checkPursesReconcile(this.book, pursesAtEnd(fleet), (meansId) => fleet.ledgerOfMeans(meansId).accountOf(`means:${meansId}`)?.balanceMinor ?? 0);
    this.lossAccount = lossAccountOf(fleet.ledgers, (meansId) => this.exposures.get(meansId), this.purseLosses);
  }

  private armMinuteSampler(): void {
    this.scheduler.schedule(MINUTE_MS, () => {
      this.sampleMinute();
      if (this.record.drainedAtMs === undefined) this.armMinuteSampler();
    });
  }

  private sampleMinute(): void {
    const now = this.scheduler.now();
    const backlog = this.record.backlog;
    this.metrics.setGauges({
      terminalsInCoverage: this.coverage.inCoverageCount,
      backlogCount: backlog.count,
      backlogAmountMinor: backlog.amountMinor,
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
      backlogCount: backlog.count,
      phase: this.record.phase,
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
    this.devices.onTerminal(event);
  }

  onProxy(terminalId: string, event: ProxyEmitted): void {
    this.devices.onProxy(terminalId, event);
  }

  onPos(event: PosEmitted): void {
    this.devices.onPos(event);
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
    // A purse period its funding means could not pay: booked to the loss account [loss by cause].
    if (request.kind === 'reload' && request.granted && result.ok) {
      const loss = store.getTransfer(`lv:${request.from}/${request.reqId}/loss`);
      if (loss && !this.purseLossIds.has(loss.id)) {
        this.purseLossIds.add(loss.id);
        this.purseLosses.push({ meansId: request.fundingMeansId, amountMinor: loss.amountMinor });
      }
    }
    // [INV-3 conservation] after every request, in O(1).
    checkLedgerConserves(this.book, `shard ${shard} after ${request.kind} ${request.reqId}`, { sumOfBalancesMinor: () => store.runningSumMinor }, [request.from]);
    if (!fingerprints) return;
    // [INV-6 signatures] any adversarial message changes nothing; a forged, altered or malformed one is also
    // refused as such (an exact replay may get its stored answer back, which can be ok).
    checkAdversarialApplied(this.book, request, result, fingerprints, this.nemesis.exactReplayIds.has(`${request.from}/${request.reqId}`));
  }

  get backlog(): BacklogFigures {
    return this.record.backlog;
  }
}
