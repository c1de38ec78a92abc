// Goal: the living fleet of a virtual run — one root XState actor per terminal, POS unit and server shard,
// wired to the simulated network, with crash/restart and SIM moves that the nemesis can call.
// Method: every actor is a root actor with an explicit id and the scheduler's clock, so timers run in virtual
// time and no actor draws an id from Math.random; machines get the simulated links through `.provide()`.
// Keys derive from the run's PRNG. What the actors emit is handed to `FleetObserver`, which the simulator
// turns into metrics and invariant checks. In a virtual run, idle terminals hibernate (hibernation.ts): their actors
// stop after the event that left them idle and are made again from a compact record when something reaches them (a
// message, a near-link order, a timer, or `terminalActor`/`sendToTerminal`). `slot.up`: running, asleep or awake.

import { createActor, type Actor, type AnyActorRef } from 'xstate';
import type { Clock, Scheduler } from './scheduler.ts';
import type { SimNetwork } from './network.ts';
import { Hibernation, TerminalClock, withPlainRestore, type HibernatedTerminal, type HibernationOptions, type NearEndpoint } from './hibernation.ts';
import type { LinkCommand, LinkInput } from '../../machines/link.ts';
import type { CallbackActorLogic } from 'xstate';
import { terminalMachine, proxyCodeFields, type TerminalEmitted, type TerminalEvent } from '../../machines/terminal.ts';
import { proxyMachine, type ProxyEmitted } from '../../machines/proxy.ts';
import { posMachine, type PosEmitted } from '../../machines/pos.ts';
import { createLedgerActor, serverMachine, type LedgerSchedule, type LedgerWork, type ServerEmitted } from '../../machines/server.ts';
import type { Calibration } from '../scenario/calibration.ts';
import { ServerCostModel } from './serverCost.ts';
import { Ledger } from '../../machines/domain/ledger.ts';
import { SumTrackingLedgerStore } from './ledgerStore.ts';
import { ledgerFingerprint } from '../../machines/domain/invariants.ts';
import { deriveKey, deviceKeyLabel } from './fleetKeys.ts';
import { signFields, type SignatureScheme, type SigningKey } from '../../machines/domain/signature.ts';
import { signRemitNow } from '../../machines/domain/requests.ts';
import type { ProxyPolicy, ProxyState } from '../../machines/domain/proxyRules.ts';
import type { ServerRequest, ServerResult } from '../../machines/messages.ts';
import type { NearLinkCommand, NearLinkEvent } from '../../machines/link.ts';
import type { Strongbox } from '../../machines/domain/strongbox.ts';
import { shardOf } from '../../machines/link.ts';
import { createNearLink } from './nearLink.ts';
import type { Prng } from './prng.ts';
import type { TimeSource } from './timeSource.ts';
import type { PosPlan, TerminalPlan } from './population.ts';

export type TerminalActor = Actor<typeof terminalMachine>;
export type PosActor = Actor<typeof posMachine>;
export type ServerActor = Actor<typeof serverMachine>;

/** Receives everything the fleet's actors emit, and the ledger's view of each request. */
export interface FleetObserver {
  onTerminal(event: TerminalEmitted): void;
  onProxy(terminalId: string, event: ProxyEmitted): void;
  onPos(event: PosEmitted): void;
  onServer(shard: number, event: ServerEmitted): void;
  /** True for requests the nemesis forged: the ledger is fingerprinted around them [INV-6]. */
  isAdversarial(request: ServerRequest): boolean;
  /** Called by the ledger actor for every request it applied; fingerprints only for adversarial requests. */
  onLedgerApplied(shard: number, request: ServerRequest, result: ServerResult, fingerprints?: { before: string; after: string }): void;
}

/** Where the fleet runs: its time, the clock its actors' delays run on, and its link to SD. */
export interface FleetEnvironment {
  time: TimeSource;
  /** The XState clock for `createActor`; undefined for the real clock (mqtt mode). */
  clock: Clock | undefined;
  /** The `link` actor logic: the simulated network, or an MQTT client. */
  link: CallbackActorLogic<LinkCommand, LinkInput>;
  /**
   * Virtual mode: idle terminals hibernate (hibernation.ts). The link must be the simulated network's link on this
   * network, and the clock this scheduler's. Absent: every terminal's actors stay alive (mqtt mode, `--no-hibernate`).
   */
  hibernation?: { scheduler: Scheduler; network: SimNetwork; options?: HibernationOptions };
}

export interface FleetOptions {
  scheme: SignatureScheme;
  policy: ProxyPolicy;
  shards: number;
  pin: string;
  /** Delay of the short-range near link (ICP), which works without coverage. */
  nearLinkDelayMs: number;
  /** Time a shard takes per request, requests waiting in a FIFO queue per shard; 0 or absent: none. */
  serviceTimeMs?: number;
  /** Measured server costs: each shard serves group-commit batches with them (serverCost.ts); wins over serviceTimeMs. */
  serverCost?: { calibration: Calibration; prng: Prng };
}

const PROXY_CODE_DIGEST = 'sha256:payfleet-proxy-v1';

/** A terminal alive in the fleet, or the remains of one that crashed. */
export interface TerminalSlot {
  plan: TerminalPlan;
  /** The terminal runs (awake or hibernating); false before its start and while it is down after a crash. */
  up: boolean;
  /** Its actors while awake; undefined while it hibernates or is down. `Fleet.terminalActor` wakes it. */
  actor: TerminalActor | undefined;
  /** While it hibernates: what it keeps (hibernation.ts). */
  hibernated?: HibernatedTerminal;
  /** While awake in a fleet that hibernates: the clock that knows its armed timers. */
  clock?: TerminalClock;
  /** Generation: 0 for the first terminal, +1 for each restart or SIM move (its actor id changes). */
  generation: number;
  /** Clock skew of this terminal's proxy (ms); its `now()` reads the virtual time plus this. */
  skewMs: number;
  /** Radio coverage as the coverage model and outages decide it. */
  inCoverage: boolean;
  /** Persisted proxy state kept while the terminal is down. */
  persisted?: ProxyState;
}

export class Fleet {
  readonly ledgers: Ledger[];
  readonly servers: Array<ServerActor | undefined>;
  /** Longest queue of requests seen waiting at each shard (with a service time). */
  readonly serverQueuePeak: number[];
  /** With a calibration: group commits per shard, and the simulated ms each shard spent serving. */
  readonly serverBatches: number[];
  readonly serverBusyMs: number[];
  private readonly serverCosts: ServerCostModel[] | undefined;
  readonly terminals: TerminalSlot[] = [];
  readonly pos = new Map<string, PosActor>();
  readonly serverKey: SigningKey;
  readonly operatorKey: SigningKey;
  private readonly proxyKeys = new Map<string, SigningKey>();
  private readonly publicKeys = new Map<string, string>();
  /** Who receives what reaches each near-link endpoint: the actor that hosts the endpoint's near link. */
  private readonly nearEndpoints = new Map<string, NearEndpoint>();
  private readonly link: CallbackActorLogic<LinkCommand, LinkInput>;
  private readonly nearLink;
  // Machines with their links provided, made once: `.provide()` rebuilds every state node, far too costly per actor.
  private readonly terminalLogic;
  private readonly posLogic;
  private readonly clock: Clock | undefined;
  private readonly time: TimeSource;
  private readonly codeSignature: string;
  private readonly now: () => number;
  /** Puts idle terminals to sleep and wakes them; undefined when every terminal stays awake. */
  readonly hibernation: Hibernation<TerminalSlot> | undefined;
  /** Terminals up now (running, awake or hibernating). */
  terminalsUp = 0;

  constructor(
    readonly options: FleetOptions,
    environment: FleetEnvironment,
    private readonly prng: Prng,
    private readonly observer: FleetObserver,
  ) {
    this.time = environment.time;
    this.clock = environment.clock;
    this.now = () => this.time.now();
    this.serverKey = deriveKey(options.scheme, prng, 'server-key');
    this.operatorKey = deriveKey(options.scheme, prng, 'operator-key');
    this.codeSignature = signFields(this.operatorKey, proxyCodeFields(PROXY_CODE_DIGEST));
    this.ledgers = Array.from({ length: options.shards }, () => new Ledger(new SumTrackingLedgerStore()));
    this.servers = Array.from({ length: options.shards }, () => undefined);
    this.serverQueuePeak = Array.from({ length: options.shards }, () => 0);
    this.serverBatches = Array.from({ length: options.shards }, () => 0);
    this.serverBusyMs = Array.from({ length: options.shards }, () => 0);
    // One stream per shard, made once: a restarted shard goes on drawing where it stopped.
    const cost = options.serverCost;
    this.serverCosts = cost && Array.from({ length: options.shards }, (_, shard) => new ServerCostModel(cost.calibration, cost.prng.fork(`shard-${shard}`)));
    this.link = environment.link;
    this.nearLink = createNearLink(this.nearEndpoints, this.time, options.nearLinkDelayMs);
    const proxyLogic = withPlainRestore(proxyMachine.provide({ actors: { link: this.link, nearLink: this.nearLink } }));
    this.terminalLogic = withPlainRestore(terminalMachine.provide({ actors: { proxy: proxyLogic } }));
    this.posLogic = posMachine.provide({ actors: { link: this.link, nearLink: this.nearLink } });
    const hibernation = environment.hibernation;
    this.hibernation = hibernation && new Hibernation(hibernation.scheduler, hibernation.network, {
      nearEndpoints: this.nearEndpoints,
      resume: (slot, snapshot, clock) => {
        // A restored actor reads its context from the snapshot: its input is never used.
        const actor = createActor(this.terminalLogic, { id: this.terminalActorId(slot), clock, snapshot: snapshot as never, input: undefined as never });
        actor.on('*', (event) => this.observer.onTerminal(event as TerminalEmitted));
        actor.start();
        this.awaken(slot, actor, clock);
        return actor;
      },
    }, hibernation.options);
  }

  publicKeyOf = (id: string): string | undefined => this.publicKeys.get(id);

  shardOfMeans(meansId: string): number {
    return shardOf(meansId, this.options.shards);
  }

  ledgerOfMeans(meansId: string): Ledger {
    return this.ledgers[this.shardOfMeans(meansId)]!;
  }

  // ------------------------------------------------------------------ servers

  startServer(shard: number): void {
    const ledger = this.ledgers[shard]!;
    const observer = this.observer;
    const serviceTimeMs = this.options.serviceTimeMs ?? 0;
    const time = this.time;
    const queuePeak = this.serverQueuePeak;
    // The simulator's ledger child: the domain's, with a fingerprint around each request so the signature
    // invariant can prove that a refused message changed nothing. With a service time, a request is applied
    // when its turn in the shard's FIFO queue ends (one request at a time, each taking serviceTimeMs); a crash
    // loses the queue, as it loses requests on the wire, and the senders retry.
    const ledgerActor = createLedgerActor(ledger, () => {
      const apply = (work: LedgerWork): void => {
        const adversarial = observer.isAdversarial(work.command.request);
        const before = adversarial ? ledgerFingerprint(ledger) : '';
        const event = work.apply();
        observer.onLedgerApplied(shard, work.command.request, event.result, adversarial ? { before, after: ledgerFingerprint(ledger) } : undefined);
        work.answer(event);
      };
      const cost = this.serverCosts?.[shard];
      if (cost) return this.groupCommitSchedule(shard, cost, apply);
      let busyUntilMs = 0;
      let stopped = false;
      return {
        take(work) {
          if (serviceTimeMs <= 0) return apply(work);
          const startMs = Math.max(time.now(), busyUntilMs);
          busyUntilMs = startMs + serviceTimeMs;
          queuePeak[shard] = Math.max(queuePeak[shard]!, Math.ceil((busyUntilMs - time.now()) / serviceTimeMs));
          time.at(busyUntilMs, () => {
            if (!stopped) apply(work);
          });
        },
        stop() {
          stopped = true;
        },
      };
    });
    const machine = serverMachine.provide({ actors: { link: this.link, ledger: ledgerActor } });
    const actor = createActor(machine, {
      id: `sd-${shard}`,
      clock: this.clock,
      input: { serverId: `sd-${shard}`, shards: [shard], key: this.serverKey, scheme: this.options.scheme, publicKeyOf: this.publicKeyOf, now: this.now },
    });
    actor.on('*', (event) => observer.onServer(shard, event as ServerEmitted));
    actor.start();
    this.servers[shard] = actor;
  }

  /**
   * A shard with measured costs, as `payfleet server --commit group` works: the requests that arrive while the shard
   * is idle start a batch at once (those of the same instant join it), the requests that arrive while a batch is
   * served wait and form the next batch together. A batch takes the sum of its requests' drawn service times plus
   * one drawn commit for its size; its requests are applied and answered when it ends (no answer before its commit,
   * [INV-4 nothing lost]). A crash loses the batch and the queue, as it loses requests on the wire.
   */
  private groupCommitSchedule(shard: number, cost: ServerCostModel, apply: (work: LedgerWork) => void): ReturnType<LedgerSchedule> {
    const time = this.time;
    let queue: LedgerWork[] = [];
    let serving = 0;
    let busy = false;
    let stopped = false;
    const startBatch = (): void => {
      if (stopped) return;
      const batch = queue;
      queue = [];
      serving = batch.length;
      let durationMs = cost.commitMs(batch.length) + cost.topUpsMs(this.ledgers[shard]!.topUpsMade);
      for (const work of batch) durationMs += cost.serviceMs(work.command.request);
      this.serverBatches[shard]!++;
      this.serverBusyMs[shard]! += durationMs;
      time.at(time.now() + durationMs, () => {
        if (stopped) return;
        for (const work of batch) apply(work);
        serving = 0;
        if (queue.length > 0) startBatch();
        else busy = false;
      });
    };
    return {
      take: (work) => {
        queue.push(work);
        this.serverQueuePeak[shard] = Math.max(this.serverQueuePeak[shard]!, queue.length + serving);
        if (busy) return;
        busy = true;
        time.at(time.now(), startBatch);
      },
      stop: () => {
        stopped = true;
      },
    };
  }

  stopServer(shard: number): void {
    this.servers[shard]?.stop();
    this.servers[shard] = undefined;
  }

  // ------------------------------------------------------------------ terminals

  /** Registers a terminal: its key, its means at SD. Does not start it. */
  addTerminal(plan: TerminalPlan, inCoverage: boolean): TerminalSlot {
    const key = deriveKey(this.options.scheme, this.prng, deviceKeyLabel(plan.terminalId));
    this.proxyKeys.set(plan.terminalId, key);
    this.publicKeys.set(plan.terminalId, key.publicKey);
    this.ledgerOfMeans(plan.means.meansId).openMeans({
      meansId: plan.means.meansId,
      kind: plan.profile.kind,
      openingBalanceMinor: plan.profile.openingBalanceMinor,
      creditLimitMinor: plan.profile.creditLimitMinor,
    });
    const slot: TerminalSlot = { plan, up: false, actor: undefined, generation: 0, skewMs: 0, inCoverage };
    this.terminals[plan.index] = slot;
    return slot;
  }

  /**
   * Starts a terminal (first start, restart after a crash, or a SIM move with its strongbox). Call it between
   * scheduler events, never from inside an actor: in a fleet that hibernates, the terminal may go to sleep at once.
   */
  startTerminal(slot: TerminalSlot, strongbox?: { box: Strongbox; password: string }): void {
    const id = slot.plan.terminalId;
    const clock = this.hibernation ? this.hibernation.newClock() : this.clock;
    const actor = createActor(this.terminalLogic, {
      id: this.terminalActorId(slot),
      clock,
      input: {
        terminalId: id,
        secureElement: { operatorPublicKey: this.operatorKey.publicKey, scheme: this.options.scheme, proxyCode: { digest: PROXY_CODE_DIGEST, signature: this.codeSignature } },
        strongbox,
        receiptsKept: 4,
        proxy: {
          proxyId: id,
          policy: this.options.policy,
          key: this.proxyKeys.get(id)!,
          serverPublicKey: this.serverKey.publicKey,
          scheme: this.options.scheme,
          shardCount: this.options.shards,
          pin: this.options.pin,
          means: slot.plan.purse ? [slot.plan.means, slot.plan.purse] : [slot.plan.means],
          restored: strongbox ? undefined : slot.persisted,
          inCoverage: slot.inCoverage,
          now: () => this.time.now() + slot.skewMs,
        },
      },
    });
    actor.on('*', (event) => this.observer.onTerminal(event as TerminalEmitted));
    actor.start();
    this.awaken(slot, actor, clock instanceof TerminalClock ? clock : undefined);
    slot.persisted = undefined;
    slot.up = true;
    this.terminalsUp++;
    this.hibernation?.settle();
  }

  private terminalActorId(slot: TerminalSlot): string {
    const id = slot.plan.terminalId;
    return slot.generation === 0 ? `tm-${id}` : `tm-${id}~${slot.generation}`;
  }

  /** The started actor becomes the slot's: its proxy's emitted events go to the observer. */
  private awaken(slot: TerminalSlot, actor: TerminalActor, clock: TerminalClock | undefined): void {
    const id = slot.plan.terminalId;
    const proxy = actor.getSnapshot().children.proxy;
    proxy?.on('*', (event: ProxyEmitted) => this.observer.onProxy(id, event));
    slot.actor = actor;
    slot.clock = clock;
    if (clock) this.hibernation?.watch(slot, actor);
  }

  /** Terminals awake now: up, and not hibernating. */
  get terminalsAwake(): number {
    return this.terminalsUp - (this.hibernation?.asleep ?? 0);
  }

  /** The terminal's actors, woken if it hibernates; undefined while it is down. */
  terminalActor(slot: TerminalSlot): TerminalActor | undefined {
    if (slot.actor) return slot.actor;
    return slot.hibernated && this.hibernation ? this.hibernation.wake(slot) : undefined;
  }

  /** Sends `event` to the terminal if it is up, waking it if it hibernates. */
  sendToTerminal(slot: TerminalSlot, event: TerminalEvent): void {
    this.terminalActor(slot)?.send(event);
  }

  /**
   * Liveness phase: asks every terminal that holds locally approved transactions to remit them now. A local
   * approval alone does not start a remittance (only a remote payment, coverage coming back, a schedule or a
   * backlog does), so an order that was answered after the drain began would otherwise wait for ever.
   */
  nudgePendingRemittances(): void {
    for (const slot of this.terminals) {
      const state = proxyStateOf(slot);
      if (slot.up && state && state.journal.pending.length > 0) this.requestRemittance(slot);
    }
  }

  private remitRequestSeq = 0;

  /**
   * SD's explicit, signed request to remit now (the patent's trigger "by an explicit request"): sent by the
   * terminal's shard server over the network when that server runs here (virtual mode), else handed to the
   * terminal signed with SD's key, as an app's server relays it (an mqtt worker has no server actors; it holds SD's
   * derived key as the fleet's keys all derive from the run's seed). The proxy checks the signature either way.
   */
  requestRemittance(slot: TerminalSlot): void {
    if (!slot.up) return;
    const server = this.servers[this.shardOfMeans(slot.plan.means.meansId)];
    if (server) {
      server.send({ type: 'server.remitNow', proxyId: slot.plan.terminalId });
      return;
    }
    this.remitRequestSeq += 1;
    const request = signRemitNow(this.serverKey, { reqId: `appServer:n${this.remitRequestSeq}`, from: 'appServer', to: slot.plan.terminalId, issuedAtMs: this.time.now() });
    this.sendToTerminal(slot, { type: 'remit.now', request });
  }

  /** A crash: the actor stops; what the proxy persisted survives for the restart. A sleeping terminal wakes first. */
  crashTerminal(slot: TerminalSlot): void {
    const actor = this.terminalActor(slot);
    if (!actor) return;
    slot.persisted = proxyStateOf(slot);
    actor.stop();
    this.hibernation?.forget(slot);
    slot.actor = undefined;
    slot.clock = undefined;
    slot.up = false;
    this.terminalsUp--;
    slot.generation++;
  }

  // ------------------------------------------------------------------ POS

  startPos(plan: PosPlan): void {
    const key = deriveKey(this.options.scheme, this.prng, deviceKeyLabel(plan.posId));
    this.publicKeys.set(plan.posId, key.publicKey);
    const actor = createActor(this.posLogic, {
      id: plan.posId,
      clock: this.clock,
      input: {
        posId: plan.posId,
        merchantId: plan.merchantId,
        key,
        scheme: this.options.scheme,
        serverPublicKey: this.serverKey.publicKey,
        proxyPublicKeyOf: this.publicKeyOf,
        shardCount: this.options.shards,
        now: this.now,
        inCoverage: true,
        retry: this.options.policy.remittance.retry,
      },
    });
    actor.on('*', (event) => this.observer.onPos(event as PosEmitted));
    actor.start();
    this.pos.set(plan.posId, actor);
  }
}

/** The proxy's persisted state: read from the live actor, the hibernation record, or what survived a crash. */
export function proxyStateOf(slot: TerminalSlot): ProxyState | undefined {
  if (slot.hibernated) return slot.hibernated.proxyContext.state;
  if (!slot.actor) return slot.persisted;
  const proxy = slot.actor.getSnapshot().children.proxy;
  return proxy?.getSnapshot().context.state as ProxyState | undefined;
}
