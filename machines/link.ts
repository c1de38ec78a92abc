// Goal: the contract between a machine and its `link` (MC, the mobile network to SD) or `nearLink` (ICP, the
// short-range link to a POS) child actor. Machines do no I/O: they send these events to the child and receive
// these events back. The simulator's network and the MQTT client each implement the child, and are swapped in
// with `machine.provide({ actors: { link } })`.
// Method: a handful of typed events and the address scheme. An address is a terminal id, a POS id, or
// `sd/{shard}` for a payment-server shard.

import type { LinkMessage, PaymentOrder, ProxyResponse } from './messages.ts';

/** Input every link child receives. */
export interface LinkInput {
  /** The address this endpoint receives on: terminal id, POS id, or `sd/{shard}` (a server hosts several). */
  endpointId: string;
  role: 'terminal' | 'pos' | 'server';
  /** For a server: the shards it serves; it receives on `sd/{shard}` for each. */
  shards?: number[];
  /** Starting radio coverage of a terminal or POS (servers are always covered). */
  inCoverage: boolean;
}

/** Parent → link. */
export type LinkCommand =
  | { type: 'link.send'; to: string; message: LinkMessage }
  /** Radio coverage changed: out of coverage the link drops its connection and does not reconnect. */
  | { type: 'link.coverage'; inCoverage: boolean };

/** Link → parent. `link.up` means SD can be reached now (∃φ); messages sent while down are lost. */
export type LinkEvent =
  | { type: 'link.up' }
  | { type: 'link.down' }
  | { type: 'link.message'; message: LinkMessage }
  /** A message arrived that failed validation; it was dropped, and this tells why (for metrics). */
  | { type: 'link.rejected'; reason: string };

/** Parent → near link (ICP): a proxy answers the POS that sent an order. */
export type NearLinkCommand = { type: 'near.send'; to: string; response: ProxyResponse } | { type: 'near.order'; to: string; order: PaymentOrder };

/** Near link → parent. */
export type NearLinkEvent =
  | { type: 'near.order'; from: string; order: PaymentOrder }
  | { type: 'near.response'; from: string; response: ProxyResponse };

export function serverAddress(shard: number): string {
  return `sd/${shard}`;
}

/** Shard of a payment means: FNV-1a of its id, so one means is always served by one shard. */
export function shardOf(meansId: string, shardCount: number): number {
  // A purse of local value (`{funding}/v:{proxy}`, domain/localValue.ts) lives on its funding means' shard, so a
  // reload moves money inside one shard's ledger: only the part before the first '/' is hashed.
  const slash = meansId.indexOf('/');
  const end = slash < 0 ? meansId.length : slash;
  let h = 0x811c9dc5;
  for (let i = 0; i < end; i++) h = Math.imul(h ^ meansId.charCodeAt(i), 0x01000193) >>> 0;
  return h % shardCount;
}
