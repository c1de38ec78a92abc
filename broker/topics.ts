// Goal: the MQTT topic contract of the mqtt mode, in one module: which topic carries what, who may publish
// and subscribe where, and how a client's username names its identity. docs/topics.md is the same contract
// as a document; keep the two in step.
// Method: every topic starts with the versioned prefix `pf/v1/`. A request topic ends with the sender's
// username (`pf/v1/sd/{shard}/req/{username}`), so the broker's ACL — aedes' hooks or Mosquitto's ACL file —
// binds the sender to its connection, and the receiving server learns who published a request from the topic
// alone (MQTT 3.1.1 carries no publisher). The ACL is a list of read/write rules per identity, written once
// here and used both by the embedded broker's checks and by the Mosquitto ACL file, so they cannot drift.
// Control commands for one server (`pf/v1/ctl/sd/{shard}/cmd`) follow the same rule: only the harness writes
// them, only the server of that shard reads them, and it answers under its own name (`pf/v1/ctl/ack/{username}`).

import type { LinkMessage, RequestKind } from '../machines/messages.ts';
import { serverAddress } from '../machines/link.ts';

export const TOPIC_PREFIX = 'pf/v1/';

export type Role = 'terminal' | 'pos' | 'server' | 'harness';

/** Who a connected client is. A server's id names its shard range (`0-3,8`); the harness's id is `harness`. */
export interface ClientIdentity {
  role: Role;
  id: string;
  /** For a server: the shards it serves. */
  shards?: number[];
}

/**
 * A terminal or POS id as it appears in topics and usernames: no `/`, `+`, `#` (topic syntax) and no `:`
 * (Mosquitto's password file separates the username from the hash with `:`).
 */
export const ENDPOINT_ID_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;

/** The largest shard number the contract accepts (a sanity bound, far above any real deployment). */
export const MAX_SHARD = 65_535;

/**
 * Which request kinds each sender role may send. The two lists are disjoint on purpose: a server routes a
 * result to a terminal's or a POS's response topic by the kind of request it answers (`recipientRole`).
 */
export const REQUEST_KINDS_BY_ROLE: Readonly<Record<'terminal' | 'pos', readonly RequestKind[]>> = {
  terminal: ['auth', 'debit', 'capture', 'release', 'remit', 'sync', 'reload'],
  pos: ['settle'],
};

// ---------------------------------------------------------------- usernames

const USERNAME_PREFIX = { terminal: 'tm.', pos: 'pos.', server: 'sd.' } as const;

/** The MQTT username and client id of an identity: `tm.{id}`, `pos.{id}`, `sd.{range}`, `harness`. */
export function usernameOf(identity: ClientIdentity): string {
  if (identity.role === 'harness') return 'harness';
  return USERNAME_PREFIX[identity.role] + identity.id;
}

/** Parses a shard range such as `0-3,8` into sorted distinct shard numbers; undefined when malformed. */
export function parseShardRange(range: string): number[] | undefined {
  const shards = new Set<number>();
  for (const part of range.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > MAX_SHARD) return undefined;
    for (let s = lo; s <= hi; s++) shards.add(s);
  }
  return [...shards].sort((a, b) => a - b);
}

/** Writes shards as the shortest range text: [0,1,2,3,8] → `0-3,8`. */
export function formatShardRange(shards: readonly number[]): string {
  const sorted = [...new Set(shards)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The identity of a server serving `shards`. */
export function serverIdentity(shards: readonly number[]): ClientIdentity {
  const id = formatShardRange(shards);
  return { role: 'server', id, shards: parseShardRange(id) ?? [] };
}

/** The identity a username stands for, or undefined when it follows no scheme of the contract. */
export function identityOf(username: string): ClientIdentity | undefined {
  if (username === 'harness') return { role: 'harness', id: 'harness' };
  if (username.startsWith(USERNAME_PREFIX.server)) {
    const shards = parseShardRange(username.slice(USERNAME_PREFIX.server.length));
    return shards && shards.length > 0 ? { role: 'server', id: formatShardRange(shards), shards } : undefined;
  }
  for (const role of ['terminal', 'pos'] as const) {
    const prefix = USERNAME_PREFIX[role];
    if (username.startsWith(prefix)) {
      const id = username.slice(prefix.length);
      return ENDPOINT_ID_PATTERN.test(id) ? { role, id } : undefined;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- addresses and topics

/** An address of machines/link.ts: `sd/{shard}` for a server shard, otherwise a terminal or POS id. */
export type ParsedAddress = { kind: 'server'; shard: number } | { kind: 'endpoint'; id: string };

export function parseAddress(address: string): ParsedAddress | undefined {
  const m = /^sd\/(0|[1-9]\d{0,4})$/.exec(address);
  if (m) {
    const shard = Number(m[1]);
    return shard <= MAX_SHARD ? { kind: 'server', shard } : undefined;
  }
  return ENDPOINT_ID_PATTERN.test(address) ? { kind: 'endpoint', id: address } : undefined;
}

/** The topic a request from `sender` to server shard `shard` is published on. */
export function requestTopic(shard: number, sender: ClientIdentity): string {
  return `${TOPIC_PREFIX}sd/${shard}/req/${usernameOf(sender)}`;
}

/** The filter a server subscribes to for one of its shards. */
export function requestFilter(shard: number): string {
  return `${TOPIC_PREFIX}sd/${shard}/req/+`;
}

/** The topic a server publishes answers for a terminal or POS on, and that endpoint subscribes to. */
export function responseTopic(role: 'terminal' | 'pos', id: string): string {
  return `${TOPIC_PREFIX}${role === 'terminal' ? 'tm' : 'pos'}/${id}/resp`;
}

/** Harness → every client: control commands. */
export const CONTROL_TOPIC = `${TOPIC_PREFIX}ctl/cmd`;

/**
 * Harness → the server of `shard`: control commands for that server alone — today a payment made through another
 * point of issue of a shared means, which the server applies to its own ledger (nothing else may write it).
 */
export function serverControlTopic(shard: number): string {
  return `${TOPIC_PREFIX}ctl/sd/${shard}/cmd`;
}

/** Server → harness: answers to control commands, under the answering server's username (the ACL binds it). */
export function controlAckTopic(identity: ClientIdentity): string {
  return `${TOPIC_PREFIX}ctl/ack/${usernameOf(identity)}`;
}

/** The filter the harness subscribes to for every server's control answers. */
export const CONTROL_ACK_FILTER = `${TOPIC_PREFIX}ctl/ack/+`;

/** The control subscriptions of an identity: a server its shards' command topics, the harness the answers. */
export function controlSubscriptionsOf(identity: ClientIdentity): string[] {
  if (identity.role === 'server') return (identity.shards ?? []).map(serverControlTopic);
  if (identity.role === 'harness') return [CONTROL_ACK_FILTER];
  return [];
}

/**
 * A payment through another point of issue (a web shop) of a shared means, debited directly on SD's ledger:
 * harness → the server of the means' shard. Idempotent by `transferId`.
 */
export interface SpendElsewhereCommand {
  kind: 'spendElsewhere';
  transferId: string;
  meansId: string;
  payee: string;
  amountMinor: number;
}

/** The server's answer: applied (now or before) or refused, with the refusal's code and reason. */
export interface SpendElsewhereAnswer {
  kind: 'spendElsewhereResult';
  transferId: string;
  meansId: string;
  outcome: 'applied' | 'refused';
  code?: string;
  reason?: string;
}

export type ControlMessage = SpendElsewhereCommand | SpendElsewhereAnswer;

/** Client → harness: the metrics of one client. */
export function metricsTopic(identity: ClientIdentity): string {
  return `${TOPIC_PREFIX}ctl/metrics/${usernameOf(identity)}`;
}

/** The role a server's message goes to: a result goes to whoever may send the request kind it answers. */
export function recipientRole(message: LinkMessage): 'terminal' | 'pos' {
  if (message.kind === 'result' && REQUEST_KINDS_BY_ROLE.pos.includes(message.requestKind)) return 'pos';
  return 'terminal';
}

/**
 * The topic `sender` publishes `message` to `to` on, or undefined when the contract has no such route
 * (a terminal addressing a terminal, a server addressing a shard, a malformed address).
 */
export function topicForSend(sender: ClientIdentity, to: string, message: LinkMessage): string | undefined {
  const address = parseAddress(to);
  if (!address) return undefined;
  if (sender.role === 'terminal' || sender.role === 'pos') {
    return address.kind === 'server' ? requestTopic(address.shard, sender) : undefined;
  }
  if (sender.role === 'server' && address.kind === 'endpoint') return responseTopic(recipientRole(message), address.id);
  return undefined;
}

/** What a topic of the contract means. */
export type ParsedTopic =
  | { family: 'req'; shard: number; address: string; sender: ClientIdentity }
  | { family: 'resp'; role: 'terminal' | 'pos'; id: string; address: string }
  | { family: 'ctlCmd'; shard: number }
  | { family: 'ctlAck'; sender: ClientIdentity }
  | { family: 'ctl'; path: string };

/** Parses a topic back to its address (and, for a request, its sender); undefined when it is not in the contract. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  if (!topic.startsWith(TOPIC_PREFIX)) return undefined;
  const levels = topic.slice(TOPIC_PREFIX.length).split('/');
  const [family, a, b, c, ...rest] = levels;
  if (family === 'sd' && b === 'req' && c !== undefined && rest.length === 0 && a !== undefined) {
    const address = parseAddress(`sd/${a}`);
    const sender = identityOf(c);
    if (address?.kind !== 'server' || !sender || `${address.shard}` !== a) return undefined;
    return { family: 'req', shard: address.shard, address: serverAddress(address.shard), sender };
  }
  if ((family === 'tm' || family === 'pos') && b === 'resp' && c === undefined && a !== undefined && ENDPOINT_ID_PATTERN.test(a)) {
    return { family: 'resp', role: family === 'tm' ? 'terminal' : 'pos', id: a, address: a };
  }
  // Under ctl/sd/ and ctl/ack/ only the exact shapes of a server's commands and answers are in the contract.
  if (family === 'ctl' && a === 'sd') {
    const address = parseAddress(`sd/${b}`);
    const exact = c === 'cmd' && rest.length === 0 && address?.kind === 'server' && `${address.shard}` === b;
    return exact ? { family: 'ctlCmd', shard: address.shard } : undefined;
  }
  if (family === 'ctl' && a === 'ack') {
    const sender = b !== undefined && c === undefined ? identityOf(b) : undefined;
    return sender?.role === 'server' ? { family: 'ctlAck', sender } : undefined;
  }
  if (family === 'ctl' && levels.length > 1 && levels.every((l) => l.length > 0)) return { family: 'ctl', path: levels.slice(1).join('/') };
  return undefined;
}

/** The link address a topic stands for (`sd/{shard}`, a terminal id or a POS id). */
export function addressOfTopic(topic: string): string | undefined {
  const parsed = parseTopic(topic);
  return parsed && (parsed.family === 'req' || parsed.family === 'resp') ? parsed.address : undefined;
}

// ---------------------------------------------------------------- ACL

export interface AclRule {
  /** read = subscribe and receive; write = publish. */
  access: 'read' | 'write';
  /** An MQTT topic filter; `+` only where the role needs it. */
  filter: string;
}

/** Every rule of an identity. A client may do only what one of its rules allows; everything else is refused. */
export function aclRules(identity: ClientIdentity): AclRule[] {
  switch (identity.role) {
    case 'terminal':
    case 'pos':
      return [
        { access: 'write', filter: `${TOPIC_PREFIX}sd/+/req/${usernameOf(identity)}` },
        { access: 'read', filter: responseTopic(identity.role, identity.id) },
        { access: 'read', filter: CONTROL_TOPIC },
        { access: 'write', filter: metricsTopic(identity) },
      ];
    case 'server':
      return [
        ...(identity.shards ?? []).map((shard) => ({ access: 'read' as const, filter: requestFilter(shard) })),
        { access: 'write', filter: `${TOPIC_PREFIX}tm/+/resp` },
        { access: 'write', filter: `${TOPIC_PREFIX}pos/+/resp` },
        { access: 'read', filter: CONTROL_TOPIC },
        { access: 'write', filter: metricsTopic(identity) },
        // Control commands for its own shards only, and answers under its own name only.
        ...controlSubscriptionsOf(identity).map((filter) => ({ access: 'read' as const, filter })),
        { access: 'write', filter: controlAckTopic(identity) },
      ];
    case 'harness':
      return [
        { access: 'write', filter: CONTROL_TOPIC },
        { access: 'read', filter: `${TOPIC_PREFIX}ctl/metrics/+` },
        { access: 'write', filter: `${TOPIC_PREFIX}ctl/sd/+/cmd` },
        { access: 'read', filter: CONTROL_ACK_FILTER },
      ];
  }
}

/** True when `topic` (no wildcards) matches the MQTT filter `filter`. */
export function topicMatches(filter: string, topic: string): boolean {
  return levelsMatch(filter.split('/'), topic.split('/'));
}

/** `topicMatches` on the levels of a filter and a topic. */
function levelsMatch(f: readonly string[], t: readonly string[]): boolean {
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when every topic matched by `subscription` is matched by `filter` (the filter covers the subscription). */
export function filterCovers(filter: string, subscription: string): boolean {
  const f = filter.split('/');
  const s = subscription.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= s.length || s[i] === '#') return false;
    if (f[i] !== '+' && (s[i] === '+' || f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#');
}

/** May `identity` publish on `topic`? Publishing on a wildcard topic is never allowed. */
export function mayPublish(identity: ClientIdentity, topic: string): boolean {
  return publishCheckOf(identity)(topic);
}

/**
 * `mayPublish` of one identity, for a broker that asks it of every message a client publishes: the identity's
 * write rules are built and their filters split once, not for every message.
 */
export function publishCheckOf(identity: ClientIdentity): (topic: string) => boolean {
  const filters = aclRules(identity).filter((r) => r.access === 'write').map((r) => r.filter.split('/'));
  return (topic) => {
    if (hasWildcard(topic)) return false;
    const t = topic.split('/');
    return filters.some((f) => levelsMatch(f, t));
  };
}

/** May `identity` subscribe to `filter`? Only filters its read rules cover, so no wider wildcard than the rule has. */
export function maySubscribe(identity: ClientIdentity, filter: string): boolean {
  return aclRules(identity).some((r) => r.access === 'read' && filterCovers(r.filter, filter));
}

/** The subscriptions an endpoint makes to receive its messages. */
export function subscriptionsOf(identity: ClientIdentity): string[] {
  switch (identity.role) {
    case 'terminal':
    case 'pos':
      return [responseTopic(identity.role, identity.id)];
    case 'server':
      return (identity.shards ?? []).map(requestFilter);
    case 'harness':
      return [`${TOPIC_PREFIX}ctl/metrics/+`];
  }
}
