import { describe, it, expect } from 'vitest';
import { handleRequest, type ServerContext } from './serverRules.ts';
import { Ledger, LOSS_ACCOUNT, payeeAccount } from './ledger.ts';
import { keyFromSeed, signClaim, type PaymentClaim, type SignatureScheme, type SigningKey } from './signature.ts';
import { signProof, signRequest, type Unsigned, UNSTORED_REFUSAL_CODES, verifyResult } from './requests.ts';
import type { AggregateEntry, DebitRequest, Proof, ServerRequest, ServerResult } from '../messages.ts';
import { ConservingStore } from '../testing/conservingStore.ts';

const seed = (n: number) => new Uint8Array(32).fill(n);

function setup(scheme: SignatureScheme = 'ed25519', openingBalanceMinor = 1000) {
  const keys: Record<string, SigningKey> = {
    p1: keyFromSeed(scheme, seed(1)),
    p2: keyFromSeed(scheme, seed(2)),
    pos1: keyFromSeed(scheme, seed(3)),
  };
  const serverKey = keyFromSeed(scheme, seed(9));
  const ctx: ServerContext = { scheme, serverKey, publicKeyOf: (id) => keys[id]?.publicKey, nowMs: 1_000 };
  const store = new ConservingStore();
  const ledger = new Ledger(store);
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor, creditLimitMinor: 0 });
  const handle = (req: ServerRequest): ServerResult => {
    const result = handleRequest(ledger, req, ctx);
    // Every answer, refusals included, is signed by the server.
    expect(verifyResult(scheme, serverKey.publicKey, result)).toBe(true);
    return result;
  };
  return { keys, ctx, store, ledger, handle, scheme };
}

type Setup = ReturnType<typeof setup>;

function claim(txId: string, amountMinor: number, counter: number, proxyId = 'p1', payee = 'shop'): PaymentClaim {
  return { txId, amountMinor, payee, timeMs: 500 + counter, counter, proxyId, meansId: 'm1' };
}

function proof(s: Setup, c: PaymentClaim): Proof {
  return signProof(s.keys[c.proxyId]!, c, 'localOffline');
}

function req<R extends ServerRequest>(s: Setup, from: string, unsigned: Omit<R, 'sig' | 'from'>): R {
  return signRequest<R>(s.keys[from]!, { ...unsigned, from } as Unsigned<R>);
}

const grouped = (s: Setup, reqId: string, proofs: Proof[], from = 'p1') =>
  req<ServerRequest>(s, from, { kind: 'remit', mode: 'grouped', reqId, transactions: proofs } as never);
/** An entry without counters gets each txId's trailing number (t3 → 3), or its position when it has none. */
type EntryInput = Omit<AggregateEntry, 'counters'> & { counters?: number[] };
const countersOf = (txIds: readonly string[]) => txIds.map((txId, i) => Number(/(\d+)$/.exec(txId)?.[1] ?? i + 1));
const aggregate = (s: Setup, reqId: string, aggregates: EntryInput[]) =>
  req<ServerRequest>(s, 'p1', { kind: 'remit', mode: 'aggregate', reqId, aggregates: aggregates.map((a) => ({ ...a, counters: a.counters ?? countersOf(a.txIds) })) } as never);
const settle = (s: Setup, reqId: string, proofs: Proof[]) => req<ServerRequest>(s, 'pos1', { kind: 'settle', reqId, proofs } as never);
const debit = (s: Setup, reqId: string, c: PaymentClaim, from = 'p1') => req<DebitRequest>(s, from, { kind: 'debit', reqId, claim: c });
const auth = (s: Setup, reqId: string, c: PaymentClaim) => req<ServerRequest>(s, 'p1', { kind: 'auth', reqId, claim: c } as never);
const sync = (s: Setup, reqId: string) => req<ServerRequest>(s, 'p1', { kind: 'sync', reqId, meansId: 'm1' } as never);

/** Everything a refused request must leave as it was: accounts, postings, aggregates. */
function snapshot(s: Setup) {
  return structuredClone({ accounts: s.ledger.accounts(), postings: s.ledger.postings(), aggregates: s.ledger.aggregates() });
}

const credited = (s: Setup, payee = 'shop') => s.ledger.accountOf(payeeAccount(payee))?.balanceMinor ?? 0;

describe('handleRequest: idempotency', () => {
  it('answers the same request twice with the same stored result, changing nothing the second time', () => {
    const s = setup();
    const r = debit(s, 'r1', claim('d1', 300, 1));
    const first = s.handle(r);
    expect(first).toMatchObject({ ok: true, code: 'ok', txId: 'd1', reqId: 'r1', to: 'p1', balances: [{ meansId: 'm1', availableMinor: 700 }] });
    const before = snapshot(s);
    expect(s.handle(r)).toEqual(first);
    expect(snapshot(s)).toEqual(before);
    expect(credited(s)).toBe(300);
  });

  it('refuses the same reqId with another payload as idConflict, changing nothing', () => {
    const s = setup();
    s.handle(debit(s, 'r1', claim('d1', 300, 1)));
    const before = snapshot(s);
    const other = s.handle(debit(s, 'r1', claim('d2', 50, 2)));
    expect(other).toMatchObject({ ok: false, code: 'idConflict' });
    expect(snapshot(s)).toEqual(before);
  });

  it('gives a duplicate of a refused request the same refusal, even after funds came back', () => {
    const s = setup('ed25519', 1000);
    s.handle(auth(s, 'a1', claim('h1', 900, 1)));
    const refusal = s.handle(debit(s, 'r2', claim('d1', 500, 2)));
    expect(refusal).toMatchObject({ ok: false, code: 'insufficientFunds', balances: [{ meansId: 'm1', availableMinor: 100 }] });
    s.handle(req(s, 'p1', { kind: 'release', reqId: 'rel1', txId: 'h1' } as never));
    expect(s.handle(debit(s, 'r2', claim('d1', 500, 2)))).toEqual(refusal);
    expect(s.ledger.postingOf('d1')).toBeUndefined();
    // A new request for the same payment is judged afresh.
    expect(s.handle(debit(s, 'r3', claim('d1', 500, 2)))).toMatchObject({ ok: true });
  });
});

describe('handleRequest: signatures [INV-6]', () => {
  it('refuses a tampered amount under a valid signature, changing nothing and not taking the reqId', () => {
    const s = setup();
    const genuine = debit(s, 'r1', claim('d1', 100, 1));
    const tampered = { ...genuine, claim: { ...genuine.claim, amountMinor: 1 } } as ServerRequest;
    const before = snapshot(s);
    expect(s.handle(tampered)).toMatchObject({ ok: false, code: 'badSignature' });
    expect(snapshot(s)).toEqual(before);
    expect(s.ledger.balanceOf('m1').version).toBe(1);
    // The rightful request with that reqId still goes through.
    expect(s.handle(genuine)).toMatchObject({ ok: true, code: 'ok' });
    expect(credited(s)).toBe(100);
  });

  it('refuses a request forged with another key, and one from an unknown sender', () => {
    const s = setup();
    const forged = signRequest(keyFromSeed('ed25519', seed(66)), { kind: 'debit', reqId: 'r1', from: 'p1', claim: claim('d1', 100, 1) } as never) as ServerRequest;
    const before = snapshot(s);
    expect(s.handle(forged)).toMatchObject({ ok: false, code: 'badSignature' });
    const stranger = signRequest(keyFromSeed('ed25519', seed(66)), { kind: 'debit', reqId: 'r1', from: 'mallory', claim: claim('d1', 100, 1, 'mallory') } as never) as ServerRequest;
    expect(s.handle(stranger)).toMatchObject({ ok: false, code: 'unknownSender' });
    expect(snapshot(s)).toEqual(before);
  });

  it('refuses a claim made for another proxy', () => {
    const s = setup();
    expect(s.handle(debit(s, 'r1', claim('d1', 100, 1, 'p2')))).toMatchObject({ ok: false, code: 'senderMismatch' });
    expect(s.handle(grouped(s, 'r2', [proof(s, claim('t1', 100, 1, 'p2'))]))).toMatchObject({ ok: false, code: 'senderMismatch' });
    expect(s.ledger.postings()).toEqual([]);
  });

  it('refuses alone a transaction whose own signature fails inside a grouped remittance the proxy signed, and posts the rest', () => {
    const s = setup();
    const good = proof(s, claim('t1', 100, 1));
    const altered = { ...proof(s, claim('t2', 100, 2)), amountMinor: 5 };
    expect(s.handle(grouped(s, 'r1', [good, altered]))).toMatchObject({ ok: true, posted: ['t1'], refused: ['t2'] });
    expect(s.ledger.postingOf('t2')).toBeUndefined();
    expect(credited(s)).toBe(100);
  });

  it('refuses a proof altered in flight at the request level, storing nothing, so the honest copy still posts [INV-6]', () => {
    const s = setup();
    const honest = grouped(s, 'r1', [proof(s, claim('t1', 100, 1)), proof(s, claim('t2', 200, 2))]);
    const fields = ['amountMinor', 'payee', 'timeMs', 'meansId', 'orderId', 'path'] as const;
    const before = snapshot(s);
    for (const field of fields) {
      const altered = structuredClone(honest) as Extract<ServerRequest, { mode: 'grouped' }>;
      // An attacker edits the wire form, not a typed object: alter the field by name, whatever its type.
      const tx = altered.transactions[1]!;
      const value: unknown = Reflect.get(tx, field);
      Reflect.set(tx, field, field === 'path' ? 'remote' : typeof value === 'number' ? value + 1 : `${String(value ?? 'x')}-altered`);
      expect(s.handle(altered), field).toMatchObject({ ok: false, code: 'badSignature' });
      expect(s.store.getResult('p1', 'r1'), field).toBeUndefined();
    }
    expect(snapshot(s)).toEqual(before);
    expect(s.handle(honest)).toMatchObject({ ok: true, posted: ['t1', 't2'] });
  });

  it('stores exactly the refusals that are not UNSTORED_REFUSAL_CODES', () => {
    const s = setup();
    const honest = debit(s, 'r1', claim('d1', 100, 1));
    expect(s.handle(debit(s, 'r0', claim('d0', 10, 5)))).toMatchObject({ ok: true });
    const cases: Array<[ServerRequest, string]> = [
      [{ ...honest, claim: { ...honest.claim, amountMinor: -1 } } as ServerRequest, 'malformed'],
      [{ ...honest, sig: 'forged' }, 'badSignature'],
      [req<ServerRequest>({ ...s, keys: { ...s.keys, ghost: s.keys.p1! } }, 'ghost', { kind: 'sync', reqId: 'r9', meansId: 'm1' } as never), 'unknownSender'],
      [debit(s, 'r2', claim('d2', 100_000, 2)), 'insufficientFunds'],
      [grouped(s, 'r3', [proof(s, claim('t3', 10, 5))]), 'replayedCounter'],
      [debit(s, 'r2', claim('d3', 100, 3)), 'idConflict'],
    ];
    for (const [request, code] of cases) {
      const result = s.handle(request);
      expect(result, code).toMatchObject({ ok: false, code });
      expect(s.store.getResult(request.from, request.reqId) !== undefined && code !== 'idConflict', code).toBe(!UNSTORED_REFUSAL_CODES.has(code));
    }
    expect(s.handle(honest)).toMatchObject({ ok: true });
  });

  it('refuses a replayed counter on another transaction, changing nothing', () => {
    const s = setup();
    s.handle(debit(s, 'r1', claim('d1', 100, 7)));
    const before = snapshot(s);
    expect(s.handle(debit(s, 'r2', claim('d2', 100, 7)))).toMatchObject({ ok: false, code: 'replayedCounter' });
    expect(s.handle(grouped(s, 'r3', [proof(s, claim('t3', 10, 8)), proof(s, claim('t4', 10, 7))]))).toMatchObject({ ok: false, code: 'replayedCounter' });
    expect(snapshot(s)).toEqual(before);
    // The same counter for the same transaction is no replay.
    expect(s.handle(debit(s, 'r4', claim('d1', 100, 7)))).toMatchObject({ ok: true });
    expect(credited(s)).toBe(100);
  });

  it('checks settled proofs against the key of the proxy that signed them', () => {
    const s = setup();
    const signedByP2 = proof(s, claim('t1', 100, 1, 'p2'));
    expect(s.handle(settle(s, 's1', [signedByP2]))).toMatchObject({ ok: true, posted: ['t1'] });
    const forgedForP1 = { ...claim('t2', 100, 2, 'p1'), sig: signClaim(s.keys.p2!, claim('t2', 100, 2, 'p1')), path: 'localOffline' as const };
    expect(s.handle(settle(s, 's2', [forgedForP1]))).toMatchObject({ ok: true, posted: [], refused: ['t2'] });
    const unknownProxy = { ...claim('t3', 100, 3, 'ghost'), sig: 'x', path: 'localOffline' as const };
    expect(s.handle(settle(s, 's3', [unknownProxy]))).toMatchObject({ ok: true, posted: [], refused: ['t3'] });
    expect(credited(s)).toBe(100);
  });

  it('settles the good proofs of a batch and refuses only the one whose own signature fails, so it cannot block them', () => {
    const s = setup();
    const good1 = proof(s, claim('t1', 100, 1, 'p2'));
    const bad = { ...proof(s, claim('t2', 100, 2, 'p2')), amountMinor: 900 };
    const good2 = proof(s, claim('t3', 50, 3, 'p2'));
    const answer = s.handle(settle(s, 's1', [good1, bad, good2]));
    expect(answer).toMatchObject({ ok: true, posted: ['t1', 't3'], refused: ['t2'] });
    expect(s.ledger.postingOf('t2')).toBeUndefined();
    expect(credited(s)).toBe(150);
    // The answer is stored: the same request again gets it back, and posts nothing more.
    expect(s.handle(settle(s, 's1', [good1, bad, good2]))).toEqual(answer);
    expect(credited(s)).toBe(150);
  });

  it('refuses a malformed request without touching anything', () => {
    const s = setup();
    const bad = { ...debit(s, 'r1', claim('d1', 100, 1)), claim: { ...claim('d1', 100, 1), amountMinor: 1.5 } } as ServerRequest;
    expect(s.handle(bad)).toMatchObject({ ok: false, code: 'malformed' });
    expect(s.handle({ kind: 'remit', mode: 'grouped', reqId: 'r2', from: 'p1', sig: '' } as never)).toMatchObject({ ok: false, code: 'malformed' });
    expect(s.handle(null as never)).toMatchObject({ ok: false, code: 'malformed', reqId: '' });
    expect(s.ledger.postings()).toEqual([]);
  });
});

describe('handleRequest: remote payments and sync', () => {
  it('holds on auth, captures, and refuses a capture by another proxy', () => {
    const s = setup();
    expect(s.handle(auth(s, 'a1', claim('h1', 400, 1)))).toMatchObject({ ok: true, txId: 'h1', balances: [{ availableMinor: 600 }] });
    expect(s.handle(req(s, 'p2', { kind: 'capture', reqId: 'c0', txId: 'h1', amountMinor: 400 } as never))).toMatchObject({ ok: false, code: 'senderMismatch' });
    const captured = s.handle(req(s, 'p1', { kind: 'capture', reqId: 'c1', txId: 'h1', amountMinor: 300 } as never));
    expect(captured).toMatchObject({ ok: true, balances: [{ availableMinor: 700 }] });
    // A second capture under a new reqId is not an error and changes nothing.
    const before = snapshot(s);
    expect(s.handle(req(s, 'p1', { kind: 'capture', reqId: 'c2', txId: 'h1', amountMinor: 300 } as never))).toMatchObject({ ok: true });
    expect(snapshot(s)).toEqual(before);
    expect(credited(s)).toBe(300);
  });

  it('refuses an auth beyond available funds', () => {
    const s = setup('ed25519', 100);
    expect(s.handle(auth(s, 'a1', claim('h1', 101, 1)))).toMatchObject({ ok: false, code: 'insufficientFunds' });
    expect(s.ledger.holdOf('h1')).toBeUndefined();
  });

  it('answers sync with the figure, whose version increases as the means changes', () => {
    const s = setup();
    const first = s.handle(sync(s, 's1')).balances?.[0];
    expect(first).toEqual({ meansId: 'm1', availableMinor: 1000, version: 1 });
    s.ledger.spendElsewhere({ transferId: 'e1', meansId: 'm1', payee: 'other', amountMinor: 250 });
    const second = s.handle(sync(s, 's2')).balances?.[0];
    expect(second?.availableMinor).toBe(750);
    expect(second!.version).toBeGreaterThan(first!.version);
    expect(s.handle(req(s, 'p1', { kind: 'sync', reqId: 's3', meansId: 'nope' } as never))).toMatchObject({ ok: false, code: 'unknownMeans' });
  });
});

describe('handleRequest: remittances and settlement [INV-4]', () => {
  it('posts the same remittance once, whether repeated under its reqId or a new one', () => {
    const s = setup();
    const proofs = [proof(s, claim('t1', 100, 1)), proof(s, claim('t2', 50, 2))];
    const first = s.handle(grouped(s, 'r1', proofs));
    expect(first).toMatchObject({ ok: true, posted: ['t1', 't2'], alreadyPosted: [], balances: [{ meansId: 'm1', availableMinor: 850 }] });
    expect(s.handle(grouped(s, 'r1', proofs))).toEqual(first);
    expect(s.handle(grouped(s, 'r2', proofs))).toMatchObject({ ok: true, posted: [], alreadyPosted: ['t1', 't2'] });
    expect(credited(s)).toBe(150);
  });

  it('posts a transaction found in two different remittances once', () => {
    const s = setup();
    s.handle(grouped(s, 'r1', [proof(s, claim('t1', 100, 1)), proof(s, claim('t2', 50, 2))]));
    const second = s.handle(grouped(s, 'r2', [proof(s, claim('t2', 50, 2)), proof(s, claim('t3', 25, 3))]));
    expect(second).toMatchObject({ posted: ['t3'], alreadyPosted: ['t2'] });
    expect(credited(s)).toBe(175);
    expect(s.ledger.postings().map((p) => p.txId).sort()).toEqual(['t1', 't2', 't3']);
  });

  it('credits the payee in full for an overdrawing local payment, the shortfall going to loss', () => {
    const s = setup('ed25519', 100);
    expect(s.handle(grouped(s, 'r1', [proof(s, claim('t1', 160, 1))]))).toMatchObject({ ok: true, balances: [{ availableMinor: 0 }] });
    expect(credited(s)).toBe(160);
    expect(s.ledger.accountOf(LOSS_ACCOUNT)?.balanceMinor).toBe(-60);
  });

  it('posts the remainder of an aggregate over transactions already posted singly, and refuses a negative one', () => {
    const s = setup();
    s.handle(grouped(s, 'r1', [proof(s, claim('t1', 100, 1))]));
    const before = snapshot(s);
    expect(s.handle(aggregate(s, 'r2', [{ meansId: 'm1', payee: 'shop', sumMinor: 90, txIds: ['t1', 't2'] }]))).toMatchObject({ ok: false, code: 'aggregateMismatch' });
    expect(snapshot(s)).toEqual(before);
    const ok = s.handle(aggregate(s, 'r3', [{ meansId: 'm1', payee: 'shop', sumMinor: 180, txIds: ['t1', 't2', 't3'] }]));
    expect(ok).toMatchObject({ ok: true, posted: ['t2', 't3'], alreadyPosted: ['t1'], balances: [{ availableMinor: 820 }] });
    expect(credited(s)).toBe(180);
    expect(s.ledger.aggregates()).toEqual([{ id: 'p1/r3#0', meansId: 'm1', payee: 'shop', sumMinor: 180, txIds: ['t1', 't2', 't3'], postedMinor: 80 }]);
    // A grouped remittance of an aggregated transaction finds it posted.
    expect(s.handle(grouped(s, 'r4', [proof(s, claim('t2', 30, 2))]))).toMatchObject({ posted: [], alreadyPosted: ['t2'] });
    expect(credited(s)).toBe(180);
  });

  it('refuses an aggregate remittance that names a transaction twice', () => {
    const s = setup();
    const entries = [
      { meansId: 'm1', payee: 'shop', sumMinor: 10, txIds: ['t1'] },
      { meansId: 'm1', payee: 'cafe', sumMinor: 10, txIds: ['t1'] },
    ];
    expect(s.handle(aggregate(s, 'r1', entries))).toMatchObject({ ok: false, code: 'badRequest' });
    expect(s.ledger.postings()).toEqual([]);
  });

  it('posts a proof that appears twice in one settlement once, with the rest of the batch', () => {
    const s = setup();
    const p = proof(s, claim('t1', 100, 1));
    const q = proof(s, claim('t2', 50, 2));
    expect(s.handle(settle(s, 's1', [p, q, p]))).toMatchObject({ ok: true, posted: ['t1', 't2'], alreadyPosted: ['t1'] });
    expect(credited(s)).toBe(150);
  });

  it('refuses an aggregate whose counters were used by other transactions, or that overlaps an earlier one [INV-6 replay]', () => {
    const s = setup();
    expect(s.handle(aggregate(s, 'r1', [{ meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['t1', 't2'], counters: [1, 2] }]))).toMatchObject({ ok: true });
    const before = snapshot(s);
    // The same counters under new txIds: a replay of the money under fresh ids.
    expect(s.handle(aggregate(s, 'r2', [{ meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['t8', 't9'], counters: [1, 2] }]))).toMatchObject({ ok: false, code: 'replayedCounter' });
    // An aggregate overlapping the first by one counter.
    expect(s.handle(aggregate(s, 'r3', [{ meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['t3', 't4'], counters: [2, 3] }]))).toMatchObject({ ok: false, code: 'replayedCounter' });
    // A grouped remittance reusing an aggregated counter.
    expect(s.handle(grouped(s, 'r4', [proof(s, claim('t5', 10, 1))]))).toMatchObject({ ok: false, code: 'replayedCounter' });
    expect(snapshot(s)).toEqual(before);
    expect(s.handle(aggregate(s, 'r5', [{ meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['t3', 't4'], counters: [3, 4] }]))).toMatchObject({ ok: true });
  });

  it('refuses an aggregate whose counters are missing, unordered or not one per txId, as malformed', () => {
    const s = setup();
    for (const counters of [[], [2, 1], [1], [1, 1]]) {
      const signed = aggregate(s, 'r1', [{ meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['t1', 't2'], counters }]);
      expect(s.handle(signed), JSON.stringify(counters)).toMatchObject({ ok: false, code: 'malformed' });
    }
    expect(s.ledger.postings()).toEqual([]);
  });

  it('posts a payment once when a POS settles it and the terminal remits it too, in either order', () => {
    const s = setup();
    const p = proof(s, claim('t1', 100, 1));
    expect(s.handle(settle(s, 's1', [p]))).toMatchObject({ ok: true, to: 'pos1', posted: ['t1'] });
    expect(s.handle(grouped(s, 'r1', [p]))).toMatchObject({ ok: true, posted: [], alreadyPosted: ['t1'] });
    const q = proof(s, claim('t2', 40, 2));
    s.handle(grouped(s, 'r2', [q]));
    expect(s.handle(settle(s, 's2', [q]))).toMatchObject({ posted: [], alreadyPosted: ['t2'] });
    expect(credited(s)).toBe(140);
    expect(s.ledger.postingOf('t1')?.via).toBe('settle');
  });
});

describe('handleRequest with the sim signature scheme', () => {
  it('runs the same rules: a remittance posts, an altered one is refused', () => {
    const s = setup('sim');
    const p = proof(s, claim('t1', 100, 1));
    expect(s.handle(grouped(s, 'r1', [p]))).toMatchObject({ ok: true, posted: ['t1'] });
    expect(s.handle(grouped(s, 'r2', [{ ...proof(s, claim('t2', 100, 2)), payee: 'thief' }]))).toMatchObject({ ok: true, posted: [], refused: ['t2'] });
    expect(credited(s)).toBe(100);
    expect(credited(s, 'thief')).toBe(0);
  });
});

describe('handleRequest: release reverses a remote payment, in whichever order it arrives', () => {
  const release = (s: Setup, reqId: string, txId: string, from = 'p1') => req<ServerRequest>(s, from, { kind: 'release', reqId, txId } as never);

  it('releases a hold with code released, and a second release answers the same and changes nothing', () => {
    const s = setup();
    s.handle(auth(s, 'a1', claim('h1', 400, 1)));
    expect(s.handle(release(s, 'v1', 'h1'))).toMatchObject({ ok: true, code: 'released', txId: 'h1', balances: [{ meansId: 'm1', availableMinor: 1000 }] });
    const before = snapshot(s);
    expect(s.handle(release(s, 'v2', 'h1'))).toMatchObject({ ok: true, code: 'released', txId: 'h1' });
    expect(snapshot(s)).toEqual(before);
  });

  it('reverses a debit with code reversed: the payee gives the amount back to the means', () => {
    const s = setup();
    s.handle(debit(s, 'd', claim('d1', 300, 1)));
    expect(credited(s)).toBe(300);
    expect(s.handle(release(s, 'v1', 'd1'))).toMatchObject({ ok: true, code: 'reversed', txId: 'd1', balances: [{ meansId: 'm1', availableMinor: 1000 }] });
    expect(credited(s)).toBe(0);
    expect(s.ledger.postingOf('d1')?.reversedBy).toBe('p1/v1');
    const before = snapshot(s);
    expect(s.handle(release(s, 'v2', 'd1'))).toMatchObject({ ok: true, code: 'reversed' });
    // The debit delivered again under its own reqId gets its stored answer; under a new one it is refused.
    expect(s.handle(debit(s, 'd', claim('d1', 300, 1)))).toMatchObject({ ok: true, code: 'ok' });
    expect(s.handle(debit(s, 'd-again', claim('d1', 300, 1)))).toMatchObject({ ok: false, code: 'voided' });
    expect(snapshot(s)).toEqual(before);
  });

  it('voids a txId it never saw; the debit or auth arriving later is refused with voided and changes nothing', () => {
    const s = setup();
    const voided = s.handle(release(s, 'v1', 'd1'));
    expect(voided).toMatchObject({ ok: true, code: 'voided', txId: 'd1' });
    expect(voided.balances).toBeUndefined();
    const before = snapshot(s);
    expect(s.handle(debit(s, 'd', claim('d1', 300, 1)))).toMatchObject({ ok: false, code: 'voided', balances: [{ availableMinor: 1000 }] });
    expect(s.handle(auth(s, 'a', claim('d1', 300, 1)))).toMatchObject({ ok: false, code: 'voided' });
    expect(s.handle(release(s, 'v2', 'd1'))).toMatchObject({ ok: true, code: 'voided' });
    expect(snapshot(s)).toEqual(before);
    expect(s.ledger.holdOf('d1')).toBeUndefined();
    // The refused payment did not take its counter: it was rolled back with the rest.
    expect(s.store.getCounterUse('p1', 1)).toBeUndefined();
  });

  it('refuses notReversible for a captured hold and for a remitted or settled transaction', () => {
    const s = setup();
    s.handle(auth(s, 'a1', claim('h1', 400, 1)));
    s.handle(req(s, 'p1', { kind: 'capture', reqId: 'c1', txId: 'h1', amountMinor: 400 } as never));
    s.handle(grouped(s, 'r1', [proof(s, claim('t1', 100, 2))]));
    s.handle(settle(s, 's1', [proof(s, claim('t2', 50, 3))]));
    const before = snapshot(s);
    for (const [i, txId] of ['h1', 't1', 't2'].entries()) {
      expect(s.handle(release(s, `v${i}`, txId)), txId).toMatchObject({ ok: false, code: 'notReversible', balances: [{ meansId: 'm1' }] });
    }
    expect(snapshot(s)).toEqual(before);
    expect(credited(s)).toBe(550);
  });

  it('refuses senderMismatch when another proxy asks to reverse a payment', () => {
    const s = setup();
    s.handle(debit(s, 'd', claim('d1', 300, 1)));
    s.handle(auth(s, 'a', claim('h1', 200, 2)));
    const before = snapshot(s);
    expect(s.handle(release(s, 'v1', 'd1', 'p2'))).toMatchObject({ ok: false, code: 'senderMismatch' });
    expect(s.handle(release(s, 'v2', 'h1', 'p2'))).toMatchObject({ ok: false, code: 'senderMismatch' });
    expect(snapshot(s)).toEqual(before);
    expect(s.ledger.holdOf('h1')?.state).toBe('held');
  });
});

describe('handleRequest: aggregate remittances sign each txId list unambiguously', () => {
  it('accepts txIds with commas, and a signature over one split does not cover another', () => {
    const s = setup();
    const joined = aggregate(s, 'r1', [{ meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['a,b'] }]) as Extract<ServerRequest, { mode: 'aggregate' }>;
    const split = { ...joined, aggregates: [{ meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['a', 'b'], counters: [1, 2] }] };
    expect(s.handle(split)).toMatchObject({ ok: false, code: 'badSignature' });
    expect(s.handle(joined)).toMatchObject({ ok: true, posted: ['a,b'] });
    expect(credited(s)).toBe(30);
  });

  it('does not let txIds move from one aggregate to the next under the same signature', () => {
    const s = setup();
    const signed = aggregate(s, 'r1', [
      { meansId: 'm1', payee: 'shop', sumMinor: 30, txIds: ['t1', 't2'] },
      { meansId: 'm1', payee: 'cafe', sumMinor: 20, txIds: ['t3'] },
    ]) as Extract<ServerRequest, { mode: 'aggregate' }>;
    const moved = { ...signed, aggregates: [{ ...signed.aggregates[0]!, txIds: ['t1'], counters: [1] }, { ...signed.aggregates[1]!, txIds: ['t2', 't3'], counters: [2, 3] }] };
    expect(s.handle(moved)).toMatchObject({ ok: false, code: 'badSignature' });
    expect(s.ledger.postings()).toEqual([]);
  });
});
