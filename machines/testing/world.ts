// Goal: a small world of machines for tests — one payment server over an in-memory ledger, a few terminals
// and POS units, all on a TestBus and one simulated clock — so each machine test reads like a story.
// Method: keys derive from labels (sha256), so every run is the same; `advance(ms)` moves the clock and flushes
// the bus until quiet; every receipt, prompt and remittance the machines emit is recorded for assertions, and
// small readers (`proofOf`, `declineOf`, `handled`, `payeeBalanceMinor`…) keep the stories short.

import { createHash } from 'node:crypto';
import { createActor, SimulatedClock, type Actor } from 'xstate';
import { TestBus } from './bus.ts';
import { terminalMachine, proxyCodeFields, type TerminalEmitted } from '../terminal.ts';
import { posMachine, type PosEmitted } from '../pos.ts';
import { serverMachine, createLedgerActor, type ServerEmitted } from '../server.ts';
import { proxyMachine, type ProxyEmitted } from '../proxy.ts';
import { Ledger, meansAccount, payeeAccount } from '../domain/ledger.ts';
import { MemoryLedgerStore } from '../domain/ledgerStore.ts';
import { keyFromSeed, signFields, type SignatureScheme, type SigningKey } from '../domain/signature.ts';
import { createMeans, type MeansState } from '../domain/means.ts';
import { defaultDiscriminationPolicy } from '../domain/discriminate.ts';
import { defaultConfirmationPolicy } from '../domain/confirmation.ts';
import { defaultRemittancePolicy } from '../domain/remittance.ts';
import type { ProxyPolicy, ProxyState } from '../domain/proxyRules.ts';
import type { PaymentOrder, Proof, ServerRequest } from '../messages.ts';
import type { Strongbox } from '../domain/strongbox.ts';
import { signRemitNow } from '../domain/requests.ts';

export function seedOf(label: string): Uint8Array {
  return createHash('sha256').update(label).digest();
}

export function keyOf(label: string, scheme: SignatureScheme = 'ed25519'): SigningKey {
  return keyFromSeed(scheme, seedOf(label));
}

export const testPolicy: ProxyPolicy = {
  discrimination: defaultDiscriminationPolicy,
  confirmation: defaultConfirmationPolicy,
  remittance: defaultRemittancePolicy,
  remoteTimeoutMs: 10_000,
};

export interface TerminalSpec {
  id: string;
  means: MeansState[];
  inCoverage?: boolean;
  /** Opening balance of each means at SD (default: the means' SL). */
  openingBalanceMinor?: number;
}

export interface WorldOptions {
  terminals: TerminalSpec[];
  pos?: Array<{ id: string; merchantId: string }>;
  shards?: number;
  scheme?: SignatureScheme;
  policy?: ProxyPolicy;
  pin?: string;
  /** Replace the operator's signature over the proxy code (to test an untrusted proxy). */
  proxyCodeSignature?: string;
}

export type TerminalActor = Actor<typeof terminalMachine>;
export type PosActor = Actor<typeof posMachine>;

export class World {
  readonly bus = new TestBus();
  readonly clock = new SimulatedClock();
  readonly scheme: SignatureScheme;
  readonly ledger = new Ledger(new MemoryLedgerStore());
  readonly serverKey: SigningKey;
  readonly operatorKey: SigningKey;
  readonly publicKeys = new Map<string, string>();
  readonly proxyKeys = new Map<string, SigningKey>();
  readonly terminals = new Map<string, TerminalActor>();
  readonly pos = new Map<string, PosActor>();
  readonly terminalEvents: TerminalEmitted[] = [];
  readonly proxyEvents: ProxyEmitted[] = [];
  readonly posEvents: PosEmitted[] = [];
  readonly serverEvents: ServerEmitted[] = [];
  readonly policy: ProxyPolicy;
  readonly pin: string;
  readonly shards: number;
  server!: Actor<typeof serverMachine>;
  private readonly specs = new Map<string, TerminalSpec>();

  constructor(readonly options: WorldOptions) {
    this.scheme = options.scheme ?? 'ed25519';
    this.policy = options.policy ?? testPolicy;
    this.pin = options.pin ?? '1234';
    this.shards = options.shards ?? 1;
    this.serverKey = keyOf('server', this.scheme);
    this.operatorKey = keyOf('operator', this.scheme);
    for (const t of options.terminals) {
      this.specs.set(t.id, t);
      const key = keyOf(`proxy:${t.id}`, this.scheme);
      this.proxyKeys.set(t.id, key);
      this.publicKeys.set(t.id, key.publicKey);
      for (const m of t.means) {
        this.ledger.openMeans({ meansId: m.meansId, kind: m.kind, openingBalanceMinor: t.openingBalanceMinor ?? m.localBalanceMinor, creditLimitMinor: 0 });
      }
    }
    for (const p of options.pos ?? []) this.publicKeys.set(p.id, keyOf(`pos:${p.id}`, this.scheme).publicKey);
    this.startServer();
    for (const t of options.terminals) this.startTerminal(t.id);
    for (const p of options.pos ?? []) this.startPos(p.id, p.merchantId);
    this.settle();
  }

  now = (): number => this.clock.now();

  /**
   * The server's ledger child: by default it applies each request at once. A world that must hold writes back
   * (properties/harness.ts: a store whose commits the test controls) overrides this; it is called at every
   * server start, so a restarted server gets a fresh child.
   */
  protected ledgerChild() {
    return createLedgerActor(this.ledger);
  }

  startServer(): void {
    const machine = serverMachine.provide({ actors: { link: this.bus.link, ledger: this.ledgerChild() } });
    this.server = createActor(machine, {
      id: 'server',
      clock: this.clock,
      input: {
        serverId: 'server',
        shards: Array.from({ length: this.shards }, (_, i) => i),
        key: this.serverKey,
        scheme: this.scheme,
        publicKeyOf: (id) => this.publicKeys.get(id),
        now: this.now,
      },
    });
    this.server.on('*', (e) => this.serverEvents.push(e as ServerEmitted));
    this.server.start();
  }

  startTerminal(id: string, restore?: { state?: ProxyState; strongbox?: { box: Strongbox; password: string }; inCoverage?: boolean }): TerminalActor {
    const spec = this.specs.get(id)!;
    const machine = terminalMachine.provide({ actors: { proxy: proxyMachine.provide({ actors: { link: this.bus.link, nearLink: this.bus.nearLink } }) } });
    const digest = 'sha256:proxy-code-v1';
    const actor = createActor(machine, {
      id: `tm:${id}`,
      clock: this.clock,
      input: {
        terminalId: id,
        secureElement: {
          operatorPublicKey: this.operatorKey.publicKey,
          scheme: this.scheme,
          proxyCode: { digest, signature: this.options.proxyCodeSignature ?? signFields(this.operatorKey, proxyCodeFields(digest)) },
        },
        strongbox: restore?.strongbox,
        proxy: {
          proxyId: id,
          policy: this.policy,
          key: this.proxyKeys.get(id)!,
          serverPublicKey: this.serverKey.publicKey,
          scheme: this.scheme,
          shardCount: this.shards,
          pin: this.pin,
          means: spec.means,
          restored: restore?.state,
          inCoverage: restore?.inCoverage ?? spec.inCoverage ?? true,
          now: this.now,
        },
      },
    });
    this.terminals.set(id, actor);
    actor.on('*', (e) => this.terminalEvents.push(e as TerminalEmitted));
    actor.start();
    this.proxyOf(id)?.on('*', (e: ProxyEmitted) => this.proxyEvents.push(e));
    return actor;
  }

  startPos(id: string, merchantId: string): PosActor {
    const machine = posMachine.provide({ actors: { link: this.bus.link, nearLink: this.bus.nearLink } });
    const actor = createActor(machine, {
      id: `pos:${id}`,
      clock: this.clock,
      input: {
        posId: id,
        merchantId,
        key: keyOf(`pos:${id}`, this.scheme),
        scheme: this.scheme,
        serverPublicKey: this.serverKey.publicKey,
        proxyPublicKeyOf: (proxyId) => this.publicKeys.get(proxyId),
        shardCount: this.shards,
        now: this.now,
        inCoverage: true,
        retry: this.policy.remittance.retry,
      },
    });
    actor.on('*', (e) => this.posEvents.push(e as PosEmitted));
    actor.start();
    this.pos.set(id, actor);
    return actor;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  proxyOf(terminalId: string): any {
    return this.terminals.get(terminalId)?.getSnapshot().children.proxy;
  }

  proxyState(terminalId: string): ProxyState {
    return this.proxyOf(terminalId).getSnapshot().context.state as ProxyState;
  }

  /** Delivers everything on the bus. */
  settle(): void {
    this.bus.flush();
  }

  /** Moves time forward in steps, delivering messages after each step. */
  advance(ms: number, stepMs = 100): void {
    for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
      this.clock.increment(Math.min(stepMs, ms - elapsed));
      this.settle();
    }
  }

  pay(terminalId: string, order: Omit<PaymentOrder, 'source' | 'payee'> & { payee?: string; appId?: string }): void {
    const { appId = 'app', payee = 'merchant:shop', ...rest } = order;
    this.terminals.get(terminalId)!.send({ type: 'app.pay', order: { ...rest, payee, source: { kind: 'app', appId } } });
    this.settle();
  }

  answer(terminalId: string, orderId: string, approved: boolean, pin?: string): void {
    this.terminals.get(terminalId)!.send({ type: 'user.answer', orderId, approved, pin });
    this.settle();
  }

  private remitRequestSeq = 0;

  /**
   * SD's explicit request to remit, signed with SD's key and handed to the terminal as an app's server relays it
   * (the server machine's own `server.remitNow` sends the same over the link).
   */
  requestRemittance(terminalId: string): void {
    this.remitRequestSeq += 1;
    const request = signRemitNow(this.serverKey, { reqId: `appServer:n${this.remitRequestSeq}`, from: 'appServer', to: terminalId, issuedAtMs: this.now() });
    this.terminals.get(terminalId)!.send({ type: 'remit.now', request });
  }

  setCoverage(terminalId: string, inCoverage: boolean): void {
    this.terminals.get(terminalId)!.send({ type: 'coverage', inCoverage });
    this.settle();
  }

  /** Pays and, when the proxy asks, answers yes (with the world's PIN unless another is given). */
  payConfirmed(terminalId: string, order: Parameters<World['pay']>[1], pin: string = this.pin): void {
    this.pay(terminalId, order);
    const prompt = this.promptFor(order.orderId);
    if (prompt && !this.receiptFor(order.orderId)) this.answer(terminalId, order.orderId, true, prompt.kind === 'pin' ? pin : undefined);
  }

  /** The proof of an approved order; throws with the reason when the order was not approved. */
  proofOf(orderId: string): Proof {
    const receipt = this.receiptFor(orderId);
    if (!receipt) throw new Error(`no receipt for ${orderId}`);
    if (!receipt.response.ok) throw new Error(`${orderId} was declined: ${receipt.response.reason}`);
    return receipt.response.proof;
  }

  /** Why an order was declined; throws when it was approved or has no receipt yet. */
  declineOf(orderId: string): string {
    const receipt = this.receiptFor(orderId);
    if (!receipt) throw new Error(`no receipt for ${orderId}`);
    if (receipt.response.ok) throw new Error(`${orderId} was approved`);
    return receipt.response.reason;
  }

  receiptsFor(orderId: string) {
    return this.terminalEvents.filter((e): e is Extract<TerminalEmitted, { type: 'terminal.receipt' }> => e.type === 'terminal.receipt' && e.order.orderId === orderId);
  }

  /** A payee's balance at SD (0 before its first credit). */
  payeeBalanceMinor(payee: string): number {
    return this.ledger.accountOf(payeeAccount(payee))?.balanceMinor ?? 0;
  }

  /** A means' balance at SD, holds not deducted. */
  meansBalanceMinor(meansId: string): number {
    return this.ledger.accountOf(meansAccount(meansId))?.balanceMinor ?? 0;
  }

  /** Every account's balance at SD, to show that a refused request changed nothing. */
  accountBalances(): Record<string, number> {
    return Object.fromEntries(this.ledger.accounts().map((a) => [a.id, a.balanceMinor]));
  }

  /** The requests SD handled, of one kind, with their results. */
  handled(kind?: ServerRequest['kind']) {
    return this.serverEvents.filter((e): e is Extract<ServerEmitted, { type: 'server.handled' }> => e.type === 'server.handled' && (kind === undefined || e.request.kind === kind));
  }

  /** A POS starts a proximity sale with a terminal over the near link. */
  sale(posId: string, terminalId: string, meansId: string, amountMinor: number): void {
    this.pos.get(posId)!.send({ type: 'pos.sale', terminalId, meansId, amountMinor });
    this.settle();
  }

  /** Seals the terminal's proxy state in a strongbox (the SIM is about to move) and returns the box. */
  exportStrongbox(terminalId: string, password: string): Strongbox {
    const before = this.terminalEvents.length;
    this.terminals.get(terminalId)!.send({ type: 'strongbox.export', password, salt: seedOf(`salt:${terminalId}`).subarray(0, 16), iv: seedOf(`iv:${terminalId}`).subarray(0, 12) });
    const sealed = this.terminalEvents.slice(before).find((e): e is Extract<TerminalEmitted, { type: 'terminal.strongbox' }> => e.type === 'terminal.strongbox');
    if (!sealed) throw new Error(`${terminalId} sealed no strongbox`);
    return sealed.box;
  }

  receiptFor(orderId: string) {
    return this.terminalEvents.find((e): e is Extract<TerminalEmitted, { type: 'terminal.receipt' }> => e.type === 'terminal.receipt' && e.order.orderId === orderId);
  }

  promptFor(orderId: string) {
    return this.terminalEvents.find((e): e is Extract<TerminalEmitted, { type: 'terminal.confirm' }> => e.type === 'terminal.confirm' && e.orderId === orderId);
  }

  /** Stops a terminal as a crash would, and returns the proxy's persisted state. */
  crash(terminalId: string): ProxyState {
    const state = this.proxyState(terminalId);
    this.terminals.get(terminalId)!.stop();
    this.terminals.delete(terminalId);
    return state;
  }
}

/** The test policy with some parts replaced. */
export function policyWith(overrides: {
  discrimination?: Partial<Omit<ProxyPolicy['discrimination'], 'offline'>> & { offline?: Partial<ProxyPolicy['discrimination']['offline']> };
  confirmation?: Partial<ProxyPolicy['confirmation']>;
  remittance?: Partial<Omit<ProxyPolicy['remittance'], 'triggers'>> & { triggers?: Partial<ProxyPolicy['remittance']['triggers']> };
  remoteTimeoutMs?: number;
}): ProxyPolicy {
  const base = testPolicy;
  return {
    discrimination: { ...base.discrimination, ...overrides.discrimination, offline: { ...base.discrimination.offline, ...overrides.discrimination?.offline } },
    confirmation: { ...base.confirmation, ...overrides.confirmation },
    remittance: { ...base.remittance, ...overrides.remittance, triggers: { ...base.remittance.triggers, ...overrides.remittance?.triggers } },
    remoteTimeoutMs: overrides.remoteTimeoutMs ?? base.remoteTimeoutMs,
  };
}

/** A virtual wallet means with SL = `localBalanceMinor`. */
export function walletMeans(meansId: string, localBalanceMinor: number, extra: Partial<MeansState> = {}): MeansState {
  return createMeans({ meansId, kind: 'virtualWallet', dedicated: true, localBalanceMinor, ...extra });
}
