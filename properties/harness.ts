// Goal: the world the proxy's model-based and scheduled tests drive — the real terminal, proxy and server
// machines — with the network and the ledger's writes under the test's control, so a property can hold back,
// reorder, duplicate or drop any message, crash the server between receiving a request and committing it, and
// then drain everything and check the ledger.
// Method: `ModelWorld` extends the machines' test World and injects its ledger child (the domain's
// `createLedgerActor` with a schedule that holds every write back), so writes are asynchronous, as a durable
// store's are: a request waits in `writes` until the test commits it, and a server crash loses every
// uncommitted write (the server answers only after the commit, so the proxy resends). `Net`
// puts a filter on the TestBus that captures every message into a pool; the test then delivers, duplicates or
// drops pool messages one at a time, in any order. The simulated user answers every confirmation with yes (and
// the right PIN), so orders are decided by the payment rules alone.

import { World, type WorldOptions } from '../machines/testing/world.ts';
import type { BusMessage, TestBus } from '../machines/testing/bus.ts';
import { createLedgerActor, type LedgerWork } from '../machines/server.ts';
import { isDrained } from '../machines/domain/remittance.ts';
import type { ProxyState } from '../machines/domain/proxyRules.ts';
import type { Proof } from '../machines/messages.ts';
import type { DrainFacts } from './checks.ts';

/** A request the server handed to its ledger, not yet committed. */
export type PendingWrite = LedgerWork;

/** A network under the test's control: every message waits in `pool` until the test moves it. */
export class Net {
  readonly pool: BusMessage[] = [];
  private readonly history: BusMessage[] = [];
  private releasing: { message: BusMessage; verdict: 'deliver' | 'duplicate' } | undefined;
  delivered = 0;

  constructor(private readonly bus: TestBus) {
    bus.filter = (m) => {
      if (this.releasing && this.releasing.message === m) {
        const verdict = this.releasing.verdict;
        this.releasing = undefined;
        return verdict;
      }
      this.pool.push(m);
      return 'drop';
    };
  }

  /** Delivers pool message `index` (once, or twice); what the delivery causes lands in the pool. */
  deliver(index: number, verdict: 'deliver' | 'duplicate' = 'deliver'): void {
    const [message] = this.pool.splice(index, 1);
    if (!message) return;
    this.remember(message);
    this.releasing = { message, verdict };
    this.bus.inject(message);
    this.bus.flush();
    this.delivered++;
  }

  /** A copy of a message delivered earlier (the last 64 are kept), for late duplicates and replays. */
  deliveredEarlier(pick: number): BusMessage | undefined {
    return this.history.length === 0 ? undefined : this.history[pick % this.history.length];
  }

  /** Takes every waiting message out of the pool, for a caller that schedules deliveries itself. */
  takeAll(): BusMessage[] {
    return this.pool.splice(0, this.pool.length);
  }

  /** Delivers a message taken out of the pool (or a copy of one: the network duplicated it). */
  deliverMessage(message: BusMessage): void {
    this.remember(message);
    const copy = { ...message, message: structuredClone(message.message) };
    this.releasing = { message: copy, verdict: 'deliver' };
    this.bus.inject(copy);
    this.bus.flush();
    this.delivered++;
  }

  private remember(message: BusMessage): void {
    this.history.push(message);
    if (this.history.length > 64) this.history.shift();
  }

  drop(index: number): BusMessage | undefined {
    return this.pool.splice(index, 1)[0];
  }
}

export class ModelWorld extends World {
  // `declare`: no field initialiser, so the value the ledger child sets when World's constructor starts the server survives.
  declare writes: PendingWrite[];
  declare net: Net;
  private declare answeredPrompts: number;

  constructor(options: WorldOptions) {
    super(options);
    this.answeredPrompts = 0;
    this.net = new Net(this.bus);
    // Start-up syncs went out before the net took over: let them complete.
    this.quiesce();
  }

  /** A ledger child whose writes wait for `commit`; a restarted server gets a fresh one, so a crash loses them. */
  protected override ledgerChild() {
    return createLedgerActor(this.ledger, () => {
      const writes: PendingWrite[] = [];
      this.writes = writes;
      return { take: (work) => writes.push(work) };
    });
  }

  /** Commits the first `count` pending writes; each result then goes out (into the pool). */
  commit(count = Number.POSITIVE_INFINITY): void {
    for (let i = 0; i < count && this.writes.length > 0; i++) this.commitWrite(this.writes[0]!);
    this.answerPrompts();
  }

  /** Commits one given pending write (a store may finish its writes in any order); false if it was lost. */
  commitWrite(write: PendingWrite): boolean {
    const index = this.writes.indexOf(write);
    if (index < 0) return false;
    this.writes.splice(index, 1);
    write.answer(write.apply());
    this.settle();
    this.answerPrompts();
    return true;
  }

  /** A server crash and restart: uncommitted writes are lost; messages on the way stay on the way. */
  crashServer(): void {
    this.server.stop();
    this.startServer();
  }

  /** The user says yes to every confirmation asked so far (with the right PIN when one is asked). */
  answerPrompts(): void {
    while (this.answeredPrompts < this.terminalEvents.length) {
      const event = this.terminalEvents[this.answeredPrompts++]!;
      if (event.type !== 'terminal.confirm') continue;
      const terminal = this.terminals.get(event.terminalId);
      if (!terminal) continue;
      terminal.send({ type: 'user.answer', orderId: event.orderId, approved: true, pin: event.kind === 'pin' ? this.pin : undefined });
      this.settle();
    }
  }

  /** Delivers and commits until nothing moves (bounded, so a message loop fails instead of hanging). */
  quiesce(maxSteps = 20_000): void {
    for (let step = 0; step < maxSteps; step++) {
      this.answerPrompts();
      if (this.net?.pool.length > 0) this.net.deliver(0);
      else if (this.writes.length > 0) this.commit(1);
      else return;
    }
    throw new Error(`quiesce: still moving after ${maxSteps} steps`);
  }

  /** Moves the clock (timers fire; what they send lands in the pool) and answers any new prompt. */
  advanceBy(ms: number, stepMs = 500): void {
    this.advance(ms, stepMs);
    this.answerPrompts();
  }

  /**
   * Every payment a proxy approved (its proof), in order: to an app, or to a POS over the near link. The proxy's
   * own decisions count, not what reached the POS: a POS that gave up on a sale before the answer came still
   * leaves a payment the proxy approved and will remit.
   */
  approvedProofs(): Proof[] {
    const proofs: Proof[] = [];
    for (const e of this.proxyEvents) if (e.type === 'proxy.decided' && e.response.ok) proofs.push(e.response.proof);
    return proofs;
  }

  /** Proofs held by POS units (their receipts): each must verify and be credited [INV-5]. */
  posProofs(): Proof[] {
    const proofs: Proof[] = [];
    for (const e of this.posEvents) if (e.type === 'pos.receipt') proofs.push(e.proof);
    return proofs;
  }

  /** What the end-of-run checks need, for the given terminals. */
  drainFacts(terminalIds: readonly string[], payees: readonly string[]): DrainFacts {
    return {
      ledger: this.ledger,
      approved: this.approvedProofs(),
      held: [...this.approvedProofs(), ...this.posProofs()],
      // Remote payments a proxy declined to its app and asked SD to undo.
      reversed: this.handled('release').map((e) => (e.request as { txId: string }).txId),
      payees,
      scheme: this.scheme,
      publicKeyOf: (id) => this.publicKeys.get(id),
      serverPublicKey: this.serverKey.publicKey,
      journals: new Map(terminalIds.map((id) => [id, this.proxyState(id).journal])),
    };
  }

  /** Nothing left to do anywhere: the proxy idle and drained, the network and the ledger quiet. */
  isQuiet(terminalId: string): boolean {
    const proxy = this.proxyOf(terminalId);
    if (!proxy) return false;
    const context = proxy.getSnapshot().context as { state: ProxyState; remote?: unknown; current?: unknown; queue: unknown[] };
    return isDrained(context.state.journal) && context.remote === undefined && context.current === undefined && context.queue.length === 0 && this.net.pool.length === 0 && this.writes.length === 0;
  }

  /**
   * The drain (the liveness phase of docs/design.md §3, after which INV-7 of §5 must hold): the terminal back (restored from `persisted` if it crashed) and in coverage, SD
   * asking it to remit, then deliver, commit and let time pass until everything is quiet or `maxRounds` rounds of
   * 5 s have gone by.
   */
  drain(terminalId: string, persisted: ProxyState | undefined, maxRounds = 400): void {
    if (!this.terminals.has(terminalId)) this.startTerminal(terminalId, { state: persisted, inCoverage: true });
    else this.setCoverage(terminalId, true);
    for (let round = 0; round < maxRounds; round++) {
      this.quiesce();
      if (this.isQuiet(terminalId)) return;
      // SD asks for the backlog (the patent's explicit request) rather than waiting for the hourly date trigger.
      if (this.proxyState(terminalId).journal.pending.length > 0) {
        this.requestRemittance(terminalId);
        this.settle();
      }
      this.advanceBy(5_000);
    }
    this.quiesce();
    if (!this.isQuiet(terminalId)) {
      const state = this.proxyState(terminalId);
      throw new Error(`[INV-7 liveness] not drained after ${maxRounds * 5} s: pending ${state.journal.pending.length}, outbox ${state.journal.outbox.map((i) => `${i.reqId}×${i.attempts}`).join(' ')}`);
    }
  }
}
