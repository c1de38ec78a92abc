import { describe, it, expect } from 'vitest';
import { MAX_MESSAGE_BYTES, RefusalCounter, decodeControl, decodeMessage, type Publisher } from './validate.ts';
import { everyKindOfMessage, payload, proofOf, remitNowFor, requestsFrom, resultFor, withInheritedNames } from './testSupport.ts';

const T1: Publisher = { role: 'terminal', id: 'T1' };
const P1: Publisher = { role: 'pos', id: 'P1' };
const SERVER: Publisher = { role: 'server' };
const REQ = 'pf/v1/sd/2/req/tm.T1';
const POS_REQ = 'pf/v1/sd/2/req/pos.P1';
const RESP = 'pf/v1/tm/T1/resp';

function refusal(body: unknown, topic = REQ, publisher: Publisher = T1): string {
  const decoded = decodeMessage(Buffer.isBuffer(body) ? body : payload(body), topic, publisher);
  if (decoded.ok) throw new Error('expected a refusal');
  return decoded.reason;
}

describe('decodeMessage accepts every well-formed message', () => {
  it.each(Object.entries(requestsFrom('T1')).filter(([name]) => name !== 'settle'))('terminal request %s', (_name, request) => {
    expect(decodeMessage(payload(request), REQ, T1)).toEqual({ ok: true, message: request });
  });

  it('POS settlement', () => {
    const settle = requestsFrom('P1').settle!;
    expect(decodeMessage(payload(settle), POS_REQ, P1)).toEqual({ ok: true, message: settle });
  });

  it('results and remitNow from a server', () => {
    const result = resultFor(requestsFrom('T1').remitGrouped!);
    const full = { ...result, reason: 'fine', txId: 'T1:t1', posted: ['T1:t1'], alreadyPosted: ['T1:t2'], refused: ['T1:t3'] };
    expect(decodeMessage(payload(result), RESP, SERVER)).toEqual({ ok: true, message: result });
    expect(decodeMessage(payload(full), RESP, SERVER).ok).toBe(true);
    expect(decodeMessage(payload(remitNowFor('T1')), RESP, SERVER).ok).toBe(true);
    const settleResult = resultFor(requestsFrom('P1').settle!);
    expect(decodeMessage(payload(settleResult), 'pf/v1/pos/P1/resp', SERVER).ok).toBe(true);
  });
});

describe('decodeMessage refuses, naming the field and the value', () => {
  const auth = requestsFrom('T1').auth!;

  it('oversized payloads, unread', () => {
    expect(refusal(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20))).toBe(`oversized: payload of ${MAX_MESSAGE_BYTES + 1} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  });

  it('payloads that are not JSON objects', () => {
    expect(refusal(Buffer.from('{"kind":'))).toMatch(/^badJson: not JSON/);
    expect(refusal([1, 2])).toBe('badField: message: expected an object, got an array of 2');
    expect(refusal(null)).toBe('badField: message: expected an object, got null');
  });

  it('unknown kinds', () => {
    expect(refusal({ ...auth, kind: 'refund' })).toBe('unknownKind: kind: unknown message kind "refund"');
    expect(refusal({ ...auth, kind: 'constructor' })).toBe('unknownKind: kind: unknown message kind "constructor"');
    expect(refusal({ reqId: 'x' })).toBe('unknownKind: kind: unknown message kind nothing');
  });

  it('negative, fractional and textual amounts', () => {
    expect(refusal({ ...auth, claim: { ...auth.claim, amountMinor: -5 } })).toBe('badField: claim.amountMinor: expected a non-negative integer, got -5');
    expect(refusal({ ...auth, claim: { ...auth.claim, amountMinor: 12.5 } })).toBe('badField: claim.amountMinor: expected a non-negative integer, got 12.5');
    expect(refusal({ ...auth, claim: { ...auth.claim, amountMinor: '100' } })).toBe('badField: claim.amountMinor: expected a non-negative integer, got "100"');
    expect(refusal({ ...auth, claim: { ...auth.claim, amountMinor: 2 ** 60 } })).toMatch(/^badField: claim.amountMinor: expected a non-negative integer/);
  });

  it('missing fields, bad ids and extra fields', () => {
    const { sig: _sig, ...unsigned } = auth;
    expect(refusal(unsigned)).toBe('badField: sig: expected a signature, got nothing');
    expect(refusal({ ...auth, reqId: 'has space' })).toMatch(/^badField: reqId: expected an id matching/);
    expect(refusal({ ...auth, reqId: 'x'.repeat(129) })).toMatch(/^badField: reqId: expected an id/);
    expect(refusal({ ...auth, extra: 1 })).toBe('unexpectedField: extra: not a field of this message');
    expect(refusal({ ...auth, claim: { ...auth.claim, note: 'hi' } })).toBe('unexpectedField: claim.note: not a field of this message');
  });

  it('nested list entries, with their index', () => {
    const grouped = requestsFrom('T1').remitGrouped!;
    if (grouped.kind !== 'remit' || grouped.mode !== 'grouped') throw new Error('fixture');
    const broken = { ...grouped, transactions: [grouped.transactions[0], { ...proofOf('T1', 2), path: 'teleport' }] };
    expect(refusal(broken)).toBe('badField: transactions[1].path: expected one of internal|localOffline|localBelowThreshold|remote, got "teleport"');
    expect(refusal({ ...grouped, mode: 'sideways' })).toBe('badField: mode: expected one of grouped|aggregate, got "sideways"');
    const result = resultFor(grouped);
    const posted = Array.from({ length: 1001 }, (_, i) => `T1:t${i}`);
    expect(refusal({ ...result, posted }, RESP, SERVER)).toBe('badField: posted: expected at most 1000 entries, got an array of 1001');
    expect(refusal({ ...result, balances: [{ meansId: 'm-1', availableMinor: 1, version: -1 }] }, RESP, SERVER)).toBe(
      'badField: balances[0].version: expected a non-negative integer, got -1',
    );
  });

  it('a request whose sender is not the publisher (forged from)', () => {
    expect(refusal(requestsFrom('T2').auth)).toBe('senderMismatch: from: "T2" is not the publisher "T1"');
    expect(refusal(auth, 'pf/v1/sd/2/req/tm.T2', { role: 'terminal', id: 'T2' })).toBe('senderMismatch: from: "T1" is not the publisher "T2"');
  });

  it('kinds the publisher role may not send, and messages on the wrong topic', () => {
    expect(refusal(requestsFrom('T1').settle)).toBe('senderNotAllowed: settle: a terminal may not send it');
    expect(refusal(requestsFrom('P1').auth, POS_REQ, P1)).toBe('senderNotAllowed: auth: a pos may not send it');
    expect(refusal(auth, RESP, T1)).toBe('wrongTopic: auth: expected a request topic, got "pf/v1/tm/T1/resp"');
    expect(refusal(resultFor(auth), REQ, T1)).toMatch(/^wrongTopic: result: expected a response topic/);
    expect(refusal(resultFor(auth), RESP, T1)).toBe('senderNotAllowed: result: only a server may send it, not a terminal');
  });

  it('an answer on another endpoint\'s topic', () => {
    expect(refusal(resultFor(requestsFrom('T2').auth!), RESP, SERVER)).toBe('recipientMismatch: to: "T2" is not the terminal of topic "pf/v1/tm/T1/resp"');
    expect(refusal(resultFor(requestsFrom('T1').auth!), 'pf/v1/pos/T1/resp', SERVER)).toMatch(/^recipientMismatch/);
  });
});

describe('decodeMessage looks at own fields only', () => {
  const routeOf = (from: 'T1' | 'P1' | 'server'): [string, Publisher] => (from === 'server' ? [RESP, SERVER] : from === 'P1' ? [POS_REQ, P1] : [REQ, T1]);
  const cases = everyKindOfMessage().flatMap(({ message, from }) => withInheritedNames(message).map((c) => ({ ...c, from })));

  it.each(cases.map((c) => [c.label, c] as const))('refuses %s, an inherited name planted as a field', (_label, c) => {
    const [topic, publisher] = routeOf(c.from);
    expect(c.body.toString()).toContain(`"${c.refusedField.split('.').at(-1)}":`);
    expect(refusal(c.body, topic, publisher)).toBe(`unexpectedField: ${c.refusedField}: not a field of this message`);
  });

  it('never lets a "__proto__" key reach a prototype, and accepts no inherited name as a required field', () => {
    const sync = requestsFrom('T1').sync;
    const decoded = decodeMessage(payload(sync), REQ, T1);
    expect(decoded.ok && Object.getPrototypeOf(decoded.message)).toBe(Object.prototype);
    // A message with no fields of its own but whose prototype has them all is refused: nothing is read through it.
    const inherits = Object.create(sync) as object;
    expect(JSON.stringify(inherits)).toBe('{}');
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    const planted = Buffer.from(`{"__proto__":{"admin":true},${payload(sync).toString().slice(1)}`);
    expect(refusal(planted)).toBe('unexpectedField: __proto__: not a field of this message');
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });
});

describe('RefusalCounter', () => {
  it('counts by code', () => {
    const counter = new RefusalCounter();
    for (const body of [Buffer.from('x'), Buffer.from('y'), payload({ kind: 'nope' })]) {
      const decoded = decodeMessage(body, REQ, T1);
      if (!decoded.ok) counter.count(decoded.code);
    }
    expect(counter.snapshot()).toEqual({ badJson: 2, unknownKind: 1 });
    expect(counter.total).toBe(3);
  });
});

describe('decodeControl: harness control messages for one server', () => {
  const HARNESS: Publisher = { role: 'harness', id: 'harness' };
  const SD2: Publisher = { role: 'server', id: '2-3' };
  const CMD = 'pf/v1/ctl/sd/2/cmd';
  const ACK = 'pf/v1/ctl/ack/sd.2-3';
  const spend = { kind: 'spendElsewhere', transferId: 'elsewhere:m7:3', meansId: 'm7', payee: 'merchant:web', amountMinor: 1_250 };
  const applied = { kind: 'spendElsewhereResult', transferId: 'elsewhere:m7:3', meansId: 'm7', outcome: 'applied' };
  const refused = { ...applied, outcome: 'refused', code: 'insufficientFunds', reason: 'means m7 has 0 available, 1250 asked' };
  const controlRefusal = (body: unknown, topic: string, publisher: Publisher): string => {
    const decoded = decodeControl(Buffer.isBuffer(body) ? body : payload(body), topic, publisher);
    if (decoded.ok) throw new Error('expected a refusal');
    return decoded.reason;
  };

  it('accepts a spend from the harness on a server command topic, and the server\'s answers under its name', () => {
    expect(decodeControl(payload(spend), CMD, HARNESS)).toEqual({ ok: true, message: spend });
    expect(decodeControl(payload(applied), ACK, SD2)).toEqual({ ok: true, message: applied });
    expect(decodeControl(payload(refused), ACK, SD2)).toEqual({ ok: true, message: refused });
    // A receiver that knows only the role the ACL allows (the harness reading an answer topic) passes no id.
    expect(decodeControl(payload(applied), ACK, { role: 'server' }).ok).toBe(true);
  });

  it('refuses malformed ones, naming the field and the value', () => {
    expect(controlRefusal(Buffer.from('{"kind":'), CMD, HARNESS)).toMatch(/^badJson: not JSON/);
    expect(controlRefusal({ ...spend, kind: 'refund' }, CMD, HARNESS)).toBe('unknownKind: kind: unknown control message kind "refund"');
    expect(controlRefusal(requestsFrom('T1').auth, CMD, HARNESS)).toBe('unknownKind: kind: unknown control message kind "auth"');
    expect(controlRefusal({ ...spend, amountMinor: -5 }, CMD, HARNESS)).toBe('badField: amountMinor: expected a non-negative integer, got -5');
    expect(controlRefusal({ ...spend, amountMinor: 12.5 }, CMD, HARNESS)).toBe('badField: amountMinor: expected a non-negative integer, got 12.5');
    expect(controlRefusal({ ...spend, amountMinor: '100' }, CMD, HARNESS)).toBe('badField: amountMinor: expected a non-negative integer, got "100"');
    expect(controlRefusal({ ...spend, meansId: 'a b' }, CMD, HARNESS)).toMatch(/^badField: meansId: expected an id matching/);
    expect(controlRefusal({ ...spend, note: 'x' }, CMD, HARNESS)).toBe('unexpectedField: note: not a field of this message');
    expect(controlRefusal({ ...applied, outcome: 'maybe' }, ACK, SD2)).toBe('badField: outcome: expected one of applied|refused, got "maybe"');
    expect(controlRefusal({ ...applied, outcome: 'refused' }, ACK, SD2)).toBe('badField: code: expected a refusal code when outcome is refused, got nothing');
    expect(controlRefusal(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20), CMD, HARNESS)).toMatch(/^oversized/);
  });

  it('refuses forged ones: a spend not from the harness, on the wrong topic, or an answer under another server\'s name', () => {
    expect(controlRefusal(spend, CMD, T1)).toBe('senderNotAllowed: spendElsewhere: only the harness may send it, not a terminal');
    expect(controlRefusal(spend, CMD, { role: 'server', id: '2-3' })).toBe('senderNotAllowed: spendElsewhere: only the harness may send it, not a server');
    expect(controlRefusal(spend, 'pf/v1/ctl/cmd', HARNESS)).toBe('wrongTopic: spendElsewhere: expected a server command topic, got "pf/v1/ctl/cmd"');
    expect(controlRefusal(spend, REQ, HARNESS)).toMatch(/^wrongTopic/);
    expect(controlRefusal(applied, CMD, HARNESS)).toMatch(/^wrongTopic: spendElsewhereResult/);
    expect(controlRefusal(applied, ACK, HARNESS)).toBe('senderNotAllowed: spendElsewhereResult: only a server may send it, not a harness');
    expect(controlRefusal(applied, ACK, { role: 'server', id: '0-1' })).toBe('senderMismatch: topic "pf/v1/ctl/ack/sd.2-3" names server "2-3", the publisher is "0-1"');
  });

  it('keeps control kinds out of the link messages, and link messages out of control', () => {
    expect(decodeMessage(payload(spend), REQ, T1).ok).toBe(false);
    expect(decodeMessage(payload(spend), CMD, HARNESS).ok).toBe(false);
  });
});
