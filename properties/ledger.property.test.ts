// Goal: the payment server's ledger stays right whatever the network does to the messages of an honest fleet —
// duplicated, replayed, reordered — and whatever an attacker adds — altered amounts, wrong keys, unknown
// senders, tampered proofs, reused counters, malformed payloads: the balances always sum to zero [INV-3]; a
// request delivered again gets the same answer and changes nothing; a refused or forged message changes nothing
// [INV-6]; after everything honest has arrived, every local payment is on the ledger exactly once, every
// beneficiary holds exactly the sum of the distinct payments posted to it, and no transaction is in two
// accepted remittances [INV-4], [INV-5].
// Method: fast-check draws a small honest history (local payments remitted grouped or aggregated by their
// proxies and partly settled by a POS as well, remote debits and authorisations with captures and reversals),
// a set of forgeries and a delivery sequence with repeats; `handleRequest` runs on an in-memory ledger with real
// Ed25519 or 'sim' keys. The honest requests are built by the proxy's own rules (`formRemittances`).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Ledger, payeeAccount } from '../machines/domain/ledger.ts';
import { MemoryLedgerStore } from '../machines/domain/ledgerStore.ts';
import { handleRequest, type ServerContext } from '../machines/domain/serverRules.ts';
import { canonicalEncoding, signClaim, type PaymentClaim, type SignatureScheme, type SigningKey } from '../machines/domain/signature.ts';
import { signProof, signRequest, type Unsigned, UNSTORED_REFUSAL_CODES } from '../machines/domain/requests.ts';
import { emptyJournal, formRemittances, recordLocal, type LocalTx, type RemittanceMode } from '../machines/domain/remittance.ts';
import { defaultRemittancePolicy } from '../machines/domain/remittance.ts';
import { requestSigner } from '../machines/domain/proxyRules.ts';
import type { Proof, ServerRequest, ServerResult } from '../machines/messages.ts';
import { checkRefusedUnchanged, ledgerFingerprint } from '../machines/domain/invariants.ts';
import { topUpProblems } from '../machines/domain/ledgerTopUps.ts';
import { keyFor, schemeArb } from './arbitraries.ts';
import { expectNoViolations } from './checks.ts';
import { runProperty } from './fc.ts';

const PROXIES = ['p1', 'p2'] as const;
const TOP_UP_RULE = { belowMinor: 1_500, amountMinor: (topUpId: string) => 500 + (topUpId.length % 7) * 100 };
/** Top-ups made over every run, so the suite shows it exercised them. */
let topUpsSeen = 0;
const MEANS = ['m1', 'm2', 'm3'] as const;

const paymentArb = fc.record({
  proxy: fc.constantFrom(...PROXIES),
  meansId: fc.constantFrom(...MEANS),
  payee: fc.constantFrom('shop', 'cafe'),
  amountMinor: fc.integer({ min: 1, max: 4_000 }),
  kind: fc.constantFrom('local', 'local', 'local', 'debit', 'auth'),
  /** Local: also settled by the POS that took the payment. */
  settled: fc.boolean(),
  /** Remote: what the proxy does next — capture (auth), reverse after a timeout, or nothing. */
  end: fc.constantFrom('capture', 'release', 'none'),
});

const forgeryArb = fc.record({
  kind: fc.constantFrom('alterAmount', 'wrongKey', 'unknownSender', 'tamperedProof', 'posTampered', 'counterReplay', 'replayNewReqId', 'malformed'),
  pick: fc.nat(),
  delta: fc.integer({ min: 1, max: 1_000 }),
});

const scenarioArb = fc.record({
  scheme: schemeArb,
  openings: fc.tuple(fc.integer({ min: 0, max: 15_000 }), fc.integer({ min: 0, max: 15_000 }), fc.integer({ min: 0, max: 5_000 })),
  payments: fc.array(paymentArb, { minLength: 1, maxLength: 14 }),
  remit: fc.tuple(
    fc.record({ mode: fc.constantFrom<RemittanceMode>('grouped', 'aggregate'), maxBatchSize: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ mode: fc.constantFrom<RemittanceMode>('grouped', 'aggregate'), maxBatchSize: fc.integer({ min: 1, max: 4 }) }),
  ),
  settleBatch: fc.integer({ min: 1, max: 3 }),
  forgeries: fc.array(forgeryArb, { maxLength: 6 }),
  deliveries: fc.array(fc.nat(), { maxLength: 50 }),
  junk: fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 2 }),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** A message on the wire: honest (the fleet sent it), neutral (a replay that must not pay twice) or forged. */
interface Message {
  request: ServerRequest;
  /**
   * `badProof`: a request its sender signed, carrying a proof altered after the proxy signed it: SD refuses that
   * proof alone (listed in `refused`), posts nothing of it and moves no money, and stores its answer.
   */
  role: 'honest' | 'neutral' | 'forged' | 'badProof';
  /** An honest capture is only sent once its authorisation was answered ok. */
  after?: string;
  /** A counter replay is only meaningful once the original counter is used. */
  replaysCounterOf?: { txId: string };
  label: string;
}

interface World {
  ledger: Ledger;
  ctx: ServerContext;
  keys: Map<string, SigningKey>;
  local: Map<string, LocalTx>;
  messages: Message[];
}

function build(s: Scenario): World {
  const scheme: SignatureScheme = s.scheme;
  const keys = new Map<string, SigningKey>([...PROXIES, 'pos1', 'mallory'].map((id) => [id, keyFor(`ledger:${id}`, scheme)]));
  const serverKey = keyFor('ledger:server', scheme);
  const registered = new Map([...PROXIES, 'pos1'].map((id) => [id, keys.get(id)!.publicKey]));
  // m2 and m3 have auto-reload agreements: money enters from outside after postings that leave them low [INV-3].
  const ledger = new Ledger(new MemoryLedgerStore(), (meansId) => (meansId === 'm1' ? undefined : TOP_UP_RULE));
  ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: s.openings[0], creditLimitMinor: 0 });
  ledger.openMeans({ meansId: 'm2', kind: 'virtualWallet', openingBalanceMinor: s.openings[1], creditLimitMinor: 0 });
  ledger.openMeans({ meansId: 'm3', kind: 'postpaid', openingBalanceMinor: 0, creditLimitMinor: s.openings[2] });
  const ctx: ServerContext = { scheme, serverKey, publicKeyOf: (id) => registered.get(id), nowMs: 0 };

  const messages: Message[] = [];
  const local = new Map<string, LocalTx>();
  const counters = new Map<string, number>(PROXIES.map((p) => [p, 0]));
  const journals = new Map(PROXIES.map((p) => [p, emptyJournal()]));
  const settled: LocalTx[] = [];
  let seq = 0;
  const sign = <R extends ServerRequest>(from: string, unsigned: Unsigned<R>): R => signRequest(keys.get(from)!, unsigned);

  s.payments.forEach((p, i) => {
    const counter = counters.get(p.proxy)! + 1;
    counters.set(p.proxy, counter);
    const claim: PaymentClaim = { txId: `${p.proxy}:t${counter}`, amountMinor: p.amountMinor, payee: p.payee, timeMs: i, counter, proxyId: p.proxy, meansId: p.meansId };
    if (p.kind === 'local') {
      const tx: LocalTx = signProof(keys.get(p.proxy)!, claim, 'localOffline');
      local.set(tx.txId, tx);
      journals.set(p.proxy, recordLocal(journals.get(p.proxy)!, tx));
      if (p.settled) settled.push(tx);
      return;
    }
    const kind = p.kind === 'auth' ? 'auth' : 'debit';
    const pay = sign<ServerRequest>(p.proxy, { kind, reqId: `${p.proxy}:q${counter}`, from: p.proxy, claim } as Unsigned<ServerRequest>);
    messages.push({ request: pay, role: 'honest', label: `${kind} ${claim.txId}` });
    if (p.end === 'capture' && kind === 'auth') {
      messages.push({ request: sign(p.proxy, { kind: 'capture', reqId: `${p.proxy}:c${++seq}`, from: p.proxy, txId: claim.txId, amountMinor: claim.amountMinor }), role: 'honest', after: pay.reqId, label: `capture ${claim.txId}` });
    } else if (p.end === 'release') {
      // A reversal may overtake its payment on the network: SD then voids the txId.
      messages.push({ request: sign(p.proxy, { kind: 'release', reqId: `${p.proxy}:v${++seq}`, from: p.proxy, txId: claim.txId }), role: 'honest', label: `release ${claim.txId}` });
    }
  });
  PROXIES.forEach((proxy, i) => {
    const policy = { ...defaultRemittancePolicy, ...s.remit[i]! };
    const formed = formRemittances(journals.get(proxy)!, policy, requestSigner(proxy, keys.get(proxy)!), 0);
    for (const item of formed.outbox) messages.push({ request: item.request, role: 'honest', label: `remit ${item.reqId} (${policy.mode})` });
  });
  for (let i = 0; i < settled.length; i += s.settleBatch) {
    const proofs = settled.slice(i, i + s.settleBatch);
    messages.push({ request: sign('pos1', { kind: 'settle', reqId: `pos1:s${i}`, from: 'pos1', proofs }), role: 'honest', label: `settle ${proofs.map((p) => p.txId).join(',')}` });
  }

  const honest = messages.filter((m) => m.role === 'honest');
  const anyLocal = [...local.values()];
  s.forgeries.forEach((f, i) => {
    const base = honest[f.pick % honest.length]!.request;
    const tx = anyLocal.length > 0 ? anyLocal[f.pick % anyLocal.length]! : undefined;
    const add = (request: unknown, role: Message['role'] = 'forged', extra: Partial<Message> = {}) =>
      messages.push({ request: request as ServerRequest, role, label: `${f.kind} #${i}`, ...extra });
    switch (f.kind) {
      case 'alterAmount': {
        // The payload changes after signing: the signature no longer covers it.
        const forged = structuredClone(base) as ServerRequest;
        if (forged.kind === 'auth' || forged.kind === 'debit') forged.claim.amountMinor += f.delta;
        else if (forged.kind === 'capture') forged.amountMinor += f.delta;
        else if (forged.kind === 'remit' && forged.mode === 'aggregate') forged.aggregates[0]!.sumMinor += f.delta;
        // A proof altered inside a grouped remittance or a settlement fails the request's signature too.
        else if (forged.kind === 'remit' && forged.mode === 'grouped') forged.transactions[0]!.amountMinor += f.delta;
        else if (forged.kind === 'settle') forged.proofs[0]!.amountMinor += f.delta;
        else return;
        add(forged);
        return;
      }
      case 'wrongKey': {
        // Signed by mallory's key while claiming to come from a registered proxy.
        const { sig: _sig, ...unsigned } = base;
        add(signRequest(keys.get('mallory')!, { ...unsigned, reqId: `${base.reqId}~w${i}` } as Unsigned<ServerRequest>));
        return;
      }
      case 'unknownSender': {
        const { sig: _sig, ...unsigned } = base;
        add(signRequest(keys.get('mallory')!, { ...unsigned, from: 'mallory', reqId: `m${i}` } as Unsigned<ServerRequest>));
        return;
      }
      case 'tamperedProof': {
        // The proxy's own request signature is fine, but a transaction inside was changed after its own signing.
        if (!tx) return;
        add(signRequest(keys.get(tx.proxyId)!, { kind: 'remit', mode: 'grouped', reqId: `${tx.proxyId}:x${i}`, from: tx.proxyId, transactions: [{ ...tx, amountMinor: tx.amountMinor + f.delta }] }), 'badProof');
        return;
      }
      case 'posTampered': {
        if (!tx) return;
        const payee = tx.payee === 'shop' ? 'cafe' : 'shop';
        const proof: Proof = f.delta % 2 === 0 ? { ...tx, amountMinor: tx.amountMinor + f.delta } : { ...tx, payee };
        add(signRequest(keys.get('pos1')!, { kind: 'settle', reqId: `pos1:x${i}`, from: 'pos1', proofs: [proof] }), 'badProof');
        return;
      }
      case 'counterReplay': {
        // A new transaction under a counter already used, grouped or in an aggregate: only meaningful once the
        // original is on the ledger.
        if (!tx) return;
        const claim: PaymentClaim = { ...tx, txId: `${tx.proxyId}:replay${i}`, amountMinor: tx.amountMinor + f.delta };
        const proof: Proof = signProof(keys.get(tx.proxyId)!, claim, 'localOffline');
        const replay: Unsigned<ServerRequest> =
          f.delta % 2 === 0
            ? { kind: 'remit', mode: 'grouped', reqId: `${tx.proxyId}:y${i}`, from: tx.proxyId, transactions: [proof] }
            : { kind: 'remit', mode: 'aggregate', reqId: `${tx.proxyId}:y${i}`, from: tx.proxyId, aggregates: [{ meansId: claim.meansId, payee: claim.payee, sumMinor: claim.amountMinor, txIds: [claim.txId], counters: [claim.counter] }] };
        add(signRequest<ServerRequest>(keys.get(tx.proxyId)!, replay), 'forged', { replaysCounterOf: { txId: tx.txId } });
        return;
      }
      case 'replayNewReqId': {
        // The same remittance or settlement again under a new request id: it must not pay twice.
        if (base.kind !== 'remit' && base.kind !== 'settle') return;
        const { sig: _sig, ...unsigned } = base;
        add(signRequest(keys.get(base.from)!, { ...unsigned, reqId: `${base.reqId}~r${i}` } as Unsigned<ServerRequest>), 'neutral');
        return;
      }
      case 'malformed': {
        const junk = s.junk[i % Math.max(1, s.junk.length)];
        add(typeof junk === 'object' && junk !== null ? { ...junk, kind: base.kind, from: base.from, reqId: `j${i}`, sig: base.sig } : junk);
        return;
      }
    }
  });
  return { ledger, ctx, keys, local, messages };
}

/** Everything that is money or decides money, without the stored answers. */
function moneyState(ledger: Ledger): string {
  const byId = <T extends { id?: string; txId?: string }>(a: T, b: T) => String(a.id ?? a.txId).localeCompare(String(b.id ?? b.txId));
  return canonicalEncoding([
    JSON.stringify(ledger.accounts().sort(byId)),
    JSON.stringify(ledger.postings().sort(byId)),
    JSON.stringify(ledger.aggregates().sort(byId)),
    JSON.stringify(ledger.voids().map((v) => `${v.proxyId}/${v.txId}`).sort()),
  ]);
}

function identity(m: Message): string {
  return canonicalEncoding([String((m.request as { from?: unknown })?.from), String((m.request as { reqId?: unknown })?.reqId), JSON.stringify(m.request) ?? 'undefined']);
}

function run(world: World, order: readonly number[]): void {
  const { ledger, ctx, messages } = world;
  const answers = new Map<string, ServerResult>();
  const okAnswer = new Set<string>();
  const postedBy = new Map<string, string>();

  const deliver = (m: Message): void => {
    if (m.after !== undefined && !okAnswer.has(m.after)) return;
    // A counter is used once the transaction that carries it is on the ledger, singly or in an aggregate, which
    // carries its counters (asked of the postings, not of the counter table, so that a server that stopped
    // recording counters is still caught).
    if (m.replaysCounterOf && ledger.postingOf(m.replaysCounterOf.txId) === undefined) return;
    const before = moneyState(ledger);
    const fingerprintBefore = ledgerFingerprint(ledger);
    const result = handleRequest(ledger, m.request, ctx);
    const after = moneyState(ledger);
    const where = `${m.label} (${m.role}) → ${result.ok ? 'ok' : result.code}`;
    // The shared INV-6 check: refused with a signature-class reason, and the ledger's fingerprint unchanged.
    // A counter replay is signed by the proxy itself: SD stores its refusal under the proxy's own request id.
    if (m.role === 'forged') expectNoViolations(checkRefusedUnchanged(fingerprintBefore, ledgerFingerprint(ledger), result, { ownRefusalStored: m.replaysCounterOf !== undefined }), where);
    // [INV-3 conservation] after every request, whatever it was.
    expect(ledger.sumOfBalancesMinor(), where).toBe(0);
    // A refused request changes nothing; a forged one is always refused [INV-6].
    if (!result.ok) expect(after, `${where} changed the ledger`).toBe(before);
    if (m.role === 'forged') expect(result.ok, `${where}: a forged message was accepted`).toBe(false);
    if (m.role === 'badProof') {
      // [INV-6] the altered proof is refused alone; it neither posts nor moves money, and blocks nothing else.
      const proofs = m.request.kind === 'settle' ? m.request.proofs : m.request.kind === 'remit' && m.request.mode === 'grouped' ? m.request.transactions : [];
      expect(result, `${where}: the altered proof was not refused alone`).toMatchObject({ ok: true, posted: [], refused: proofs.map((p) => p.txId) });
      expect(after, `${where} moved money`).toBe(before);
    }
    // The same authentic request again: the same answer, and nothing moves. (A forgery's answer may change: it is
    // refused as badly signed at first, and as an id conflict once the rightful request holds its reqId.)
    const id = identity(m);
    const previous = answers.get(id);
    if (previous && m.role !== 'forged') {
      expect(result, `${where}: a repeat got another answer`).toEqual(previous);
      expect(after, `${where}: a repeat changed the ledger`).toBe(before);
    }
    answers.set(id, result);
    if (result.ok) okAnswer.add(result.reqId);
    // [INV-4] no transaction is posted by two accepted requests.
    for (const txId of result.posted ?? []) {
      const by = postedBy.get(txId);
      expect(by === undefined || by === id, `${where}: ${txId} was posted already by another request`).toBe(true);
      postedBy.set(txId, id);
    }
  };

  for (const index of order) deliver(messages[index % messages.length]!);
  // Drain: the fleet resends whatever SD has not answered, payments first, then what depends on them.
  const rank = (m: Message) => (m.request.kind === 'auth' || m.request.kind === 'debit' ? 0 : m.request.kind === 'capture' ? 2 : 1);
  for (const m of messages.filter((x) => x.role === 'honest').sort((a, b) => rank(a) - rank(b))) deliver(m);

  // [INV-4 nothing lost] every local payment is posted, with its own means and payee.
  for (const tx of world.local.values()) {
    const posting = ledger.postingOf(tx.txId);
    expect(posting, `local ${tx.txId} is not on the ledger`).toBeDefined();
    expect([posting!.meansId, posting!.payee]).toEqual([tx.meansId, tx.payee]);
    if (posting!.amountMinor !== null) expect(posting!.amountMinor).toBe(tx.amountMinor);
  }
  // [INV-4 nothing twice, INV-5] each beneficiary holds exactly the distinct payments posted to it, once each.
  const expected = new Map<string, number>();
  for (const posting of ledger.postings()) {
    if (posting.reversedBy !== undefined) continue;
    const local = world.local.get(posting.txId);
    const amount = posting.amountMinor ?? local?.amountMinor;
    expect(amount, `${posting.txId} posted without a known amount`).toBeDefined();
    expect(posting.txId.includes('replay'), `${posting.txId}: a replayed counter was posted`).toBe(false);
    expected.set(posting.payee, (expected.get(posting.payee) ?? 0) + amount!);
  }
  for (const payee of ['shop', 'cafe']) {
    expect(ledger.accountOf(payeeAccount(payee))?.balanceMinor ?? 0, `balance of ${payee}`).toBe(expected.get(payee) ?? 0);
  }
  // [INV-3 money from outside] the outside account paid exactly the recorded top-ups, each after a posting of its means.
  expect(topUpProblems({ outsideBalanceMinor: ledger.outsideBalanceMinor(), topUps: ledger.topUps()!, store: ledger.store }, (meansId) => meansId !== 'm1').problems).toEqual([]);
  topUpsSeen += ledger.topUps()!.length;
  // Every aggregate equals the sum of the transactions it names.
  for (const aggregate of ledger.aggregates()) {
    expect(aggregate.sumMinor).toBe(aggregate.txIds.reduce((sum, txId) => sum + (world.local.get(txId)?.amountMinor ?? Number.NaN), 0));
  }
}

describe('server ledger under duplicated, replayed, reordered and forged messages', () => {
  it('conserves money, answers repeats identically, refuses forgeries without effect, and posts every payment exactly once [INV-3, INV-4, INV-5, INV-6]', () => {
    runProperty(
      fc.property(scenarioArb, (s) => {
        const world = build(s);
        run(world, s.deliveries);
      }),
      { numRuns: 120 },
    );
    expect(topUpsSeen).toBeGreaterThan(0);
  });

  // The signature of a grouped remittance or a settlement covers every field of every proof it carries, so a
  // proof altered in transit is refused at the request level and nothing is stored under the honest reqId: the honest
  // request that follows posts [INV-4, INV-6].
  it('a proof altered in transit inside a grouped remittance or a settlement does not stop the honest one from posting [INV-4, INV-6]', () => {
    runProperty(
      fc.property(schemeArb, fc.constantFrom('remit' as const, 'settle' as const), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 100 }), (scheme, kind, amountMinor, delta) => {
        const keys = new Map(['p1', 'pos1'].map((id) => [id, keyFor(`ledger:${id}`, scheme)]));
        const ledger = new Ledger(new MemoryLedgerStore());
        ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 10_000, creditLimitMinor: 0 });
        const ctx: ServerContext = { scheme, serverKey: keyFor('ledger:server', scheme), publicKeyOf: (id) => keys.get(id)?.publicKey, nowMs: 0 };
        const claim: PaymentClaim = { txId: 'p1:t1', amountMinor, payee: 'shop', timeMs: 0, counter: 1, proxyId: 'p1', meansId: 'm1' };
        const proof: Proof = signProof(keys.get('p1')!, claim, 'localOffline');
        const honest: ServerRequest =
          kind === 'remit'
            ? signRequest(keys.get('p1')!, { kind: 'remit', mode: 'grouped', reqId: 'p1:r1', from: 'p1', transactions: [proof] })
            : signRequest(keys.get('pos1')!, { kind: 'settle', reqId: 'pos1:s1', from: 'pos1', proofs: [proof] });
        const altered = structuredClone(honest);
        if (altered.kind === 'remit' && altered.mode === 'grouped') altered.transactions[0]!.amountMinor += delta;
        if (altered.kind === 'settle') altered.proofs[0]!.amountMinor += delta;
        const refused = handleRequest(ledger, altered, ctx);
        expect(refused.ok).toBe(false);
        // A refusal SD does not store, so the sender resends the honest copy rather than dropping its request.
        expect(UNSTORED_REFUSAL_CODES.has(refused.code), refused.code).toBe(true);
        expect(handleRequest(ledger, honest, ctx).ok, 'the honest request after the altered copy').toBe(true);
        expect(ledger.postingOf('p1:t1')?.amountMinor).toBe(amountMinor);
      }),
      { numRuns: 20 },
    );
  });

  it('never throws on a malformed request, and a malformed request changes nothing [INV-6]', () => {
    const ledger = new Ledger(new MemoryLedgerStore());
    ledger.openMeans({ meansId: 'm1', kind: 'prepaid', openingBalanceMinor: 1_000, creditLimitMinor: 0 });
    const key = keyFor('ledger:p1', 'sim');
    const ctx: ServerContext = { scheme: 'sim', serverKey: keyFor('ledger:server', 'sim'), publicKeyOf: (id) => (id === 'p1' ? key.publicKey : undefined), nowMs: 0 };
    const junkArb = fc.oneof(
      fc.anything(),
      fc.record(
        {
          kind: fc.constantFrom('auth', 'debit', 'capture', 'release', 'sync', 'remit', 'settle', 'nope'),
          mode: fc.constantFrom('grouped', 'aggregate', 'x'),
          reqId: fc.oneof(fc.string(), fc.anything()),
          from: fc.constantFrom('p1', 'x', ''),
          sig: fc.oneof(fc.string(), fc.anything()),
          claim: fc.anything(),
          transactions: fc.anything(),
          aggregates: fc.anything(),
          proofs: fc.anything(),
          txId: fc.anything(),
          amountMinor: fc.oneof(fc.integer(), fc.double(), fc.string()),
          meansId: fc.anything(),
        },
        { requiredKeys: ['kind', 'from'] },
      ),
    );
    runProperty(
      fc.property(junkArb, (junk) => {
        const before = moneyState(ledger);
        const result = handleRequest(ledger, junk as ServerRequest, ctx);
        expect(result.kind).toBe('result');
        expect(moneyState(ledger)).toBe(before);
        expect(ledger.sumOfBalancesMinor()).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
