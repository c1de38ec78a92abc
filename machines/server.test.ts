// Goal: the payment server (SD) told as small stories: it answers each request with a result it signed, after the
// ledger committed it; a forged, altered or replayed request is refused and changes nothing [INV-6]; a request
// delivered twice is answered twice alike and moves money once [INV-4]; a reversal undoes a remote payment whose
// answer the proxy never got.
// Method: a World with one terminal whose proxy stays quiet, and requests put on the bus by hand, signed with the
// proxy's key or forged.

import { describe, expect, it } from 'vitest';
import { keyOf, walletMeans, World } from './testing/world.ts';
import { signProof, signRequest, verifyResult } from './domain/requests.ts';
import { signClaim, type PaymentClaim } from './domain/signature.ts';
import { serverAddress, shardOf } from './link.ts';
import type { AuthRequest, DebitRequest, ReleaseRequest, RemitRequest, ServerRequest, ServerResult } from './messages.ts';

function quietWorld(shards = 1): World {
  return new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000), walletMeans('m2', 10_000)] }], shards });
}

function claim(overrides: Partial<PaymentClaim> = {}): PaymentClaim {
  return { txId: 't1:x1', amountMinor: 2_500, payee: 'merchant:shop', timeMs: 0, counter: 101, proxyId: 't1', meansId: 'm1', ...overrides };
}

function debit(world: World, c: PaymentClaim, reqId = `t1:dq${c.counter}`): DebitRequest {
  return signRequest<DebitRequest>(world.proxyKeys.get('t1')!, { kind: 'debit', reqId, from: 't1', claim: c });
}

/** Puts a request on the bus as if t1 had sent it, delivers it, and returns SD's answer. */
function ask(world: World, request: ServerRequest): ServerResult {
  const before = world.handled().length;
  world.bus.inject({ from: 't1', to: serverAddress(0), message: request });
  world.settle();
  const handled = world.handled().slice(before).find((h) => h.request.reqId === request.reqId);
  if (!handled) throw new Error(`SD did not answer ${request.reqId}`);
  return handled.result;
}

describe('server: signed answers', () => {
  it('answers a debit with a result it signed, addressed to the sender, after posting it', () => {
    const world = quietWorld();
    const result = ask(world, debit(world, claim()));
    expect(result).toMatchObject({ ok: true, code: 'ok', to: 't1', requestKind: 'debit', txId: 't1:x1' });
    expect(verifyResult(world.scheme, world.serverKey.publicKey, result)).toBe(true);
    expect(world.ledger.postingOf('t1:x1')).toMatchObject({ amountMinor: 2_500, via: 'debit' });
    // The result went back over the bus to the proxy.
    expect(world.bus.delivered.some((m) => m.to === 't1' && m.message === result)).toBe(true);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });

  it('serves each means on its own shard', () => {
    const world = quietWorld(4);
    world.bus.delivered.length = 0;
    world.setCoverage('t1', false);
    world.setCoverage('t1', true);
    const syncs = world.bus.delivered.filter((m) => m.message.kind === 'sync');
    expect(syncs.map((m) => [m.to, (m.message as { meansId: string }).meansId]).sort()).toEqual(
      ['m1', 'm2'].map((meansId) => [serverAddress(shardOf(meansId, 4)), meansId]).sort(),
    );
  });

  it('reports a message that is not a request', () => {
    const world = quietWorld();
    const result = ask(world, debit(world, claim()));
    world.bus.inject({ from: 't1', to: serverAddress(0), message: result });
    world.settle();
    expect(world.serverEvents).toContainEqual({ type: 'server.rejected', reason: 'unexpectedKind:result' });
  });
});

describe('server: forged and replayed requests [INV-6]', () => {
  it('refuses a request signed with another key, and the ledger is unchanged', () => {
    const world = quietWorld();
    const before = world.accountBalances();
    const forged = signRequest<DebitRequest>(keyOf('mallory', world.scheme), { kind: 'debit', reqId: 't1:evil', from: 't1', claim: claim() });
    expect(ask(world, forged)).toMatchObject({ ok: false, code: 'badSignature' });
    expect(ask(world, { ...debit(world, claim()), reqId: 't1:evil2', sig: 'garbage' })).toMatchObject({ ok: false, code: 'badSignature' });
    expect(world.accountBalances()).toEqual(before);
    expect(world.ledger.postings()).toEqual([]);
  });

  it('refuses a genuine request altered on the way', () => {
    const world = quietWorld();
    const genuine = debit(world, claim());
    expect(ask(world, { ...genuine, claim: { ...genuine.claim, amountMinor: 9_000 } })).toMatchObject({ ok: false, code: 'badSignature' });
    expect(ask(world, { ...genuine, claim: { ...genuine.claim, payee: 'merchant:mallory' } })).toMatchObject({ ok: false, code: 'badSignature' });
    expect(world.ledger.postings()).toEqual([]);
    // The refusals were not stored against the request id: the genuine request still goes through.
    expect(ask(world, genuine)).toMatchObject({ ok: true });
  });

  it('refuses a request from a sender it does not know', () => {
    const world = quietWorld();
    const stranger = signRequest<DebitRequest>(keyOf('stranger', world.scheme), { kind: 'debit', reqId: 's:1', from: 'stranger', claim: claim({ proxyId: 'stranger' }) });
    expect(ask(world, stranger)).toMatchObject({ ok: false, code: 'unknownSender' });
    expect(world.ledger.postings()).toEqual([]);
  });

  it('refuses alone the transaction of a remittance whose signature is forged, and posts the rest', () => {
    const world = quietWorld();
    const key = world.proxyKeys.get('t1')!;
    const good = claim({ txId: 't1:x1', amountMinor: 300, counter: 101 });
    const bad = claim({ txId: 't1:x2', amountMinor: 400, counter: 102 });
    const remit = signRequest<RemitRequest>(key, {
      kind: 'remit',
      mode: 'grouped',
      reqId: 't1:rq1',
      from: 't1',
      transactions: [
        signProof(key, good, 'localOffline'),
        signProof(keyOf('mallory', world.scheme), bad, 'localOffline'),
      ],
    });
    expect(ask(world, remit)).toMatchObject({ ok: true, posted: ['t1:x1'], refused: ['t1:x2'] });
    expect(world.ledger.postingOf('t1:x2')).toBeUndefined();
    expect(world.ledger.postingOf('t1:x1')?.amountMinor).toBe(300);
  });

  it('refuses a new transaction that reuses a signature counter', () => {
    const world = quietWorld();
    expect(ask(world, debit(world, claim({ txId: 't1:x1', counter: 101 }), 't1:q1'))).toMatchObject({ ok: true });
    expect(ask(world, debit(world, claim({ txId: 't1:x2', counter: 101 }), 't1:q2'))).toMatchObject({ ok: false, code: 'replayedCounter' });
    expect(world.ledger.postings().map((p) => p.txId)).toEqual(['t1:x1']);
  });

  it('answers a request delivered twice with the same result and moves the money once', () => {
    const world = quietWorld();
    world.bus.filter = (m) => (m.message.kind === 'debit' ? 'duplicate' : 'deliver');
    const request = debit(world, claim());
    world.bus.inject({ from: 't1', to: serverAddress(0), message: request });
    world.settle();
    const answers = world.handled('debit');
    expect(answers).toHaveLength(2);
    expect(answers[1]!.result).toEqual(answers[0]!.result);
    expect(world.meansBalanceMinor('m1')).toBe(7_500);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(2_500);
  });

  it('refuses a request id reused with another payload', () => {
    const world = quietWorld();
    expect(ask(world, debit(world, claim({ amountMinor: 100 }), 't1:q1'))).toMatchObject({ ok: true });
    expect(ask(world, debit(world, claim({ txId: 't1:x9', amountMinor: 900, counter: 109 }), 't1:q1'))).toMatchObject({ ok: false, code: 'idConflict' });
    expect(world.ledger.postings().map((p) => p.txId)).toEqual(['t1:x1']);
  });
});

describe('server: a shared means overspent offline', () => {
  it('credits every payee in full and books the shortfall to the loss account [INV-5]', () => {
    const shared = () => [walletMeans('m1', 1_000, { dedicated: false })];
    const world = new World({ terminals: [{ id: 't1', means: shared(), inCoverage: false }, { id: 't2', means: shared(), inCoverage: false }] });
    world.pay('t1', { orderId: 'a1', type: 'telepayment', meansId: 'm1', amountMinor: 800, payee: 'merchant:a' });
    world.pay('t2', { orderId: 'b1', type: 'telepayment', meansId: 'm1', amountMinor: 800, payee: 'merchant:b' });
    world.setCoverage('t1', true);
    world.setCoverage('t2', true);
    world.advance(1_000);
    expect(world.payeeBalanceMinor('merchant:a')).toBe(800);
    expect(world.payeeBalanceMinor('merchant:b')).toBe(800);
    expect(world.meansBalanceMinor('m1')).toBe(0);
    expect(world.ledger.accountOf('loss')?.balanceMinor).toBe(-600);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
    // The proxy that remitted last learned that nothing is left; the other learns it at its next connection.
    expect(world.proxyState('t2').means.m1!.localBalanceMinor).toBe(0);
    expect(world.proxyState('t1').means.m1!.localBalanceMinor).toBe(200);
    world.setCoverage('t1', false);
    world.setCoverage('t1', true);
    expect(world.proxyState('t1').means.m1!.localBalanceMinor).toBe(0);
  });
});

describe('server: reversals of remote payments whose answer was lost', () => {
  const release = (world: World, txId: string, reqId: string) =>
    signRequest<ReleaseRequest>(world.proxyKeys.get('t1')!, { kind: 'release', reqId, from: 't1', txId });

  it('releases an authorisation hold', () => {
    const world = quietWorld();
    const auth = signRequest<AuthRequest>(world.proxyKeys.get('t1')!, { kind: 'auth', reqId: 't1:a1', from: 't1', claim: claim() });
    expect(ask(world, auth)).toMatchObject({ ok: true });
    expect(world.ledger.balanceOf('m1').availableMinor).toBe(7_500);
    expect(ask(world, release(world, 't1:x1', 't1:v1'))).toMatchObject({ ok: true });
    expect(world.ledger.balanceOf('m1').availableMinor).toBe(10_000);
    expect(world.ledger.holdOf('t1:x1')?.state).toBe('released');
  });

  it('reverses a debit, giving the money back to the means', () => {
    const world = quietWorld();
    expect(ask(world, debit(world, claim()))).toMatchObject({ ok: true });
    expect(ask(world, release(world, 't1:x1', 't1:v1'))).toMatchObject({ ok: true });
    expect(world.meansBalanceMinor('m1')).toBe(10_000);
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(0);
    expect(world.ledger.sumOfBalancesMinor()).toBe(0);
  });

  it('voids a transaction it never saw, so that a late copy of it cannot pay', () => {
    const world = quietWorld();
    expect(ask(world, release(world, 't1:x1', 't1:v1'))).toMatchObject({ ok: true });
    expect(ask(world, debit(world, claim()))).toMatchObject({ ok: false });
    expect(world.ledger.postings()).toEqual([]);
    expect(world.meansBalanceMinor('m1')).toBe(10_000);
  });

  it('refuses a release of another proxy’s transaction', () => {
    const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 10_000)] }, { id: 't2', means: [walletMeans('m9', 10_000)] }] });
    expect(ask(world, debit(world, claim()))).toMatchObject({ ok: true });
    const foreign = signRequest<ReleaseRequest>(world.proxyKeys.get('t2')!, { kind: 'release', reqId: 't2:v1', from: 't2', txId: 't1:x1' });
    world.bus.inject({ from: 't2', to: serverAddress(0), message: foreign });
    world.settle();
    expect(world.handled('release').at(-1)?.result).toMatchObject({ ok: false });
    expect(world.ledger.postingOf('t1:x1')).toMatchObject({ amountMinor: 2_500 });
    expect(world.payeeBalanceMinor('merchant:shop')).toBe(2_500);
  });
});
