// Goal: a swarm worker process of an mqtt-mode run — it hosts a slice of the terminals and some POS units, each
// with its own MQTT connection to the broker, drives them with the scenario's workload and coverage, applies the
// device faults (terminal crashes, SIM moves, clock skew), and reports what happened to the coordinator.
// Method: the virtual mode's own parts on a real clock: `Fleet` with `RealTime` (its scaled XState clock too)
// and `createMqttLink`, `Workload`, `CoverageModel` (coverage loss ends the socket), and a `Nemesis` restricted
// to the device faults. The scenario's network knobs (loss, duplication, reordering, latency) apply to the
// devices' links through a `Radio` (radio.ts), on top of the real broker. Terminals keep their global ids and
// means, so keys and plans are the virtual mode's; only their place in this worker's fleet array is local. The
// checks that need a proxy's live state (MTDL < SL, period limits, the oracle) run here as each order is decided;
// everything the end checks need (approved proofs, POS receipts, journals at the end) goes to the coordinator
// over IPC, in batches.
// Run with an IPC channel, forked by the coordinator from a bundle of this module (processes.ts `workerBundle`);
// `node --import tsx sim/mqtt/worker.ts` works too.

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Fleet, proxyStateOf, type FleetObserver, type TerminalSlot } from '../core/fleet.ts';
import { RunRecord } from '../run/runRecord.ts';
import { DeviceEvents } from '../run/deviceEvents.ts';
import { beginLiveness, journalsAtEnd } from '../run/liveness.ts';
import { pursesAtEnd } from '../check/localValueCheck.ts';
import { planPos, planTerminal } from '../core/population.ts';
import { Workload } from '../core/workload.ts';
import { DecisionChecks, type DecidedEvent } from '../check/decisionChecks.ts';
import { CoverageModel } from '../core/coverage.ts';
import { Nemesis } from '../core/nemesis.ts';
import { SimNetwork, networkOptionsOf } from '../core/network.ts';
import { Prng } from '../core/prng.ts';
import { InvariantBook, RecentEvents } from '../check/invariantBook.ts';
import { proxyPolicyOf } from '../scenario/policy.ts';
import { RealTime } from '../core/realTime.ts';
import { Radio } from './radio.ts';
import { createMqttLink } from '../../broker/mqttLink.ts';
import { createLinkStats, type LinkStats } from '../../broker/linkOptions.ts';
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../../broker/linkPolicy.ts';
import { isDrained } from '../../machines/domain/remittance.ts';
import type { TerminalEmitted } from '../../machines/terminal.ts';
import type { ProxyEmitted } from '../../machines/proxy.ts';
import type { PosEmitted } from '../../machines/pos.ts';
import type { ServerEmitted } from '../../machines/server.ts';
import type { LinkMessage, Proof, ServerRequest, ServerResult } from '../../machines/messages.ts';
import { UNSTORED_REFUSAL_CODES } from '../../machines/domain/requests.ts';
import { Ledger, type SpendElsewhereInput } from '../../machines/domain/ledger.ts';
import { MemoryLedgerStore, type Transfer } from '../../machines/domain/ledgerStore.ts';
import type { DecidedRecord, ElsewhereSpend, FromWorker, RemittedRecord, ToWorker, WorkerInit } from './protocol.ts';
import { BenchCommands } from './benchCommands.ts';

const NEAR_LINK_DELAY_MS = 50;
/** At most this many violations are reported in detail (all are counted). */
const MAX_VIOLATIONS_REPORTED = 20;
/** Never-connected endpoint ids a worker names in its final report (the count covers them all). */
const NEVER_CONNECTED_IDS_REPORTED = 20;

/**
 * The worker's stand-in for a shard's ledger. SD's real ledger is in a server process; spending through another
 * point of issue is handed to the coordinator, which applies it to that ledger (and counts refusals).
 */
class ForwardingLedger extends Ledger {
  constructor(private readonly forward: (spend: ElsewhereSpend) => void) {
    super(new MemoryLedgerStore());
  }

  override spendElsewhere(input: SpendElsewhereInput): Transfer {
    this.forward({ ...input });
    return { id: `ext:${input.transferId}`, debitAccount: `means:${input.meansId}`, creditAccount: `payee:${input.payee}`, amountMinor: input.amountMinor, fingerprint: '', note: 'forwarded' };
  }
}

/**
 * The reconnect backoff of a device in run time: a phone that waits up to 30 s between attempts waits 0.5 real s
 * at ×60. Unscaled, one broker restart would keep terminals offline for minutes of run time. Floors keep a
 * refused connection from being retried in a busy loop.
 */
export function scaledBackoff(timeScale: number): BackoffPolicy {
  const initialMs = Math.max(10, DEFAULT_BACKOFF.initialMs / timeScale);
  return { initialMs, maxMs: Math.max(initialMs, 100, DEFAULT_BACKOFF.maxMs / timeScale), multiplier: DEFAULT_BACKOFF.multiplier };
}

export class SwarmWorker implements FleetObserver {
  readonly time: RealTime;
  readonly fleet: Fleet;
  readonly workload: Workload;
  readonly coverage: CoverageModel;
  readonly nemesis: Nemesis;
  readonly linkStats: LinkStats = createLinkStats();
  /** Every endpoint of this worker whose link came up at least once (the rest never got in: see `neverConnected`). */
  readonly everConnected = new Set<string>();
  /** The devices' lossy radio: the scenario's network knobs, counted in `linkStats`. */
  readonly radio: Radio;
  readonly recent = new RecentEvents(1_024);
  readonly book: InvariantBook;
  private readonly slots = new Map<string, TerminalSlot>();
  private readonly decisions: DecisionChecks;
  /** The backlog, approval times and drain state; the proofs themselves go to the coordinator (runRecord.ts). */
  readonly record = new RunRecord(false);
  private readonly devices: DeviceEvents;
  private decided: DecidedRecord[] = [];
  private remitted: RemittedRecord[] = [];
  private posReceipts: Proof[] = [];
  private elsewhere: ElsewhereSpend[] = [];
  private counts: Record<string, number> = {};
  private batchTimer: ReturnType<typeof setInterval> | undefined;
  /** Sees every decision after it is checked (a benchmark driver's closed loop, see benchCommands.ts). */
  decisionListener: ((terminalId: string, event: Extract<ProxyEmitted, { type: 'proxy.decided' }>) => void) | undefined;

  constructor(
    readonly init: WorkerInit,
    private readonly send: (message: FromWorker) => void,
  ) {
    const scenario = init.scenario;
    this.time = new RealTime(init.timeScale);
    const prng = new Prng(scenario.seed);
    this.book = new InvariantBook(scenario.seed, () => this.time.now(), this.recent, false);
    this.radio = new Radio(this.time, prng.fork('radio'), networkOptionsOf(scenario.network), this.linkStats);
    const tag = `w${init.workerIndex}`;
    // The device faults never touch a simulated network, but alteredInFlight sets its `tamper` hook, which this
    // worker's links apply to what their devices publish (a man in the middle on the radio path).
    const faultNetwork = new SimNetwork(this.time, prng.fork(`network:${tag}`));
    const tamper = {
      outgoing: (endpointId: string, message: LinkMessage) => {
        const altered = faultNetwork.tamper?.(endpointId, '', message);
        if (altered !== undefined && altered.kind !== 'result' && altered.kind !== 'remitNow') this.alteredAwaitingAnswer.add(`${altered.from}/${altered.reqId}`);
        return altered;
      },
      heard: (_endpointId: string, message: LinkMessage) => this.checkAnswerToAltered(message),
    };
    // The same fork as the virtual Simulator's, so server, operator, proxy and POS keys are the same.
    this.fleet = new Fleet(
      { scheme: scenario.crypto, policy: proxyPolicyOf(scenario.policy), shards: scenario.population.shards, pin: scenario.population.users.pin, nearLinkDelayMs: NEAR_LINK_DELAY_MS },
      { time: this.time, clock: this.time.clock, link: createMqttLink({ url: init.brokerUrl, failoverUrl: init.failoverBrokerUrl, secret: init.secret, seed: scenario.seed, stats: this.linkStats, everConnected: this.everConnected, backoff: scaledBackoff(init.timeScale), shaper: this.radio, tamper }) },
      prng.fork('fleet'),
      this,
    );
    for (let shard = 0; shard < this.fleet.ledgers.length; shard++) this.fleet.ledgers[shard] = new ForwardingLedger((spend) => this.elsewhere.push(spend));
    this.coverage = new CoverageModel(scenario, this.time, this.fleet, prng.fork(`coverage:${tag}`));
    this.nemesis = new Nemesis(this.time, faultNetwork, this.fleet, this.coverage, prng.fork(`nemesis:${tag}`));
    this.build(prng);
    this.workload = new Workload(scenario, this.time, this.fleet, prng.fork(`workload:${tag}`), { catchUpArrivals: true });
    this.decisions = new DecisionChecks(this.book, this.recent, this.fleet.options.policy);
    // The order oracle expects one answer to each order this worker's workload issues (sim/check/oracle.ts).
    this.workload.onIssued = (order) => this.decisions.expect(order.orderId);
    // Each terminal's first decision is checked against the means it started with.
    this.fleet.terminals.forEach((slot) => {
      this.decisions.seed(slot.plan.terminalId, slot.plan.means);
      if (slot.plan.purse) this.decisions.seed(slot.plan.terminalId, slot.plan.purse);
    });
    this.devices = new DeviceEvents({
      record: this.record,
      decisions: this.decisions,
      workload: this.workload,
      recent: this.recent,
      now: () => this.time.now(),
      slotOf: (terminalId) => this.slots.get(terminalId),
      sink: {
        count: (name) => this.count(name),
        decided: (terminalId, event, nowMs) => this.onDecided(terminalId, event, nowMs),
        remitted: (terminalId, r, nowMs) => this.remitted.push({ atMs: nowMs, terminalId, count: r.count, amountMinor: r.amountMinor, txIds: r.txIds }),
        receipt: (proof) => this.posReceipts.push(proof),
      },
    });
  }

  private build(prng: Prng): void {
    const scenario = this.init.scenario;
    const allPos = planPos(scenario);
    for (const index of this.init.posIndices) this.fleet.startPos(allPos[index]!);
    const planner = prng.fork('population');
    for (let global = this.init.terminalsFrom; global < this.init.terminalsTo; global++) {
      const local = global - this.init.terminalsFrom;
      // The plan of terminal `global` (same id, means and apps as in virtual mode), at index `local` of this
      // worker's fleet, so the fleet's and the coverage model's arrays stay dense.
      const plan = { ...planTerminal(scenario, global, planner.fork(`t${global}`)), index: local };
      const slot = this.fleet.addTerminal(plan, this.coverage.initialCoverage(local));
      this.slots.set(plan.terminalId, slot);
      this.fleet.startTerminal(slot);
    }
  }

  slotOf(terminalId: string): TerminalSlot | undefined {
    return this.slots.get(terminalId);
  }

  /** Endpoints expected to connect at once: terminals in coverage and POS units. */
  get expectedLinks(): number {
    return this.coverage.inCoverageCount + this.fleet.pos.size;
  }

  get linksUp(): number {
    return this.linkStats.connects - this.linkStats.disconnects;
  }

  /** Resolves once every expected endpoint is connected, or after `timeoutRealMs`. */
  async whenConnected(timeoutRealMs: number): Promise<void> {
    for (let waited = 0; this.linksUp < this.expectedLinks && waited < timeoutRealMs; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Copies this worker's links altered in flight (`from/reqId`) whose first answer from SD is still to be heard. */
  private readonly alteredAwaitingAnswer = new Set<string>();

  /**
   * [INV-6 signatures] SD's first answer to a copy altered in flight must be a refusal it did not store (the
   * request's signature covers every field of every proof), so the honest resend under the same id still posts.
   * An `ok` first answer is left to INV-4 (the radio may have lost the refusal, and the honest resend's answer
   * looks the same); its amounts are checked there against the approvals.
   */
  private checkAnswerToAltered(message: LinkMessage): void {
    // Nothing altered is awaiting its answer (the usual case): no id string is built for every answer.
    if (message.kind !== 'result' || this.alteredAwaitingAnswer.size === 0) return;
    const id = `${message.to}/${message.reqId}`;
    if (!this.alteredAwaitingAnswer.delete(id) || message.ok) return;
    this.book.check('INV-6', UNSTORED_REFUSAL_CODES.has(message.code), () => `${id} altered in flight was refused with ${message.code}, which SD stores under the honest request's id`, [message.to]);
  }

  start(originEpochMs: number): void {
    this.time.begin(originEpochMs);
    this.workload.start();
    this.coverage.start();
    this.nemesis.schedule(this.init.faults);
    this.batchTimer = setInterval(() => this.flush(), this.init.batchEveryRealMs);
  }

  /** Liveness phase: no more orders or faults, everyone back in coverage and up, backlogs pushed (liveness.ts). */
  drain(): void {
    // The devices' network is the radio: clean from now on (latency stays), as the virtual mode's network.
    const parts = { time: this.time, fleet: this.fleet, workload: this.workload, nemesis: this.nemesis, coverage: this.coverage, network: this.radio, record: this.record };
    beginLiveness(parts, () => {
      this.flush();
      this.send({ type: 'drained', workerIndex: this.init.workerIndex, atMs: this.record.drainedAtMs! });
    });
  }

  private batches = 0;

  /** Sends what happened since the last batch. */
  flush(): void {
    // A line in the worker's log every ten batches: how connected the swarm is, for reading a run afterwards.
    if (++this.batches % 10 === 0) {
      const l = this.linkStats;
      console.log(`t=${this.time.now()} links up ${this.linksUp}/${this.expectedLinks} attempts ${l.connectAttempts} connects ${l.connects} sent ${l.sent} received ${l.received} droppedWhileDown ${l.droppedWhileDown} radio lost ${l.lost} duplicated ${l.duplicated} droppedInFlight ${l.droppedInFlight}`);
    }
    this.send({
      type: 'batch',
      workerIndex: this.init.workerIndex,
      decided: this.decided,
      remitted: this.remitted,
      posReceipts: this.posReceipts,
      elsewhere: this.elsewhere,
      counts: this.counts,
      inCoverage: this.coverage.inCoverageCount,
      linksUp: this.linksUp,
      link: { ...this.linkStats, rejected: { ...this.linkStats.rejected } },
    });
    this.decided = [];
    this.remitted = [];
    this.posReceipts = [];
    this.elsewhere = [];
    this.counts = {};
  }

  finish(): void {
    if (this.batchTimer) clearInterval(this.batchTimer);
    this.flush();
    // What is stuck, for the worker's log: enough to tell a lost answer from a refused request.
    const now = this.time.now();
    for (const slot of this.fleet.terminals) {
      const state = proxyStateOf(slot);
      if (!state || isDrained(state.journal)) continue;
      const items = state.journal.outbox.map((i) => `${i.reqId} ${i.request.kind} attempts=${i.attempts} next=${i.nextAttemptAtMs - now}ms`);
      console.error(`t=${now} ${slot.plan.terminalId} (${slot.up ? 'up' : 'down'}, ${slot.inCoverage ? 'in' : 'out of'} coverage): pending ${state.journal.pending.map((tx) => tx.txId).join(' ') || '-'}; outbox ${items.join('; ') || '-'}`);
    }
    this.send({
      type: 'final',
      workerIndex: this.init.workerIndex,
      ...journalsAtEnd(this.fleet, this.workload),
      purses: pursesAtEnd(this.fleet),
      invariants: this.book.summary(),
      violations: this.book.violations.slice(0, MAX_VIOLATIONS_REPORTED).map((v) => ({ invariant: v.invariant, message: v.detail, timeMs: v.timeMs, recent: v.recent })),
      workload: { ...this.workload.counters },
      arrival: this.workload.arrival ? structuredClone(this.workload.arrival) : null,
      faults: { ...this.nemesis.counters },
      coverageChanges: this.coverage.changes,
      link: this.linkStats,
      neverConnected: this.neverConnected(),
    });
  }

  /** The endpoints (terminals, then POS units) whose link never came up once during the run; the first few by id. */
  neverConnected(): { count: number; ids: string[] } {
    const ids: string[] = [];
    let count = 0;
    for (const id of [...this.slots.keys(), ...this.fleet.pos.keys()]) {
      if (this.everConnected.has(id)) continue;
      count++;
      if (ids.length < NEVER_CONNECTED_IDS_REPORTED) ids.push(id);
    }
    return { count, ids };
  }

  /** Stops every actor (their links end their sockets) and every timer. */
  stop(): void {
    if (this.batchTimer) clearInterval(this.batchTimer);
    this.time.stop();
    for (const slot of this.fleet.terminals) slot.actor?.stop();
    for (const pos of this.fleet.pos.values()) pos.stop();
  }

  private count(name: string): void {
    this.counts[name] = (this.counts[name] ?? 0) + 1;
  }

  // ------------------------------------------------------------------ observer

  onTerminal(event: TerminalEmitted): void {
    this.devices.onTerminal(event);
  }

  onProxy(terminalId: string, event: ProxyEmitted): void {
    this.devices.onProxy(terminalId, event);
  }

  onPos(event: PosEmitted): void {
    this.devices.onPos(event);
  }

  /** A decision, checked and recorded by `DeviceEvents`: batched for the coordinator, seen by a bench driver. */
  private onDecided(terminalId: string, event: DecidedEvent, nowMs: number): void {
    const { order, response } = event;
    const path = response.ok ? response.proof.path : event.path;
    const latencyKind = response.ok && response.proof.path === 'remote' ? 'remote' : 'local';
    const latencyRealMs = Math.max(0, this.time.realMs(event.decidedAtMs - event.startedAtMs));
    const record: DecidedRecord = { atMs: nowMs, terminalId, path, ok: response.ok, latencyRealMs, latencyKind };
    if (response.ok) {
      record.proof = response.proof;
      if (order.remoteMode) record.remoteMode = order.remoteMode;
    } else {
      record.reason = response.reason;
      if (event.declinedRemoteTxId !== undefined) record.declinedRemoteTxId = event.declinedRemoteTxId;
    }
    this.decided.push(record);
    this.decisionListener?.(terminalId, event);
  }

  // Servers run in their own processes; these are never called here.
  onServer(_shard: number, _event: ServerEmitted): void {}
  isAdversarial(_request: ServerRequest): boolean {
    return false;
  }
  onLedgerApplied(_shard: number, _request: ServerRequest, _result: ServerResult): void {}
}

/** The process side: answers the coordinator's commands over IPC. */
function serve(): void {
  const send = (message: FromWorker): void => {
    process.send?.(message);
  };
  let worker: SwarmWorker | undefined;
  let bench: BenchCommands | undefined;
  let workerIndex = -1;
  const fail = (error: unknown): void => {
    send({ type: 'error', workerIndex, message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  // The coordinator is gone (it crashed or was killed): nothing to report to, so stop.
  process.on('disconnect', () => process.exit(1));
  process.on('message', (message: ToWorker) => {
    try {
      switch (message.type) {
        case 'init': {
          workerIndex = message.workerIndex;
          // The process's own footprint before any terminal exists, so memory per terminal can be told apart.
          const rssBeforeFleetBytes = process.memoryUsage().rss;
          worker = new SwarmWorker(message, send);
          void worker.whenConnected(message.connectTimeoutRealMs).then(
            () => send({ type: 'ready', workerIndex, endpoints: worker!.expectedLinks, linksUp: worker!.linksUp, rssBytes: process.memoryUsage().rss, rssBeforeFleetBytes }),
            fail,
          );
          return;
        }
        case 'bench':
          if (!worker) throw new Error(`bench command ${message.command.kind} before init`);
          bench ??= new BenchCommands(worker, (reply) => send({ type: 'bench', workerIndex, reply }));
          return bench.run(message.command);
        case 'start':
          return worker?.start(message.originEpochMs);
        case 'drain':
          return worker?.drain();
        case 'finish':
          return worker?.finish();
        case 'exit':
          worker?.stop();
          process.disconnect?.();
          setTimeout(() => process.exit(0), 50);
          return;
      }
    } catch (error) {
      fail(error);
    }
  });
}

/**
 * Whether this module is the forked process's entry (not imported by a test or a tool). Real paths are compared:
 * Node gives import.meta.url the main module's real path but process.argv[1] as given, and the bundle sits in
 * node_modules/.cache, which a git worktree or a monorepo reaches through a symlink; comparing the raw strings made
 * every worker there exit 0 at once, silently, and the run give up waiting for it.
 */
function isForkedEntry(): boolean {
  if (!process.send || !process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isForkedEntry()) serve();
