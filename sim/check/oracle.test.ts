// Goal: the order oracle on its own — an order expected and answered once passes; answered twice, answered for
// another order, or approved against the policy (over M0 in coverage, over the offline cap) is an ORACLE
// violation; a POS order is first seen with its answer.
// Method: real policy and orders; the book collects every verdict.

import { describe, it, expect } from 'vitest';
import { InvariantBook, RecentEvents } from './invariantBook.ts';
import { OrderOracle } from './oracle.ts';
import { proxyPolicyOf } from '../scenario/policy.ts';
import { loadScenarioText } from '../scenario/load.ts';
import type { PaymentOrder, Proof, ProxyResponse } from '../../machines/messages.ts';

const scenario = loadScenarioText('seed: 1\nduration: 1m\npopulation: { terminals: 1 }\n', 'oracle.yaml');
const policy = proxyPolicyOf(scenario.policy);

function order(orderId: string, amountMinor: number, source: PaymentOrder['source'] = { kind: 'app', appId: 'shop' }): PaymentOrder {
  return { orderId, source, type: 'telepayment', meansId: 'm1', amountMinor, payee: 'shop' };
}

function approved(o: PaymentOrder, path: Proof['path']): ProxyResponse {
  const proof: Proof = { txId: `tx-${o.orderId}`, amountMinor: o.amountMinor, payee: o.payee, timeMs: 0, counter: 1, proxyId: 'p1', meansId: o.meansId, sig: 'sig', path };
  return { orderId: o.orderId, ok: true, proof } as ProxyResponse;
}

function oracle() {
  const book = new InvariantBook(1, () => 0, new RecentEvents(), false);
  return { book, oracle: new OrderOracle(book, policy), details: () => book.violations.map((v) => v.detail) };
}

describe('OrderOracle [ORACLE]', () => {
  it('passes an expected order answered once as the policy allows, and flags a second answer', () => {
    const { book, oracle: o, details } = oracle();
    const first = order('t0:o1', 100);
    o.expect(first.orderId);
    o.check('t0', first, approved(first, 'localBelowThreshold'));
    expect(details()).toEqual([]);
    o.check('t0', first, approved(first, 'localBelowThreshold'));
    expect(details()).toEqual(['order t0:o1 answered twice, or never issued']);
    expect(book.summary().find((c) => c.id === 'ORACLE')).toMatchObject({ checks: 4, violations: 1 });
  });

  it('forgets an app order once answered, and flags an answer to an app order it never expected', () => {
    const { oracle: o, details } = oracle();
    const issued = order('t0:o1', 100);
    o.expect(issued.orderId);
    o.expect('t0:o2');
    expect(o.waitingCount).toBe(2);
    o.check('t0', issued, approved(issued, 'localBelowThreshold'));
    expect(o.waitingCount).toBe(1);
    const stranger = order('t0:o9', 100);
    o.check('t0', stranger, approved(stranger, 'localBelowThreshold'));
    expect(details()).toEqual(['order t0:o9 answered twice, or never issued']);
  });

  it('flags an approval over M0 in coverage, one over the offline cap, and an answer for another order', () => {
    const { oracle: o, details } = oracle();
    const { thresholdMinor, offline } = policy.discrimination;
    const big = order('t0:o2', thresholdMinor + 1);
    const huge = order('t0:o3', offline.perPaymentCapMinor + 1);
    const other = order('t0:o4', 10);
    for (const issued of [big, huge, other]) o.expect(issued.orderId);
    o.check('t0', big, approved(big, 'localBelowThreshold'));
    o.check('t0', huge, approved(huge, 'localOffline'));
    o.check('t0', other, { ...approved(other, 'remote'), orderId: 't0:o5' } as ProxyResponse);
    expect(details()).toEqual([
      `amount ${thresholdMinor + 1} over M0 ${thresholdMinor} approved locally in coverage`,
      `offline approval of ${offline.perPaymentCapMinor + 1} over the per-payment cap ${offline.perPaymentCapMinor}`,
      'response for t0:o5 given to t0:o4',
    ]);
  });

  it('takes a POS order first seen with its answer, and flags its second answer', () => {
    const { oracle: o, details } = oracle();
    const sale = order('pos0:s1', 100, { kind: 'pos', posId: 'pos0' });
    o.check('t0', sale, approved(sale, 'localBelowThreshold'));
    expect(details()).toEqual([]);
    o.check('t0', sale, approved(sale, 'localBelowThreshold'));
    expect(details()).toEqual(['order pos0:s1 answered twice']);
  });
});
