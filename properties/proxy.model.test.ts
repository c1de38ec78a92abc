// Goal: model-based test of the payment proxy: under any sequence of payments, coverage losses and returns, time
// passing, terminal crashes and restores, server crashes, and a network that delivers late, twice, out of order
// or never, the proxy keeps its rules at every step (MTDL < SL, the offline caps, one answer per order), the
// server's ledger stays balanced, and once everything is back and drained every payment an app was told was
// approved is on the ledger exactly once, and nothing else is [INV-1]–[INV-5], [INV-7].
// Method: `fc.commands` over a model far simpler than the proxy — coverage, whether the terminal is up, the
// orders sent, the persisted state at a crash — against a ModelWorld (real machines, a pool network and a ledger
// whose writes wait for a commit). Each command's preconditions sit in its `check`, never as an early return in
// `run`, so a command that could not act is skipped rather than kept as a no-op and shrinking stays precise;
// `run` then checks what the model can say about the real system. The property ends with the drain and the
// ledger checks of checks.ts.

import { describe, it } from 'vitest';
import fc from 'fast-check';
import { policyWith, walletMeans } from '../machines/testing/world.ts';
import { createMeans } from '../machines/domain/means.ts';
import type { ProxyPolicy, ProxyState } from '../machines/domain/proxyRules.ts';
import type { PaymentOrder } from '../machines/messages.ts';
import { ModelWorld } from './harness.ts';
import { checkAfterDrain, checkConservation, checkMeans, InvariantBroken } from './checks.ts';
import { amountSpecArb, resolveAmount, type AmountSpec } from './arbitraries.ts';
import { commandsConstraints, runProperty } from './fc.ts';

const T = 't1';
const POS = 'pos1';
/** Apps pay 'shop' or 'cafe'; the POS belongs to the merchant 'market'. */
const PAYEES = ['shop', 'cafe', 'market'];

interface Model {
  inCoverage: boolean;
  up: boolean;
  /** The proxy's persisted state at the last crash, to restore from. */
  persisted?: ProxyState;
  nextOrder: number;
  orders: Array<Omit<PaymentOrder, 'source'>>;
  policy: ProxyPolicy;
  /**
   * What the test can see of the real system but the model cannot predict (which messages the machines send,
   * SD's figures after other points of issue spent): read by preconditions only, so a command whose
   * precondition fails is skipped by fast-check and left out of a counterexample instead of running as a no-op.
   */
  seen: {
    poolSize(): number;
    hasDeliveredBefore(): boolean;
    availableAtServerMinor(meansId: string): number;
  };
}

interface Real {
  world: ModelWorld;
}

type Cmd = fc.Command<Model, Real>;

function fail(message: string): never {
  throw new InvariantBroken(message);
}

/** What must hold after every command, whatever happened. */
function checkEveryStep(model: Model, world: ModelWorld, where: string): void {
  checkConservation(world.ledger, where);
  if (model.up) {
    const state = world.proxyState(T);
    for (const m of Object.values(state.means)) checkMeans(m, where);
  }
  // One answer per order: a repeated order is answered from the history, never paid again.
  const first = new Map<string, string>();
  for (const e of world.terminalEvents) {
    if (e.type !== 'terminal.receipt') continue;
    const text = JSON.stringify(e.response);
    const seen = first.get(e.order.orderId);
    if (seen !== undefined && seen !== text) fail(`${where}: order ${e.order.orderId} answered ${seen} and then ${text}`);
    first.set(e.order.orderId, text);
    if (e.response.ok && e.response.proof.path === 'localOffline' && e.order.amountMinor > model.policy.discrimination.offline.perPaymentCapMinor) {
      fail(`${where}: ${e.order.orderId} approved offline for ${e.order.amountMinor}, above the cap ${model.policy.discrimination.offline.perPaymentCapMinor}`);
    }
    if (e.response.ok && e.response.proof.path === 'remote' && !e.response.proof.serverSig) fail(`${where}: remote proof of ${e.order.orderId} without SD's signature`);
  }
}

class PayCommand implements Cmd {
  constructor(readonly p: { type: PaymentOrder['type']; meansId: string; amount: AmountSpec; payee: string; remoteMode: 'debit' | 'authCapture'; captureAfterMs: number }) {}
  // A crashed terminal takes no orders.
  check = (m: Readonly<Model>) => m.up;
  run(model: Model, real: Real): void {
    const orderId = `o${model.nextOrder++}`;
    const means = real.world.proxyState(T).means[this.p.meansId];
    const amountMinor = resolveAmount(this.p.amount, means, real.world.now());
    const order = { orderId, type: this.p.type, meansId: this.p.meansId, amountMinor, payee: this.p.payee, remoteMode: this.p.remoteMode, captureAfterMs: this.p.captureAfterMs };
    model.orders.push(order);
    real.world.pay(T, order);
    real.world.answerPrompts();
    // Without coverage SD cannot be asked: if the order was decided at once, it was decided locally or declined.
    const receipt = real.world.receiptFor(orderId);
    if (receipt?.response.ok && !model.inCoverage && receipt.response.proof.path === 'remote') fail(`${orderId} went remote without coverage`);
    checkEveryStep(model, real.world, `pay ${orderId}`);
  }
  toString = () => `Pay(${this.p.type} ${this.p.meansId} ${JSON.stringify(this.p.amount)} ${this.p.remoteMode})`;
}

class RepeatOrderCommand implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.up && m.orders.length > 0;
  run(model: Model, real: Real): void {
    // Only recent orders: the proxy keeps the answers of its last 32 orders.
    const recent = model.orders.slice(-8);
    const order = recent[this.pick % recent.length]!;
    real.world.pay(T, order);
    real.world.answerPrompts();
    checkEveryStep(model, real.world, `repeat ${order.orderId}`);
  }
  toString = () => `RepeatOrder(${this.pick})`;
}

class CoverageCommand implements Cmd {
  constructor(readonly inCoverage: boolean) {}
  check = (m: Readonly<Model>) => m.inCoverage !== this.inCoverage;
  run(model: Model, real: Real): void {
    model.inCoverage = this.inCoverage;
    if (model.up) real.world.setCoverage(T, this.inCoverage);
    checkEveryStep(model, real.world, this.toString());
  }
  toString = () => (this.inCoverage ? 'RegainCoverage' : 'LoseCoverage');
}

class SyncCommand implements Cmd {
  check = (m: Readonly<Model>) => m.inCoverage && m.up;
  run(model: Model, real: Real): void {
    // A short loss of the radio: the proxy reconnects, remits and asks SD for fresh figures.
    real.world.setCoverage(T, false);
    real.world.setCoverage(T, true);
    checkEveryStep(model, real.world, 'sync');
  }
  toString = () => 'Sync';
}

class RemitNowCommand implements Cmd {
  check = (m: Readonly<Model>) => m.up;
  run(model: Model, real: Real): void {
    real.world.requestRemittance(T);
    real.world.settle();
    checkEveryStep(model, real.world, 'remitNow');
  }
  toString = () => 'RemitNow';
}

class AdvanceCommand implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  run(model: Model, real: Real): void {
    real.world.advanceBy(this.ms);
    checkEveryStep(model, real.world, `advance ${this.ms}`);
  }
  toString = () => `AdvanceTime(${this.ms})`;
}

class DeliverCommand implements Cmd {
  constructor(readonly pick: number, readonly verdict: 'deliver' | 'duplicate' | 'drop') {}
  check = (m: Readonly<Model>) => m.seen.poolSize() > 0;
  run(model: Model, real: Real): void {
    const pool = real.world.net.pool;
    const index = this.pick % pool.length;
    if (this.verdict === 'drop') real.world.net.drop(index);
    else real.world.net.deliver(index, this.verdict);
    real.world.answerPrompts();
    checkEveryStep(model, real.world, this.toString());
  }
  toString = () => `${this.verdict === 'deliver' ? 'DeliverAck' : this.verdict === 'duplicate' ? 'DuplicateAck' : 'DropNext'}(${this.pick})`;
}

class FlushCommand implements Cmd {
  check = () => true;
  run(model: Model, real: Real): void {
    real.world.quiesce();
    checkEveryStep(model, real.world, 'flush');
  }
  toString = () => 'Flush';
}

class CommitCommand implements Cmd {
  constructor(readonly count: number) {}
  check = () => true;
  run(model: Model, real: Real): void {
    real.world.commit(this.count);
    checkEveryStep(model, real.world, `commit ${this.count}`);
  }
  toString = () => `Commit(${this.count})`;
}

class ServerCrashCommand implements Cmd {
  check = () => true;
  run(model: Model, real: Real): void {
    real.world.crashServer();
    checkEveryStep(model, real.world, 'serverCrash');
  }
  toString = () => 'ServerCrash';
}

class SaleCommand implements Cmd {
  constructor(readonly meansId: string, readonly amountMinor: number) {}
  check = () => true;
  run(model: Model, real: Real): void {
    // A shop's POS asks over the near link, which works without coverage; the POS settles the proof with SD
    // itself, so the same transaction reaches SD twice: from the POS and in the proxy's remittance.
    real.world.sale(POS, T, this.meansId, this.amountMinor);
    real.world.answerPrompts();
    checkEveryStep(model, real.world, this.toString());
  }
  toString = () => `Sale(${this.meansId} ${this.amountMinor})`;
}

class DuplicateLateCommand implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.seen.hasDeliveredBefore();
  run(model: Model, real: Real): void {
    // A copy of a message delivered a while ago turns up again: a late duplicate, or a replay.
    const old = real.world.net.deliveredEarlier(this.pick);
    if (!old) throw new Error(`DuplicateLate(${this.pick}): no message was delivered before, yet its precondition held`);
    real.world.net.deliverMessage(old);
    real.world.answerPrompts();
    checkEveryStep(model, real.world, this.toString());
  }
  toString = () => `DuplicateLate(${this.pick})`;
}

class SpendElsewhereCommand implements Cmd {
  constructor(readonly meansId: string, readonly amountMinor: number) {}
  // SD refuses a spend the means cannot cover; only one it allows is a step worth taking.
  check = (m: Readonly<Model>) => m.seen.availableAtServerMinor(this.meansId) >= this.amountMinor;
  run(model: Model, real: Real): void {
    // Another point of issue spends from the same means: SD's figure drops below what the proxy believes.
    const id = `elsewhere-${model.nextOrder++}`;
    real.world.ledger.spendElsewhere({ transferId: id, meansId: this.meansId, payee: 'elsewhere', amountMinor: this.amountMinor });
    checkEveryStep(model, real.world, this.toString());
  }
  toString = () => `SpendElsewhere(${this.meansId} ${this.amountMinor})`;
}

class CrashCommand implements Cmd {
  check = (m: Readonly<Model>) => m.up;
  run(model: Model, real: Real): void {
    model.persisted = real.world.crash(T);
    model.up = false;
    checkEveryStep(model, real.world, 'crash');
  }
  toString = () => 'Crash';
}

class RestoreCommand implements Cmd {
  check = (m: Readonly<Model>) => !m.up;
  run(model: Model, real: Real): void {
    real.world.startTerminal(T, { state: model.persisted, inCoverage: model.inCoverage });
    model.up = true;
    real.world.answerPrompts();
    checkEveryStep(model, real.world, 'restore');
  }
  toString = () => 'Restore';
}

/** Mostly small amounts (so that offline and below-threshold payments happen), some large, some on an edge. */
const modelAmountArb: fc.Arbitrary<AmountSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 1_500 }).map((amountMinor) => ({ kind: 'plain' as const, amountMinor })) },
  { weight: 1, arbitrary: amountSpecArb },
  { weight: 1, arbitrary: fc.constantFrom(-1, 0, 1).map((delta) => ({ kind: 'edge' as const, limit: 'local' as const, delta: delta as -1 | 0 | 1 })) },
);

const payArb = fc
  .record({
    type: fc.constantFrom<PaymentOrder['type']>('internal', 'proximity', 'telepayment', 'telepayment'),
    meansId: fc.constantFrom('m1', 'm1', 'm2'),
    amount: modelAmountArb,
    payee: fc.constantFrom(...PAYEES),
    remoteMode: fc.constantFrom('debit' as const, 'authCapture' as const),
    captureAfterMs: fc.constantFrom(0, 2_000, 30_000),
  })
  .map((p) => new PayCommand(p));
const deliverArb = fc
  .tuple(fc.nat(), fc.constantFrom('deliver' as const, 'deliver' as const, 'duplicate' as const, 'drop' as const))
  .map(([pick, verdict]) => new DeliverCommand(pick, verdict));

/** Repeated entries weigh a command up: payments and deliveries are what the network and the rules must survive. */
const commandArbs: fc.Arbitrary<Cmd>[] = [
  payArb, payArb, payArb, payArb, payArb,
  deliverArb, deliverArb, deliverArb,
  fc.nat().map((pick) => new RepeatOrderCommand(pick)),
  fc.boolean().map((inCoverage) => new CoverageCommand(inCoverage)),
  fc.boolean().map((inCoverage) => new CoverageCommand(inCoverage)),
  fc.constant(new SyncCommand()),
  fc.constant(new RemitNowCommand()),
  fc.integer({ min: 100, max: 40_000 }).map((ms) => new AdvanceCommand(ms)),
  fc.integer({ min: 100, max: 40_000 }).map((ms) => new AdvanceCommand(ms)),
  fc.constant(new FlushCommand()),
  fc.integer({ min: 1, max: 3 }).map((count) => new CommitCommand(count)),
  fc.integer({ min: 1, max: 3 }).map((count) => new CommitCommand(count)),
  fc.constant(new ServerCrashCommand()),
  fc.tuple(fc.constantFrom('m1', 'm2'), fc.integer({ min: 1, max: 3_000 })).map(([meansId, amountMinor]) => new SaleCommand(meansId, amountMinor)),
  fc.tuple(fc.constantFrom('m1', 'm2'), fc.integer({ min: 1, max: 3_000 })).map(([meansId, amountMinor]) => new SaleCommand(meansId, amountMinor)),
  fc.nat().map((pick) => new DuplicateLateCommand(pick)),
  fc.tuple(fc.constantFrom('m1', 'm2'), fc.integer({ min: 1, max: 4_000 })).map(([meansId, amountMinor]) => new SpendElsewhereCommand(meansId, amountMinor)),
  fc.constant(new CrashCommand()),
  // A crashed terminal takes no orders: bring it back soon, so that runs keep paying.
  fc.constant(new RestoreCommand()),
  fc.constant(new RestoreCommand()),
  fc.constant(new RestoreCommand()),
];

const setupArb = fc.record({
  mode: fc.constantFrom('grouped' as const, 'aggregate' as const),
  maxBatchSize: fc.integer({ min: 1, max: 4 }),
  backlogCount: fc.integer({ min: 1, max: 6 }),
  perPaymentCapMinor: fc.integer({ min: 500, max: 6_000 }),
  maxPendingCount: fc.integer({ min: 1, max: 8 }),
  sl: fc.integer({ min: 0, max: 12_000 }),
  ceilingMinor: fc.integer({ min: 1_000, max: 15_000 }),
  periodMs: fc.integer({ min: 5_000, max: 120_000 }),
});

describe('proxy: model-based', () => {
  it('keeps its rules at every step and, once drained, has every approved payment on the ledger exactly once [INV-1…5, INV-7]', () => {
    runProperty(
      fc.property(setupArb, fc.commands(commandArbs, commandsConstraints(60)), (setup, commands) => {
        const policy = policyWith({
          discrimination: { offline: { perPaymentCapMinor: setup.perPaymentCapMinor, maxPendingCount: setup.maxPendingCount } },
          remittance: { mode: setup.mode, maxBatchSize: setup.maxBatchSize, triggers: { backlogCount: setup.backlogCount } },
        });
        const m1 = walletMeans('m1', setup.sl);
        const m2 = createMeans({
          meansId: 'm2', kind: 'postpaid', dedicated: true, localBalanceMinor: 8_000,
          ceiling: { ceilingMinor: setup.ceilingMinor, originMs: 0, periodMs: setup.periodMs, periodIndex: 0, periodSpentMinor: 0 },
        });
        const world = new ModelWorld({
          terminals: [{ id: T, means: [m1, m2] }],
          pos: [{ id: POS, merchantId: 'market' }],
          scheme: 'sim',
          policy,
        });
        const model: Model = {
          inCoverage: true,
          up: true,
          nextOrder: 1,
          orders: [],
          policy,
          seen: {
            poolSize: () => world.net.pool.length,
            hasDeliveredBefore: () => world.net.deliveredEarlier(0) !== undefined,
            availableAtServerMinor: (meansId) => world.ledger.balanceOf(meansId).availableMinor,
          },
        };
        fc.modelRun(() => ({ model, real: { world } }), commands);
        world.drain(T, model.persisted);
        checkAfterDrain(world.drainFacts([T], PAYEES));
      }),
      { numRuns: 100 },
    );
  });
});
