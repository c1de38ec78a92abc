// Goal: what a caller of broker/mqttLink.ts gives and gets — the link's options, the shaper (a lossy radio) and
// control-channel hooks it accepts, the counters it keeps, and the identity an endpoint connects as.
// Method: types and two small constructors only, so that the swarm worker, the radio, the payment server's control
// channel and the run record can name them without the link's connection code.

import type { LinkInput } from '../machines/link.ts';
import type { LinkMessage } from '../machines/messages.ts';
import type { BackoffPolicy } from './linkPolicy.ts';
import { ENDPOINT_ID_PATTERN, serverIdentity, type ClientIdentity } from './topics.ts';

/** Counters shared by every link made from one `createMqttLink` (pass your own to read them). */
export interface LinkStats {
  connectAttempts: number;
  connects: number;
  disconnects: number;
  /** Connections ended because a subscription was refused (SUBACK 0x80). */
  subscribeRefusals: number;
  sent: number;
  /** `link.send` while the link was down: dropped, the sender's outbox retries. */
  droppedWhileDown: number;
  /** `link.send` with no route in the topic contract, or larger than the size limit: dropped. */
  unroutable: number;
  publishErrors: number;
  received: number;
  /** Incoming payloads refused by decodeMessage, by code. */
  rejected: Record<string, number>;
  // What the `shaper` did (all 0 without one), under the virtual network's names for the same faults.
  /** Messages the shaper dropped. */
  lost: number;
  /** Messages the shaper passed twice. */
  duplicated: number;
  /** Messages the shaper held back so that later ones overtook them. */
  reordered: number;
  /** Messages the shaper passed after a delay rather than at once. */
  delayed: number;
  /** Messages the shaper delayed whose connection had ended when their delay ran out: dropped. */
  droppedInFlight: number;
  /** Times an endpoint moved to the next broker of its list after a failed attempt (0 with one broker). */
  failovers: number;
}

export function createLinkStats(): LinkStats {
  return {
    connectAttempts: 0, connects: 0, disconnects: 0, subscribeRefusals: 0, sent: 0, droppedWhileDown: 0, unroutable: 0, publishErrors: 0, received: 0, rejected: {},
    lost: 0, duplicated: 0, reordered: 0, delayed: 0, droppedInFlight: 0, failovers: 0,
  };
}
/**
 * What a lossy radio does to a device's messages. Each hook gets one message's way on (`pass`) and calls it
 * zero, one or more times, at once or later; it counts what it did in the link's `LinkStats`.
 */
export interface LinkShaper {
  /** A message `endpointId` publishes. */
  outgoing(endpointId: string, pass: () => void): void;
  /** A valid message that reached `endpointId` from the broker. */
  incoming(endpointId: string, pass: () => void): void;
  /**
   * True when the next message of `endpointId` would pass at once and untouched (no knob on, nothing of its
   * waiting): the link then sends or delivers it itself, without making a `pass` closure for every message.
   */
  passesAtOnce?(endpointId: string): boolean;
}

export interface MqttLinkOptions {
  /** `mqtt://host:port` or `ws://host:port`, or several separated by commas (see the header). */
  url: string;
  /**
   * Brokers a terminal or POS moves on to after every one of `url`'s, never starts on (comma-separated): the
   * servers' brokers of a Redis cluster, say, which carry the same messages.
   */
  failoverUrl?: string;
  /** The run's secret; each endpoint's password is derived from it. */
  secret: string;
  /** Seed of the reconnect jitter; each endpoint mixes in its own id so endpoints draw different delays. */
  seed: number;
  keepaliveSec?: number;
  connectTimeoutMs?: number;
  /** Reconnect backoff of every endpoint of the link; by default its role's (broker/linkPolicy.ts `defaultBackoffOf`). */
  backoff?: BackoffPolicy;
  maxMessageBytes?: number;
  stats?: LinkStats;
  /** Loss, duplication and delay between the endpoint and the broker; none when absent. */
  shaper?: LinkShaper;
  /** A man in the middle on the radio path (alteredInFlight): may return a copy sent in place of an outgoing message; hears every valid incoming one. */
  tamper?: { outgoing(endpointId: string, message: LinkMessage): LinkMessage | undefined; heard(endpointId: string, message: LinkMessage): void };
  /** Gets the id of each endpoint whose link came up at least once: one that never got in tells a test bed that
   *  could not host the fleet (a broker refusing connections) from a fault of the system under test. */
  everConnected?: Set<string>;
  /**
   * Harness control messages for this endpoint (a payment server's `pf/v1/ctl/sd/{shard}/cmd`): with it the link
   * also subscribes to the endpoint's control topics and hands what arrives there to `receive`, not to the machine.
   */
  control?: ControlChannel;
}

/** What a link does with harness control messages; see `MqttLinkOptions.control`. */
export interface ControlChannel {
  /**
   * A payload that arrived on one of the endpoint's control topics, unchecked (decode it with `decodeControl`).
   * `publish` sends a reply at QoS 1 on the connection that is up when it is called; while down it drops the
   * reply and returns false (the harness resends its command, so the receiver must answer idempotently).
   */
  receive(topic: string, payload: Buffer, publish: (topic: string, payload: string) => boolean): void;
}

/** The identity a link endpoint connects as. */
export function identityOfLink(input: LinkInput): ClientIdentity {
  if (input.role === 'server') {
    if (!input.shards || input.shards.length === 0) throw new Error(`noShards: server link ${JSON.stringify(input.endpointId)} has no shards`);
    return serverIdentity(input.shards);
  }
  if (!ENDPOINT_ID_PATTERN.test(input.endpointId)) {
    throw new Error(`badEndpointId: ${JSON.stringify(input.endpointId)} does not match ${ENDPOINT_ID_PATTERN.source}, so it cannot name MQTT topics`);
  }
  return { role: input.role, id: input.endpointId };
}
