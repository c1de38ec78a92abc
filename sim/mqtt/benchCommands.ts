// Goal: the worker's side of `npm run bench:mqtt` — payments driven through the real harness (proxy machines,
// MQTT links, broker, payment-server processes) under a benchmark's control instead of the scenario's workload:
// a closed loop of payments for round trips/s and latency, a coverage storm, and probes of the worker's state.
// Method: orders go through the worker's own `Workload` (so every decision is still checked by the oracle and the
// per-decision invariants), and each answer is seen through the worker's decision listener. Latency is what an
// app sees: real time from handing the order to the terminal until the proxy's decision, measured with the
// monotonic clock (`performance.now`), as the bare mqtt.js baseline is measured.

import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { proxyStateOf, type Fleet, type TerminalSlot } from '../core/fleet.ts';
import type { CoverageModel } from '../core/coverage.ts';
import type { Workload } from '../core/workload.ts';
import type { ProxyEmitted } from '../../machines/proxy.ts';
import type { BenchCommand, BenchProbe, BenchReply } from './protocol.ts';

type Decided = Extract<ProxyEmitted, { type: 'proxy.decided' }>;

/**
 * What the bench commands need of the worker that hosts them (a `SwarmWorker`); an interface here, so that the
 * worker may import this module without this module importing the worker.
 */
export interface BenchHost {
  readonly fleet: Pick<Fleet, 'terminals'>;
  readonly coverage: Pick<CoverageModel, 'setEverywhere'>;
  readonly workload: Pick<Workload, 'hasOrdersInFlight' | 'payNow'>;
  readonly linksUp: number;
  readonly expectedLinks: number;
  slotOf(terminalId: string): TerminalSlot | undefined;
  /** Sees every decision after it is checked. */
  decisionListener: ((terminalId: string, event: Decided) => void) | undefined;
}

/** A closed loop or a pay-each round: which terminals still pay, and what their answers were. */
interface Round {
  command: Extract<BenchCommand, { kind: 'closedLoop' | 'payEach' }>;
  /** Orders each terminal has left to pay (closed loop: unbounded until the deadline). */
  left: Map<string, number>;
  /** Orders in flight: order id → issue time. */
  issuedAtMs: Map<string, number>;
  startedAtMs: number;
  deadlineAtMs: number;
  decided: number;
  approved: number;
  approvedAmountMinor: number;
  byReason: Record<string, number>;
  byPath: Record<string, number>;
  latenciesRealMs: number[];
  lastDecisionAtMs: number;
  /** True while the first orders are being handed out (the round cannot be over yet). */
  starting: boolean;
}

/** The order being handed to a terminal right now. */
interface Issuing {
  terminalId: string;
  atMs: number;
  decided: boolean;
}

/**
 * A full collection, so a memory figure counts what is live rather than what the collector has not reached yet.
 * The worker is not started with --expose-gc; V8 lets the flag be set at run time and `gc` be read from a fresh
 * context.
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** A round whose answers stop coming (a terminal that never decides) still ends this long after its deadline (or its start). */
const ROUND_GRACE_MS = 120_000;

export class BenchCommands {
  private round: Round | undefined;
  private issuing: Issuing | undefined;
  private guard: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly worker: BenchHost,
    private readonly reply: (reply: BenchReply) => void,
  ) {
    worker.decisionListener = (terminalId, event) => this.onDecided(terminalId, event);
  }

  run(command: BenchCommand): void {
    switch (command.kind) {
      case 'probe':
        if (command.collectGarbage) collectGarbage();
        return this.reply({ id: command.id, kind: 'probe', ...this.probe() });
      case 'coverage':
        return this.reply({ id: command.id, kind: 'coverage', changed: this.worker.coverage.setEverywhere(command.inCoverage) });
      case 'closedLoop':
      case 'payEach':
        return this.startRound(command);
    }
  }

  probe(): BenchProbe {
    let unacknowledged = 0;
    for (const slot of this.worker.fleet.terminals) {
      const state = proxyStateOf(slot);
      if (state) unacknowledged += state.journal.pending.length + state.journal.outbox.length;
    }
    const memory = process.memoryUsage();
    return {
      linksUp: this.worker.linksUp,
      expectedLinks: this.worker.expectedLinks,
      unacknowledged,
      ordersInFlight: this.worker.workload.hasOrdersInFlight(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
    };
  }

  private startRound(command: Round['command']): void {
    if (this.round) throw new Error(`bench: command ${command.id} (${command.kind}) while command ${this.round.command.id} is still running`);
    const up = this.worker.fleet.terminals.filter((slot) => slot.up);
    const payers = command.kind === 'closedLoop' ? up.slice(0, command.concurrency) : up;
    const now = performance.now();
    const round: Round = {
      command,
      left: new Map(payers.map((slot) => [slot.plan.terminalId, command.kind === 'closedLoop' ? Number.POSITIVE_INFINITY : command.perTerminal])),
      issuedAtMs: new Map(),
      startedAtMs: now,
      deadlineAtMs: command.kind === 'closedLoop' ? now + command.durationRealMs : Number.POSITIVE_INFINITY,
      decided: 0,
      approved: 0,
      approvedAmountMinor: 0,
      byReason: {},
      byPath: {},
      latenciesRealMs: [],
      lastDecisionAtMs: now,
      starting: true,
    };
    this.round = round;
    for (const slot of payers) this.payNext(round, slot);
    round.starting = false;
    this.guard = setTimeout(() => this.endRound(round), (command.kind === 'closedLoop' ? command.durationRealMs : 0) + ROUND_GRACE_MS);
    this.endIfDone(round);
  }

  private payNext(round: Round, slot: TerminalSlot): void {
    const terminalId = slot.plan.terminalId;
    const left = round.left.get(terminalId) ?? 0;
    if (left <= 0 || performance.now() >= round.deadlineAtMs) {
      round.left.delete(terminalId);
      return;
    }
    round.left.set(terminalId, left - 1);
    // A local decision comes back inside `payNow` (before its order id is known here): `issuing` lets
    // onDecided recognise it.
    const issuing: Issuing = { terminalId, atMs: performance.now(), decided: false };
    const outer = this.issuing;
    this.issuing = issuing;
    const orderId = this.worker.workload.payNow(slot, round.command.app);
    this.issuing = outer;
    // A terminal that is down or has not got the app leaves the round rather than stall it.
    if (orderId === undefined) round.left.delete(terminalId);
    else if (!issuing.decided) round.issuedAtMs.set(orderId, issuing.atMs);
  }

  private onDecided(terminalId: string, event: Decided): void {
    const round = this.round;
    if (!round) return;
    let issuedAt = round.issuedAtMs.get(event.order.orderId);
    if (issuedAt !== undefined) {
      round.issuedAtMs.delete(event.order.orderId);
    } else if (this.issuing && this.issuing.terminalId === terminalId && !this.issuing.decided) {
      issuedAt = this.issuing.atMs;
      this.issuing.decided = true;
    } else {
      return;
    }
    const now = performance.now();
    round.decided++;
    round.lastDecisionAtMs = now;
    round.latenciesRealMs.push(now - issuedAt);
    const response = event.response;
    if (response.ok) {
      round.approved++;
      round.approvedAmountMinor += response.proof.amountMinor;
      round.byPath[response.proof.path] = (round.byPath[response.proof.path] ?? 0) + 1;
    } else {
      round.byReason[response.reason] = (round.byReason[response.reason] ?? 0) + 1;
    }
    const slot = this.worker.slotOf(terminalId);
    if (slot) this.payNext(round, slot);
    else round.left.delete(terminalId);
    this.endIfDone(round);
  }

  /** Over when no order is in flight, once every payer has been given its first order. */
  private endIfDone(round: Round): void {
    if (!round.starting && round.issuedAtMs.size === 0 && !this.issuing) this.endRound(round);
  }

  private endRound(round: Round): void {
    if (this.round !== round) return;
    this.round = undefined;
    if (this.guard) clearTimeout(this.guard);
    const { command } = round;
    if (command.kind === 'closedLoop') {
      this.reply({
        id: command.id,
        kind: 'closedLoop',
        decided: round.decided,
        approved: round.approved,
        byReason: round.byReason,
        byPath: round.byPath,
        latenciesRealMs: round.latenciesRealMs,
        elapsedRealMs: round.lastDecisionAtMs - round.startedAtMs,
      });
    } else {
      this.reply({ id: command.id, kind: 'payEach', decided: round.decided, approved: round.approved, approvedAmountMinor: round.approvedAmountMinor, byReason: round.byReason, byPath: round.byPath });
    }
  }
}
