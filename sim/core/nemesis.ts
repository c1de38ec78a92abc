// Goal: the nemesis of a virtual run — it applies the scenario's faults at their times: server crashes and
// restarts, broker crashes (every link silent), terminal crashes with the proxy restored from its persisted
// state, SIM moves through the strongbox, clock skew, shard partitions, and adversaries (forged signatures,
// replayed remittances, malformed payloads, a device speaking for another, and remittances or settlements
// modified in flight under their original request id).
// Method: one scheduled callback per fault. Victims are drawn from the PRNG among terminals that are up. Every
// adversarial message is registered with `adversaryIds`, so the signature checker knows to expect a refusal
// and to fingerprint the ledger around it. A message modified in flight keeps its sender's request id, which
// the honest resend shares, so it is registered as the object itself (`isAlteredInFlight`), not by its id.

import type { DebitRequest, LinkMessage, RemitRequest, ServerRequest } from '../../machines/messages.ts';
import { serverAddress } from '../../machines/link.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import { signRequest } from '../../machines/domain/requests.ts';
import type { Fault } from '../scenario/types.ts';
import type { Prng } from './prng.ts';
import type { TimeSource } from './timeSource.ts';
import type { SimNetwork } from './network.ts';
import type { Fleet, TerminalSlot } from './fleet.ts';
import type { CoverageModel } from './coverage.ts';

export interface NemesisCounters {
  serverCrashes: number;
  brokerCrashes: number;
  terminalCrashes: number;
  simMoves: number;
  skewed: number;
  partitions: number;
  adversarialMessages: number;
  /** Remittances and settlements modified in flight under their original request id. */
  alteredInFlight: number;
}

export class Nemesis {
  readonly counters: NemesisCounters = { serverCrashes: 0, brokerCrashes: 0, terminalCrashes: 0, simMoves: 0, skewed: 0, partitions: 0, adversarialMessages: 0, alteredInFlight: 0 };
  /** Request ids of every message the nemesis forged; their refusal is checked [INV-6]. */
  readonly adversaryIds = new Set<string>();
  /** Of those, the exact replays: SD may answer them with the stored (possibly ok) result, but nothing may change. */
  readonly exactReplayIds = new Set<string>();
  /** Remittances seen on the wire, so one can be replayed later. */
  private readonly seenRemittances: Array<{ from: string; to: string; message: RemitRequest }> = [];
  private readonly pendingRestarts = new Set<() => void>();
  private running = true;
  private forgerySeq = 0;
  /** The copies modified in flight: adversarial, though their request id is also the honest resend's. */
  private readonly alteredCopies = new WeakSet<object>();
  /** How many of the next remittances and settlements on the wire are still to be modified. */
  private alterationsDue = 0;

  constructor(
    private readonly scheduler: TimeSource,
    private readonly network: SimNetwork,
    private readonly fleet: Fleet,
    private readonly coverage: CoverageModel,
    private readonly prng: Prng,
  ) {}

  schedule(faults: readonly Fault[]): void {
    for (const fault of faults) this.scheduler.at(fault.atMs, () => this.running && this.apply(fault));
  }

  /** Keeps a bounded sample of remittances for replay attacks. */
  observe(from: string, to: string, message: LinkMessage): void {
    if (message.kind === 'remit' && this.seenRemittances.length < 256) this.seenRemittances.push({ from, to, message });
  }

  /** True for a copy the nemesis modified in flight: SD must refuse it and change nothing [INV-6]. */
  isAlteredInFlight(message: object): boolean {
    return this.alteredCopies.has(message);
  }

  /** Liveness phase: no new faults; everything crashed comes back now. */
  stop(): void {
    this.running = false;
    this.alterationsDue = 0;
    for (const restart of [...this.pendingRestarts]) restart();
    this.pendingRestarts.clear();
  }

  private later(delayMs: number, action: () => void): void {
    const run = () => {
      if (!this.pendingRestarts.delete(run)) return;
      action();
    };
    this.pendingRestarts.add(run);
    this.scheduler.schedule(delayMs, run);
  }

  private victims(count: number): TerminalSlot[] {
    const up = this.fleet.terminals.filter((slot) => slot.up);
    const chosen: TerminalSlot[] = [];
    for (let i = 0; i < count && up.length > 0; i++) chosen.push(up.splice(this.prng.int(0, up.length - 1), 1)[0]!);
    return chosen;
  }

  apply(fault: Fault): void {
    switch (fault.kind) {
      case 'serverCrash': {
        this.counters.serverCrashes++;
        this.fleet.stopServer(fault.shard);
        this.later(fault.restartAfterMs, () => this.fleet.startServer(fault.shard));
        return;
      }
      case 'brokerCrash': {
        // In virtual mode the broker is the network: while it is down every message is lost.
        this.counters.brokerCrashes++;
        this.network.setAllDown(true);
        this.later(fault.restartAfterMs, () => this.network.setAllDown(false));
        return;
      }
      case 'terminalCrash': {
        for (const slot of this.victims(fault.count)) {
          this.counters.terminalCrashes++;
          this.fleet.crashTerminal(slot);
          this.later(fault.restartAfterMs, () => this.fleet.startTerminal(slot));
        }
        return;
      }
      case 'simMove': {
        for (const slot of this.victims(fault.count)) this.moveSim(slot);
        return;
      }
      case 'clockSkew': {
        for (const slot of this.victims(fault.count)) {
          this.counters.skewed++;
          slot.skewMs = fault.skewMs;
        }
        return;
      }
      case 'partition': {
        this.counters.partitions++;
        const address = serverAddress(fault.shard);
        this.network.partition(address, this.scheduler.now() + fault.durationMs);
        this.later(fault.durationMs, () => this.network.heal(address));
        return;
      }
      case 'forgedSignature':
        for (let i = 0; i < fault.count; i++) this.injectForgedDebit();
        return;
      case 'replayedRemittance':
        for (let i = 0; i < fault.count; i++) this.injectReplay();
        return;
      case 'alteredInFlight':
        this.alterationsDue += fault.count;
        this.network.tamper ??= (_from, _to, message) => this.alterInFlight(message);
        return;
      case 'malformedPayload':
        for (let i = 0; i < fault.count; i++) this.injectMalformed();
        return;
      case 'wrongTopic':
        for (let i = 0; i < fault.count; i++) this.injectImpersonation();
        return;
      case 'databaseCrash':
        // The virtual servers keep their ledgers in memory: there is no database to crash, and a stand-in would
        // claim a test that did not happen. `payfleet run` refuses such a scenario in virtual mode (exit 2).
        throw new Error(`databaseCrash at ${fault.atMs} ms: not modelled in virtual mode (mqtt mode with --ledger postgres://… --ledger-pgdata DIR)`);
    }
  }

  /** The SIM leaves its terminal in a strongbox and comes up in a new terminal with the same proxy identity. */
  private moveSim(slot: TerminalSlot): void {
    const actor = this.fleet.terminalActor(slot);
    if (!actor) return;
    this.counters.simMoves++;
    const password = `pw-${slot.plan.terminalId}`;
    let box: import('../../machines/domain/strongbox.ts').Strongbox | undefined;
    const unsubscribe = actor.on('terminal.strongbox', (event) => {
      box = event.box;
    });
    const bytes = this.prng.fork(`strongbox:${slot.plan.terminalId}:${slot.generation}`).bytes32();
    actor.send({ type: 'strongbox.export', password, salt: bytes.subarray(0, 16), iv: bytes.subarray(16, 28) });
    unsubscribe.unsubscribe();
    if (!box) return;
    this.fleet.crashTerminal(slot);
    const sealed = box;
    this.later(1_000, () => this.fleet.startTerminal(slot, { box: sealed, password }));
  }

  private randomShard(): number {
    return this.prng.int(0, this.fleet.options.shards - 1);
  }

  private randomTerminal(): TerminalSlot | undefined {
    return this.fleet.terminals[this.prng.int(0, this.fleet.terminals.length - 1)];
  }

  private inject(from: string, to: string, message: ServerRequest): void {
    this.adversaryIds.add(`${message.from}/${message.reqId}`);
    this.counters.adversarialMessages++;
    this.network.inject(from, to, message);
  }

  /** A debit in a real proxy's name, signed with a key that is not the proxy's. */
  private injectForgedDebit(): void {
    const victim = this.randomTerminal();
    if (!victim) return;
    const forger = keyFromSeed(this.fleet.options.scheme, this.prng.fork(`forger:${++this.forgerySeq}`).bytes32());
    const claim = { txId: `forged:${this.forgerySeq}`, amountMinor: 100, payee: 'merchant:forger', timeMs: this.scheduler.now(), counter: 1_000_000 + this.forgerySeq, proxyId: victim.plan.terminalId, meansId: victim.plan.means.meansId };
    const request = signRequest<DebitRequest>(forger, { kind: 'debit', reqId: `forged:${this.forgerySeq}`, from: victim.plan.terminalId, claim });
    this.inject(victim.plan.terminalId, serverAddress(this.fleet.shardOfMeans(claim.meansId)), request);
  }

  /** A remittance seen earlier, sent again as it was (a replay) and with its amount raised (an alteration). */
  private injectReplay(): void {
    const seen = this.seenRemittances[this.prng.int(0, Math.max(0, this.seenRemittances.length - 1))];
    if (!seen) return;
    this.exactReplayIds.add(`${seen.message.from}/${seen.message.reqId}`);
    this.inject(seen.from, seen.to, seen.message);
    if (seen.message.mode === 'grouped' && seen.message.transactions.length > 0) {
      const [first, ...rest] = seen.message.transactions;
      const altered: RemitRequest = { ...seen.message, reqId: `${seen.message.reqId}:altered`, transactions: [{ ...first!, amountMinor: first!.amountMinor + 1 }, ...rest] };
      this.inject(seen.from, seen.to, altered);
    }
  }

  /**
   * The next remittance or settlement on the wire, modified under its original request id: one amount raised by
   * one minor unit, the honest copy never delivered (the network carries this one in its place). SD must refuse it
   * without storing anything under the id, so the sender's resend of the honest request still posts [INV-4, INV-6].
   */
  private alterInFlight(message: LinkMessage): LinkMessage | undefined {
    if (!this.running || this.alterationsDue <= 0) return undefined;
    if (message.kind !== 'remit' && message.kind !== 'settle') return undefined;
    const altered = structuredClone(message);
    if (altered.kind === 'settle') altered.proofs[0]!.amountMinor += 1;
    else if (altered.mode === 'grouped') altered.transactions[0]!.amountMinor += 1;
    else altered.aggregates[0]!.sumMinor += 1;
    this.alterationsDue--;
    this.alteredCopies.add(altered);
    this.counters.alteredInFlight++;
    this.counters.adversarialMessages++;
    return altered;
  }

  /** A request whose amount is not an amount: the server's shape check refuses it. */
  private injectMalformed(): void {
    const victim = this.randomTerminal();
    if (!victim) return;
    const reqId = `malformed:${++this.forgerySeq}`;
    const malformed = { kind: 'debit', reqId, from: victim.plan.terminalId, sig: 'x', claim: { txId: reqId, amountMinor: -5, payee: '', timeMs: 0, counter: -1, proxyId: victim.plan.terminalId, meansId: victim.plan.means.meansId } } as unknown as ServerRequest;
    this.inject(victim.plan.terminalId, serverAddress(this.randomShard()), malformed);
  }

  /** One device speaks in another's name (the virtual analogue of publishing on another's topic). */
  private injectImpersonation(): void {
    const speaker = this.randomTerminal();
    const victim = this.randomTerminal();
    if (!speaker || !victim || speaker === victim) return;
    const speakerKey = keyFromSeed(this.fleet.options.scheme, this.prng.fork(`impersonator:${++this.forgerySeq}`).bytes32());
    const request = signRequest<DebitRequest>(speakerKey, {
      kind: 'debit',
      reqId: `impersonation:${this.forgerySeq}`,
      from: victim.plan.terminalId,
      claim: { txId: `impersonation:${this.forgerySeq}`, amountMinor: 50, payee: `merchant:${speaker.plan.terminalId}`, timeMs: this.scheduler.now(), counter: 2_000_000 + this.forgerySeq, proxyId: victim.plan.terminalId, meansId: victim.plan.means.meansId },
    });
    this.inject(speaker.plan.terminalId, serverAddress(this.fleet.shardOfMeans(victim.plan.means.meansId)), request);
  }
}
