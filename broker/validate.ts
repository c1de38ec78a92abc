// Goal: every message that crosses the broker is checked before anything acts on it: a malformed, oversized,
// unknown or forged one is refused with a precise reason and changes nothing [INV-6 signatures].
// Method: a hand-written schema per message kind of machines/messages.ts, walked field by field so a refusal
// names the field and the offending value (`claim.amountMinor: expected a non-negative integer, got -5`).
// Unknown fields are refused too, so nothing rides along unchecked. Field names are looked up among a schema's
// own names only (null-prototype tables), never with `in`, which would also find `constructor`, `toString` and
// the other names every object inherits; JSON.parse defines a `"__proto__"` key as a plain own property (it
// never calls the prototype setter), so the walk sees it and refuses it like any unknown field. Then the route: a request must come on a
// request topic from a terminal or POS allowed to send that kind, with `from` equal to the publisher's id; an
// answer must come from a server on the response topic of the endpoint it names in `to`. Signatures are the
// machines' business (they hold the keys); this module checks shape and route only. Harness control messages
// (`decodeControl`) get the same treatment: a command only from the harness on a server's command topic, an
// answer only from the server whose username ends the answer topic.

import type { LinkMessage } from '../machines/messages.ts';
import { ENDPOINT_ID_PATTERN, REQUEST_KINDS_BY_ROLE, parseTopic, recipientRole, type ControlMessage, type ParsedTopic, type Role } from './topics.ts';

/** Payloads larger than this are refused unread. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Ids in message bodies: transaction, request, means, payee ids. */
export const ID_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
/** Signatures: base64url (Ed25519) or `s.` + base36 (the 'sim' scheme). */
const SIG_PATTERN = /^[A-Za-z0-9._-]{1,256}$/;
/** Bound on entries of a list (transactions, proofs, aggregates, balances, posted ids). */
export const MAX_LIST_ITEMS = 1000;
/** Bound on the transaction ids one aggregate stands for. */
export const MAX_AGGREGATE_TX_IDS = 5000;
const MAX_TEXT_CHARS = 1000;

export type RejectCode =
  | 'oversized'
  | 'badJson'
  | 'unknownKind'
  | 'badField'
  | 'unexpectedField'
  | 'wrongTopic'
  | 'senderNotAllowed'
  | 'senderMismatch'
  | 'recipientMismatch';

export type Decoded = { ok: true; message: LinkMessage } | { ok: false; code: RejectCode; reason: string };

/** Who published a payload: a connected client's identity, or just `{ role: 'server' }` when only the role is known. */
export interface Publisher {
  role: Role;
  id?: string;
}

class Refusal extends Error {
  constructor(
    readonly code: RejectCode,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** A short, safe rendering of an offending value for a reason text. */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value !== null && typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function bad(path: string, expected: string, got: unknown): never {
  throw new Refusal('badField', `${path}: expected ${expected}, got ${shown(got)}`);
}

// ---------------------------------------------------------------- field checks

/**
 * A check gets the value with where it sits (`parent` path and its own key or index) rather than its full path,
 * because the path text is needed only for a refusal: building `claim.amountMinor` for every field of every
 * accepted message was a string per field per message.
 */
type Check = (value: unknown, parent: string, key: string | number) => void;

/** The path a refusal names: `claim.amountMinor`, `transactions[3].txId`, or just the key at the top level. */
function pathOf(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

const id: Check = (v, parent, key) => {
  if (typeof v !== 'string' || !ID_PATTERN.test(v)) bad(pathOf(parent, key), 'an id matching ' + ID_PATTERN.source, v);
};
const endpointId: Check = (v, parent, key) => {
  if (typeof v !== 'string' || !ENDPOINT_ID_PATTERN.test(v)) bad(pathOf(parent, key), 'an endpoint id matching ' + ENDPOINT_ID_PATTERN.source, v);
};
const sig: Check = (v, parent, key) => {
  if (typeof v !== 'string' || !SIG_PATTERN.test(v)) bad(pathOf(parent, key), 'a signature', v);
};
/** Money: integer minor units, never negative, never a float. */
const minor: Check = (v, parent, key) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(pathOf(parent, key), 'a non-negative integer', v);
};
const count: Check = minor;
const bool: Check = (v, parent, key) => {
  if (typeof v !== 'boolean') bad(pathOf(parent, key), 'a boolean', v);
};
const text: Check = (v, parent, key) => {
  if (typeof v !== 'string' || v.length > MAX_TEXT_CHARS) bad(pathOf(parent, key), `a string of at most ${MAX_TEXT_CHARS} characters`, v);
};
function oneOf(...values: readonly string[]): Check {
  return (v, parent, key) => {
    if (typeof v !== 'string' || !values.includes(v)) bad(pathOf(parent, key), `one of ${values.join('|')}`, v);
  };
}
function listOf(item: Check, max: number): Check {
  return (v, parent, key) => {
    if (!Array.isArray(v)) bad(pathOf(parent, key), 'an array', v);
    if (v.length > max) bad(pathOf(parent, key), `at most ${max} entries`, v);
    if (v.length === 0) return;
    const path = pathOf(parent, key);
    for (let i = 0; i < v.length; i++) item(v[i], path, i);
  };
}
function object(required: Record<string, Check>, optional: Record<string, Check> = {}): Check {
  // The field lists are taken once, when the schema is built, not for every message.
  const requiredKeys = Object.keys(required);
  const requiredChecks = Object.values(required);
  const optionalKeys = Object.keys(optional);
  const optionalChecks = Object.values(optional);
  // A null-prototype table of the allowed names: a lookup finds only them, never an inherited `constructor`.
  const known: Record<string, true> = Object.create(null) as Record<string, true>;
  for (const field of [...requiredKeys, ...optionalKeys]) known[field] = true;
  return (v, parent, key) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(pathOf(parent, key) || 'message', 'an object', v);
    const record = v as Record<string, unknown>;
    const path = pathOf(parent, key);
    // Own fields only: an allowed name must be the message's own, not one its prototype lends it.
    for (let i = 0; i < requiredKeys.length; i++) {
      const field = requiredKeys[i]!;
      requiredChecks[i]!(Object.hasOwn(record, field) ? record[field] : undefined, path, field);
    }
    for (let i = 0; i < optionalKeys.length; i++) {
      const field = optionalKeys[i]!;
      if (Object.hasOwn(record, field) && record[field] !== undefined) optionalChecks[i]!(record[field], path, field);
    }
    // Object.keys lists own names, `__proto__` included when the payload had one.
    for (const field of Object.keys(record)) {
      if (known[field] !== true) throw new Refusal('unexpectedField', `${pathOf(path, field)}: not a field of this message`);
    }
  };
}

// ---------------------------------------------------------------- schemas of machines/messages.ts

const kindIs = (kind: string): Check => oneOf(kind);

const claimFields = { txId: id, amountMinor: minor, payee: id, timeMs: count, counter: count, proxyId: endpointId, meansId: id };
/** The sale a claim answers: its order, and for a POS's sale the POS and its nonce (see PaymentClaim). */
const claimSaleFields = { orderId: id, posId: endpointId, nonce: id };
const paymentPath = oneOf('internal', 'localOffline', 'localBelowThreshold', 'remote');
const claim = object(claimFields, { ...claimSaleFields, path: paymentPath });
/** A proof: the signed claim with its path, and for a remote payment SD's receipt (its outcome and signature). */
const proof = object({ ...claimFields, sig, path: paymentPath }, { serverOutcome: oneOf('debited', 'authorised'), serverSig: sig, ...claimSaleFields });
const aggregate = object({ meansId: id, payee: id, sumMinor: minor, txIds: listOf(id, MAX_AGGREGATE_TX_IDS), counters: listOf(count, MAX_AGGREGATE_TX_IDS) });
const balance = object({ meansId: id, availableMinor: minor, version: count });
const request = (kind: string, fields: Record<string, Check>) => object({ kind: kindIs(kind), reqId: id, from: endpointId, sig, ...fields });
const requestKinds = ['auth', 'debit', 'capture', 'release', 'remit', 'sync', 'settle', 'reload'] as const;

/** Each schema is built once; `remit` has one per mode, chosen by the message. */
const remitAggregate = request('remit', { mode: oneOf('aggregate'), aggregates: listOf(aggregate, MAX_LIST_ITEMS) });
const remitGrouped = request('remit', { mode: oneOf('grouped', 'aggregate'), transactions: listOf(proof, MAX_LIST_ITEMS) });
const fixedSchemas = {
  auth: request('auth', { claim }),
  debit: request('debit', { claim }),
  capture: request('capture', { txId: id, amountMinor: minor }),
  release: request('release', { txId: id }),
  sync: request('sync', { meansId: id }),
  reload: request('reload', { purseMeansId: id, fundingMeansId: id, amountMinor: minor, leftoverMinor: minor, granted: bool }),
  settle: request('settle', { proofs: listOf(proof, MAX_LIST_ITEMS) }),
  result: object(
    { kind: kindIs('result'), reqId: id, to: endpointId, requestKind: oneOf(...requestKinds), ok: bool, code: id, serverSig: sig },
    { reason: text, txId: id, receiptSig: sig, balances: listOf(balance, MAX_LIST_ITEMS), posted: listOf(id, MAX_LIST_ITEMS), alreadyPosted: listOf(id, MAX_LIST_ITEMS), refused: listOf(id, MAX_LIST_ITEMS) },
  ),
  remitNow: object({ kind: kindIs('remitNow'), reqId: id, from: id, to: endpointId, issuedAtMs: count, sig }),
};

const schemas: Record<string, (message: Record<string, unknown>) => Check> = {
  auth: () => fixedSchemas.auth,
  debit: () => fixedSchemas.debit,
  capture: () => fixedSchemas.capture,
  release: () => fixedSchemas.release,
  remit: (m) => (m.mode === 'aggregate' ? remitAggregate : remitGrouped),
  sync: () => fixedSchemas.sync,
  reload: () => fixedSchemas.reload,
  settle: () => fixedSchemas.settle,
  result: () => fixedSchemas.result,
  remitNow: () => fixedSchemas.remitNow,
};

// ---------------------------------------------------------------- route

/** Refuses a well-formed message that arrived on the wrong topic or from the wrong client. */
function checkRoute(message: LinkMessage, topic: string, route: ParsedTopic | undefined, publisher: Publisher): void {
  if (message.kind === 'result' || message.kind === 'remitNow') {
    if (route?.family !== 'resp') throw new Refusal('wrongTopic', `${message.kind}: expected a response topic, got ${shown(topic)}`);
    if (publisher.role !== 'server') throw new Refusal('senderNotAllowed', `${message.kind}: only a server may send it, not a ${publisher.role}`);
    if (message.to !== route.id || recipientRole(message) !== route.role) {
      throw new Refusal('recipientMismatch', `to: ${shown(message.to)} is not the ${route.role} of topic ${shown(topic)}`);
    }
    return;
  }
  if (route?.family !== 'req') throw new Refusal('wrongTopic', `${message.kind}: expected a request topic, got ${shown(topic)}`);
  const role = publisher.role;
  if ((role !== 'terminal' && role !== 'pos') || !REQUEST_KINDS_BY_ROLE[role].includes(message.kind)) {
    throw new Refusal('senderNotAllowed', `${message.kind}: a ${role} may not send it`);
  }
  // [INV-6 signatures] The sender named in the body is the client that published it, so no one can speak for another.
  if (message.from !== publisher.id || route.sender.role !== role || route.sender.id !== publisher.id) {
    throw new Refusal('senderMismatch', `from: ${shown(message.from)} is not the publisher ${shown(publisher.id)}`);
  }
}

/** Size, JSON and object shape: what every payload must pass before its kind is looked at. */
function parseObject(payload: Buffer, maxBytes: number): Record<string, unknown> {
  if (payload.length > maxBytes) throw new Refusal('oversized', `payload of ${payload.length} bytes exceeds ${maxBytes}`);
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch (error) {
    throw new Refusal('badJson', `not JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) bad('message', 'an object', value);
  return value as Record<string, unknown>;
}

function refusalOf(error: unknown): { ok: false; code: RejectCode; reason: string } {
  if (error instanceof Refusal) return { ok: false, code: error.code, reason: `${error.code}: ${error.detail}` };
  throw error;
}

/**
 * Decodes and checks one payload received on `topic` from `publisher`. Never throws: a refusal carries a
 * code (for counters) and a reason naming the field and the offending value.
 */
export function decodeMessage(payload: Buffer, topic: string, publisher: Publisher, maxBytes = MAX_MESSAGE_BYTES): Decoded {
  return decodeMessageOnRoute(payload, topic, parseTopic(topic), publisher, maxBytes);
}

/**
 * `decodeMessage` for a receiver that has already parsed `topic` (`route` must be `parseTopic(topic)`): a link
 * receives on few topics, so it parses each once instead of once per message.
 */
export function decodeMessageOnRoute(payload: Buffer, topic: string, route: ParsedTopic | undefined, publisher: Publisher, maxBytes = MAX_MESSAGE_BYTES): Decoded {
  try {
    const record = parseObject(payload, maxBytes);
    const kind = record.kind;
    const schema = typeof kind === 'string' && Object.hasOwn(schemas, kind) ? schemas[kind] : undefined;
    if (!schema) throw new Refusal('unknownKind', `kind: unknown message kind ${shown(kind)}`);
    schema(record)(record, '', '');
    const message = record as unknown as LinkMessage;
    checkRoute(message, topic, route, publisher);
    return { ok: true, message };
  } catch (error) {
    return refusalOf(error);
  }
}

// ---------------------------------------------------------------- harness control messages

const controlSchemas: Record<string, Check> = {
  spendElsewhere: object({ kind: kindIs('spendElsewhere'), transferId: id, meansId: id, payee: id, amountMinor: minor }),
  spendElsewhereResult: object(
    { kind: kindIs('spendElsewhereResult'), transferId: id, meansId: id, outcome: oneOf('applied', 'refused') },
    { code: id, reason: text },
  ),
};

export type DecodedControl = { ok: true; message: ControlMessage } | { ok: false; code: RejectCode; reason: string };

/** Refuses a well-formed control message on the wrong topic or from the wrong client. */
function checkControlRoute(message: ControlMessage, topic: string, publisher: Publisher): void {
  const route = parseTopic(topic);
  if (message.kind === 'spendElsewhere') {
    if (route?.family !== 'ctlCmd') throw new Refusal('wrongTopic', `spendElsewhere: expected a server command topic, got ${shown(topic)}`);
    if (publisher.role !== 'harness') throw new Refusal('senderNotAllowed', `spendElsewhere: only the harness may send it, not a ${publisher.role}`);
    return;
  }
  if (route?.family !== 'ctlAck') throw new Refusal('wrongTopic', `spendElsewhereResult: expected a control answer topic, got ${shown(topic)}`);
  if (publisher.role !== 'server') throw new Refusal('senderNotAllowed', `spendElsewhereResult: only a server may send it, not a ${publisher.role}`);
  if (publisher.id !== undefined && publisher.id !== route.sender.id) {
    throw new Refusal('senderMismatch', `topic ${shown(topic)} names server ${shown(route.sender.id)}, the publisher is ${shown(publisher.id)}`);
  }
  if (message.outcome === 'refused' && message.code === undefined) bad('code', 'a refusal code when outcome is refused', message.code);
}

/**
 * Decodes and checks one harness control payload (a command for a server, or its answer) received on `topic`
 * from `publisher`. Never throws; a refusal names the field and the value, as `decodeMessage`'s do. A receiver
 * that learns the publisher only from the broker's ACL passes the role the ACL allows on that topic.
 */
export function decodeControl(payload: Buffer, topic: string, publisher: Publisher, maxBytes = MAX_MESSAGE_BYTES): DecodedControl {
  try {
    const record = parseObject(payload, maxBytes);
    const kind = record.kind;
    const schema = typeof kind === 'string' && Object.hasOwn(controlSchemas, kind) ? controlSchemas[kind] : undefined;
    if (!schema) throw new Refusal('unknownKind', `kind: unknown control message kind ${shown(kind)}`);
    schema(record, '', '');
    const message = record as unknown as ControlMessage;
    checkControlRoute(message, topic, publisher);
    return { ok: true, message };
  } catch (error) {
    return refusalOf(error);
  }
}

/** Counts refusals by code, for metrics and for the broker's stats. */
export class RefusalCounter {
  private readonly counts = new Map<string, number>();

  count(code: string): void {
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
  }

  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}
