// Goal: the simulated network of a virtual run — what the broker and the radio do to a message between two
// endpoints (terminal id, POS id, `sd/{shard}`): latency, loss, duplication, reordering, coverage, shard
// partitions and a broker crash, each a named knob that can change while the run goes on.
// Method: `send` decides the message's fate at once with the network's own PRNG stream and schedules its arrival
// on the scheduler; the receiver's state is checked again on arrival, since it may have lost coverage or been
// partitioned meanwhile. Latency is log-normal (median, p99). Each (from, to) channel is FIFO, as an MQTT topic
// is for one publisher: a message never arrives before one sent earlier on its channel, unless the reorder knob
// picks it, in which case it gets an extra delay that later messages overtake. A duplicate arrives once more
// after a further delay. Every drop is counted by cause; every delivery goes through the `onDeliver` hook that
// feeds the trace hash.

import type { LinkMessage } from '../../machines/messages.ts';
import { DomainError } from '../../machines/domain/money.ts';
import type { Prng } from './prng.ts';
import type { TimeSource } from './timeSource.ts';
import type { Network } from '../scenario/types.ts';

/** The fault knobs; all may change at run time through `setOptions`. */
export interface NetworkOptions {
  /** Probability that a message is lost on the way. */
  lossProbability: number;
  /** Probability that a message is delivered twice. */
  duplicateProbability: number;
  /** Probability that a message is held back so that later messages of its channel overtake it. */
  reorderProbability: number;
  /** Median one-way delay (ms); 0 means instant delivery. */
  oneWayDelayMsMedian: number;
  /** 99th percentile of the one-way delay (ms), ≥ the median. */
  oneWayDelayMsP99: number;
}

export const defaultNetworkOptions: Readonly<NetworkOptions> = {
  lossProbability: 0,
  duplicateProbability: 0,
  reorderProbability: 0,
  oneWayDelayMsMedian: 40,
  oneWayDelayMsP99: 250,
};

export interface NetworkCounters {
  /** `send` calls (injected messages are counted apart). */
  sent: number;
  /** Arrivals handed to an endpoint (duplicates and injected messages included). */
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** Dropped because the sender or the receiver was down: out of coverage, detached, or the broker crashed. */
  droppedDown: number;
  /** Dropped because the sender or the receiver was partitioned off. */
  droppedPartition: number;
  /** Messages put on the wire by `inject` (the nemesis's forgeries and replays). */
  injected: number;
  /** Endpoints that came up again after being down while attached. */
  reconnects: number;
}

/** How an endpoint receives a message. */
export type Deliver = (message: LinkMessage, from: string) => void;

/** Called for every delivered message, just before the endpoint receives it. */
export type DeliverHook = (timeMs: number, from: string, to: string, message: LinkMessage) => void;

export interface AttachOptions {
  /** Starting radio coverage (default true). */
  inCoverage?: boolean;
  /** Called when the endpoint goes up or down (coverage change, broker crash or restart). */
  onStatus?: (up: boolean) => void;
}

/** A sender's FIFO floors are first swept of past entries when it holds this many. */
const FLOOR_SWEEP_SIZE = 32;

class Endpoint {
  up: boolean;
  /**
   * Per receiver, the latest arrival scheduled on this sender's channel to it: the earliest the next message may
   * arrive. The most recent channel sits in two plain fields (a terminal talks to one shard, so it never needs
   * more); other channels with messages in flight go to the map. Entries in the past constrain nothing and are
   * swept, so the map stays small even for a server that talks to thousands of terminals.
   */
  floorTo: string | undefined;
  floorMs = 0;
  floors: Map<string, number> | undefined;
  /** The floors' size that triggers the next sweep: twice what the last sweep left, so sweeping is amortised O(1). */
  sweepAt = FLOOR_SWEEP_SIZE;
  constructor(
    readonly address: string,
    public deliver: Deliver,
    public inCoverage: boolean,
    public onStatus: ((up: boolean) => void) | undefined,
    allDown: boolean,
  ) {
    this.up = inCoverage && !allDown;
  }
}

/** `base` with the knobs of `patch` changed; throws `badNetworkOption` unless every knob is in range. */
export function patchNetworkOptions(base: NetworkOptions, patch: Partial<NetworkOptions>): NetworkOptions {
  const next = { ...base, ...patch };
  checkNetworkOptions(next);
  return next;
}

/** Throws `badNetworkOption` unless every knob is in range. */
export function checkNetworkOptions(options: NetworkOptions): void {
  for (const name of ['lossProbability', 'duplicateProbability', 'reorderProbability'] as const) {
    const p = options[name];
    if (!(p >= 0 && p <= 1)) throw new DomainError('badNetworkOption', `${name} must be a probability in [0, 1]`, p);
  }
  const { oneWayDelayMsMedian: median, oneWayDelayMsP99: p99 } = options;
  if (!(median >= 0) || !Number.isFinite(median)) throw new DomainError('badNetworkOption', 'oneWayDelayMsMedian must be finite and ≥ 0', median);
  if (!(p99 >= median) || !Number.isFinite(p99)) throw new DomainError('badNetworkOption', 'oneWayDelayMsP99 must be finite and ≥ oneWayDelayMsMedian', p99);
}

/** The knobs of a scenario's `network` block. */
export function networkOptionsOf(network: Network): NetworkOptions {
  return {
    lossProbability: network.lossProbability,
    duplicateProbability: network.duplicateProbability,
    reorderProbability: network.reorderProbability,
    oneWayDelayMsMedian: network.latency.medianMs,
    oneWayDelayMsP99: network.latency.p99Ms,
  };
}

/** One draw of the one-way delay (ms): log-normal with the knobs' median and p99, or a constant. */
export function drawDelayMs(options: Readonly<NetworkOptions>, prng: Prng): number {
  const { oneWayDelayMsMedian: median, oneWayDelayMsP99: p99 } = options;
  if (median <= 0) return 0;
  if (p99 <= median) return median;
  return prng.lognormal(median, p99);
}

/** What the network does to one message that leaves a sender that is up. */
export type MessageFate =
  | { lost: true }
  | {
      lost: false;
      /** The drawn one-way delay (ms). */
      delayMs: number;
      /** Extra delay (ms) of a message held back so later ones overtake it; 0 when it keeps its channel's order. */
      holdBackMs: number;
      /** A duplicate arrives this long (ms) after the message itself; undefined when there is none. */
      duplicateAfterMs: number | undefined;
    };

/**
 * Draws a message's fate from `prng`, in a fixed order (loss, delay, reordering, duplication), each knob drawing
 * only when it is on, so that a seeded virtual run replays to the event. The caller applies FIFO order to
 * messages that are not held back.
 */
export function drawFate(options: Readonly<NetworkOptions>, prng: Prng): MessageFate {
  if (options.lossProbability > 0 && prng.chance(options.lossProbability)) return { lost: true };
  const delayMs = drawDelayMs(options, prng);
  let holdBackMs = 0;
  if (options.reorderProbability > 0 && prng.chance(options.reorderProbability)) {
    // Held back past the usual worst case, so later messages of the channel overtake it.
    const p99 = Math.max(options.oneWayDelayMsP99, 1);
    holdBackMs = p99 + prng.exponential(p99);
  }
  const duplicateAfterMs = options.duplicateProbability > 0 && prng.chance(options.duplicateProbability) ? drawDelayMs(options, prng) : undefined;
  return { lost: false, delayMs, holdBackMs, duplicateAfterMs };
}

export class SimNetwork {
  readonly counters: NetworkCounters = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    droppedDown: 0,
    droppedPartition: 0,
    injected: 0,
    reconnects: 0,
  };
  /** The trace hook: every delivered message, in delivery order. */
  onDeliver: DeliverHook | undefined;
  /** Called when an attached endpoint comes back up (a reconnect, for the metrics). */
  onReconnect: ((timeMs: number, address: string) => void) | undefined;
  /**
   * The nemesis's hand on the wire: given each message a sender puts on it, returns the message to carry instead
   * (modified in flight) or undefined to leave it alone. The replacement takes the original's fate and place.
   */
  tamper: ((from: string, to: string, message: LinkMessage) => LinkMessage | undefined) | undefined;

  private readonly endpoints = new Map<string, Endpoint>();
  /** Partitioned addresses and the time their partition ends. */
  private readonly partitions = new Map<string, number>();
  private current: NetworkOptions;
  private brokerDown = false;
  /** Goes up at each broker crash: a message sent before the crash is lost even if it lands after the restart. */
  private brokerEpoch = 0;
  private connected = 0;

  constructor(
    private readonly time: TimeSource,
    private readonly prng: Prng,
    options: Partial<NetworkOptions> = {},
  ) {
    this.current = patchNetworkOptions(defaultNetworkOptions, options);
  }

  get options(): Readonly<NetworkOptions> {
    return this.current;
  }

  /** Changes some knobs from now on; messages already on the way keep their fate. */
  setOptions(patch: Partial<NetworkOptions>): void {
    this.current = patchNetworkOptions(this.current, patch);
  }

  // ------------------------------------------------------------------ endpoints

  /** Registers the endpoint that receives on `address`, replacing any earlier one (a restarted device). */
  attach(address: string, deliver: Deliver, options: AttachOptions = {}): void {
    this.detach(address);
    const endpoint = new Endpoint(address, deliver, options.inCoverage ?? true, options.onStatus, this.brokerDown);
    this.endpoints.set(address, endpoint);
    if (endpoint.up) this.connected++;
  }

  /** Removes the endpoint on `address` — only if it is still the one with `deliver`, when given. */
  detach(address: string, deliver?: Deliver): void {
    const endpoint = this.endpoints.get(address);
    if (!endpoint || (deliver !== undefined && endpoint.deliver !== deliver)) return;
    this.endpoints.delete(address);
    if (endpoint.up) this.connected--;
  }

  /**
   * Gives the endpoint on `address` a new receiver, keeping everything else of it: coverage, up or down, and its
   * channels' FIFO floors (re-attaching would forget them and could let a later message overtake an earlier one).
   * A hibernating terminal's endpoint is handed to a stand-in that wakes it, and back to its new link on waking.
   * Returns false when nothing is attached there.
   */
  handOver(address: string, deliver: Deliver, onStatus: ((up: boolean) => void) | undefined): boolean {
    const endpoint = this.endpoints.get(address);
    if (!endpoint) return false;
    endpoint.deliver = deliver;
    endpoint.onStatus = onStatus;
    return true;
  }

  /** Tells the endpoint on `address` whether it is up now, as a change would (its link reports only real changes). */
  reportStatus(address: string): void {
    const endpoint = this.endpoints.get(address);
    endpoint?.onStatus?.(endpoint.up);
  }

  /** The receiver attached on `address` now (after a hand-over: the new one). */
  receiverOf(address: string): Deliver | undefined {
    return this.endpoints.get(address)?.deliver;
  }

  isAttached(address: string): boolean {
    return this.endpoints.has(address);
  }

  /** True when `address` is attached, in coverage and the broker is up (partitions aside). */
  isUp(address: string): boolean {
    return this.endpoints.get(address)?.up ?? false;
  }

  /** Attached endpoints that are up: the broker's connections in virtual mode. */
  get connectedCount(): number {
    return this.connected;
  }

  /** Radio coverage of an attached endpoint; returns false when nothing is attached there. */
  setCoverage(address: string, inCoverage: boolean): boolean {
    const endpoint = this.endpoints.get(address);
    if (!endpoint) return false;
    endpoint.inCoverage = inCoverage;
    this.refresh(endpoint);
    return true;
  }

  /** Cuts `address` (a shard, `sd/{n}`) off the network until virtual time `untilMs`, or until `heal`. */
  partition(address: string, untilMs: number): void {
    if (Number.isNaN(untilMs)) throw new DomainError('badTime', 'a partition needs an end time', untilMs);
    this.partitions.set(address, untilMs);
  }

  heal(address: string): void {
    this.partitions.delete(address);
  }

  isPartitioned(address: string): boolean {
    const untilMs = this.partitions.get(address);
    if (untilMs === undefined) return false;
    if (this.time.now() >= untilMs) {
      this.partitions.delete(address);
      return false;
    }
    return true;
  }

  /** A broker crash (true) or restart (false): every endpoint goes down or comes back, messages on the way are lost. */
  setAllDown(down: boolean): void {
    if (this.brokerDown === down) return;
    this.brokerDown = down;
    if (down) this.brokerEpoch++;
    for (const endpoint of this.endpoints.values()) this.refresh(endpoint);
  }

  get allDown(): boolean {
    return this.brokerDown;
  }

  private refresh(endpoint: Endpoint): void {
    const up = endpoint.inCoverage && !this.brokerDown;
    if (up === endpoint.up) return;
    endpoint.up = up;
    if (up) {
      this.connected++;
      this.counters.reconnects++;
      this.onReconnect?.(this.time.now(), endpoint.address);
    } else {
      this.connected--;
    }
    endpoint.onStatus?.(up);
  }

  // ------------------------------------------------------------------ messages

  /** Sends `message` from the endpoint on `from` to the one on `to`, through every fault knob. */
  send(from: string, to: string, message: LinkMessage): void {
    this.counters.sent++;
    const sender = this.endpoints.get(from);
    if (sender === undefined || !sender.up) {
      this.counters.droppedDown++;
      return;
    }
    if (this.partitions.size > 0 && (this.isPartitioned(from) || this.isPartitioned(to))) {
      this.counters.droppedPartition++;
      return;
    }
    if (this.tamper !== undefined) message = this.tamper(from, to, message) ?? message;
    const fate = drawFate(this.current, this.prng);
    if (fate.lost) {
      this.counters.lost++;
      return;
    }
    const nowMs = this.time.now();
    let arrivalMs = nowMs + fate.delayMs;
    if (fate.holdBackMs > 0) {
      // Off the channel's FIFO floor, so later messages overtake it.
      this.counters.reordered++;
      arrivalMs += fate.holdBackMs;
    } else {
      arrivalMs = this.fifoArrival(sender, to, nowMs, arrivalMs);
    }
    const epoch = this.brokerEpoch;
    this.time.at(arrivalMs, () => this.arrive(from, to, message, epoch));
    if (fate.duplicateAfterMs !== undefined) {
      this.counters.duplicated++;
      this.time.at(arrivalMs + fate.duplicateAfterMs, () => this.arrive(from, to, message, epoch));
    }
  }

  /**
   * Puts a message on the wire as if `from` had sent it, whatever `from`'s state, with no loss, duplication or
   * reordering (the nemesis's forgeries and replays). The receiver is still checked on arrival.
   */
  inject(from: string, to: string, message: LinkMessage): void {
    this.counters.injected++;
    const epoch = this.brokerEpoch;
    this.time.at(this.time.now() + drawDelayMs(this.current, this.prng), () => this.arrive(from, to, message, epoch));
  }

  private fifoArrival(sender: Endpoint, to: string, nowMs: number, arrivalMs: number): number {
    const inFields = sender.floorTo === to;
    const floorMs = inFields ? sender.floorMs : sender.floors?.get(to);
    // Equal times keep send order: the scheduler runs ties first in, first out.
    const fifoMs = floorMs !== undefined && floorMs > arrivalMs ? floorMs : arrivalMs;
    if (inFields || sender.floorTo === undefined || sender.floorMs <= nowMs) {
      // The fields hold this channel, or a channel with nothing in flight that may be forgotten.
      if (!inFields && floorMs !== undefined) sender.floors!.delete(to);
      sender.floorTo = to;
      sender.floorMs = fifoMs;
      return fifoMs;
    }
    let floors = sender.floors;
    if (floors === undefined) {
      floors = new Map();
      sender.floors = floors;
    }
    if (floorMs === undefined && floors.size >= sender.sweepAt) {
      for (const [receiver, ms] of floors) if (ms <= nowMs) floors.delete(receiver);
      sender.sweepAt = Math.max(FLOOR_SWEEP_SIZE, 2 * floors.size);
    }
    floors.set(to, fifoMs);
    return fifoMs;
  }

  private arrive(from: string, to: string, message: LinkMessage, epoch: number): void {
    const receiver = this.endpoints.get(to);
    if (receiver === undefined || !receiver.up || epoch !== this.brokerEpoch) {
      this.counters.droppedDown++;
      return;
    }
    if (this.partitions.size > 0 && this.isPartitioned(to)) {
      this.counters.droppedPartition++;
      return;
    }
    this.counters.delivered++;
    this.onDeliver?.(this.time.now(), from, to, message);
    receiver.deliver(message, from);
  }
}
