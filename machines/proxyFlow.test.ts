// Goal: the proxy's step tables keep their word: the stage of the order in hand is read from the context as the
// guards read it, a step refuses an event it does not take or a stage it does not run at, and a step's sends,
// emits and timers are enqueued in the order it ran them, with the context stored once, at the end.
// Method: the real steps of proxyOrders.ts on a real proxy context, with an `Enqueue` that records each call
// (XState's own enqueuer is only reachable through guards that never route a step wrongly).

import { describe, expect, it } from 'vitest';
import { keyOf, testPolicy, walletMeans } from './testing/world.ts';
import { initialProxyState } from './domain/proxyRules.ts';
import type { PaymentOrder } from './messages.ts';
import type { ProxyContext, ProxyEvent } from './proxyTypes.ts';
import { orderStageOf, runStep, type Enqueue, type ProxyEventType, type Step } from './proxyFlow.ts';
import { orderSteps } from './proxyOrders.ts';

function contextOf(overrides: Partial<ProxyContext> = {}): ProxyContext {
  const key = keyOf('proxy:p1', 'sim');
  const means = [walletMeans('m1', 10_000)];
  return {
    input: { proxyId: 'p1', policy: testPolicy, key, serverPublicKey: keyOf('server', 'sim').publicKey, scheme: 'sim', shardCount: 1, pin: '1234', inCoverage: false, now: () => 1_000 },
    state: initialProxyState('p1', means, testPolicy),
    linkUp: false,
    queue: [],
    refusedResults: 0,
    ...overrides,
  };
}

const order: PaymentOrder = { orderId: 'o1', type: 'internal', meansId: 'm1', amountMinor: 500, payee: 'shop', source: { kind: 'app', appId: 'app' } };

/** An Enqueue that writes down what a step asked for, in order. */
function recorder(): { enqueue: Enqueue; calls: Array<{ kind: string; value: unknown }> } {
  const calls: Array<{ kind: string; value: unknown }> = [];
  const enqueue: Enqueue = {
    assign: (value) => calls.push({ kind: 'assign', value }),
    sendTo: (_id, value) => calls.push({ kind: 'sendTo', value }),
    sendParent: (value) => calls.push({ kind: 'sendParent', value }),
    emit: (value) => calls.push({ kind: 'emit', value }),
    raise: (value) => calls.push({ kind: 'raise', value }),
    cancel: (value) => calls.push({ kind: 'cancel', value }),
  };
  return { enqueue, calls };
}

/** Runs one step on a context and returns the context it stored. */
function stepped<K extends ProxyEventType>(context: ProxyContext, row: Step<K>, event: ProxyEvent): ProxyContext {
  const { enqueue, calls } = recorder();
  runStep(row, context, event, enqueue);
  return calls.at(-1)!.value as ProxyContext;
}

describe('proxy flow: the order stage', () => {
  it('is idle with no order in hand, awaitingUser while the user is asked, awaitingRemote while SD is', () => {
    const idle = contextOf({ linkUp: true });
    expect(orderStageOf(idle)).toBe('idle');
    // A telepayment over the threshold: the user must approve it, then it goes to SD.
    const telepayment: PaymentOrder = { ...order, type: 'telepayment', amountMinor: 2_500 };
    const asking = stepped(idle, orderSteps.startOrder, { type: 'order', order: telepayment });
    expect(orderStageOf(asking)).toBe('awaitingUser');
    const waiting = stepped(asking, orderSteps.applyAnswer, { type: 'confirm.answer', orderId: 'o1', approved: true });
    expect(waiting.remote).toBeDefined();
    expect(orderStageOf(waiting)).toBe('awaitingRemote');
  });
});

describe('proxy flow: runStep', () => {
  it('refuses an event the step does not take', () => {
    const { enqueue, calls } = recorder();
    expect(() => runStep(orderSteps.startOrder, contextOf(), { type: 'orders.confirmTimeout' }, enqueue)).toThrow(/order\|near\.order.*orders\.confirmTimeout/);
    expect(calls).toEqual([]);
  });

  it('refuses a step at a stage it does not run at', () => {
    const { enqueue, calls } = recorder();
    expect(() => runStep(orderSteps.applyAnswer, contextOf(), { type: 'confirm.answer', orderId: 'o1', approved: true }, enqueue)).toThrow(/awaitingUser step .* idle/);
    expect(calls).toEqual([]);
  });

  it('enqueues what the step did in order and stores the context once, at the end', () => {
    const { enqueue, calls } = recorder();
    runStep(orderSteps.startOrder, contextOf(), { type: 'order', order }, enqueue);
    // A small internal payment: the user is informed, it is decided locally, answered, and the harness told.
    expect(calls.map((c) => (c.kind === 'assign' ? 'assign' : `${c.kind}:${(c.value as { type: string }).type}`))).toEqual([
      'emit:proxy.inform',
      'sendParent:proxy.response',
      'emit:proxy.decided',
      'assign',
    ]);
    const stored = calls.at(-1)!.value as ProxyContext;
    expect(orderStageOf(stored)).toBe('idle');
    expect(stored.state.journal.pending.map((tx) => tx.amountMinor)).toEqual([500]);
  });
});
