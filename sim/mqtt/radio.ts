// Goal: the scenario's `network` knobs in mqtt mode — a lossy radio between each simulated device (terminal,
// POS) and the real broker that loses, duplicates, reorders and delays messages as the virtual mode's simulated
// network does, so a chaos scenario bites in both modes and the proxy's outbox and the server's idempotency
// still have to leave nothing lost and nothing paid twice.
// Method: a `LinkShaper` (broker/linkOptions.ts) for broker/mqttLink.ts, used by the swarm worker for its devices only: servers are not
// shaped, so each message between a device and a server meets the knobs once (leaving or reaching the device),
// as it does in the virtual network. Each message's fate is `drawFate` of sim/core/network.ts, drawn from the
// endpoint's own stream, forked from the run's seed by endpoint id, so a device's draws do not depend on which
// worker hosts it or on other devices' traffic. Delays are run time on the worker's `RealTime`, so they shrink with
// the time scale like every other delay of the run. Each direction of an endpoint is a FIFO lane, as one MQTT
// connection is: a message passes no earlier than the one before it, unless the reorder knob holds it back; a
// duplicate follows its original after a further delay, off the lane — both as in the virtual network.

import type { LinkShaper, LinkStats } from '../../broker/linkOptions.ts';
import { defaultNetworkOptions, drawFate, patchNetworkOptions, type NetworkOptions } from '../core/network.ts';
import type { Prng } from '../core/prng.ts';
import type { TimeSource } from '../core/timeSource.ts';

/** What the radio counts, in the worker's link stats (the coordinator sums them into `summary.network`). */
export type RadioCounters = Pick<LinkStats, 'lost' | 'duplicated' | 'reordered' | 'delayed'>;

interface Waiting {
  atMs: number;
  pass: () => void;
}

/** One direction of one endpoint: messages waiting for their time, in the order they will pass. */
interface Lane {
  readonly waiting: Waiting[];
  /** A timer is set for the head of `waiting`. */
  armed: boolean;
}

interface RadioEndpoint {
  readonly prng: Prng;
  readonly out: Lane;
  readonly in: Lane;
}

function quiet(options: NetworkOptions): boolean {
  return options.lossProbability === 0 && options.duplicateProbability === 0 && options.reorderProbability === 0 && options.oneWayDelayMsMedian <= 0;
}

export class Radio implements LinkShaper {
  private current: NetworkOptions;
  private readonly endpoints = new Map<string, RadioEndpoint>();

  /** `prng` is the radio's stream (the worker forks it from the run's seed); each endpoint forks its own from it. */
  constructor(
    private readonly time: TimeSource,
    private readonly prng: Prng,
    options: Partial<NetworkOptions>,
    readonly counters: RadioCounters,
  ) {
    this.current = patchNetworkOptions(defaultNetworkOptions, options);
  }

  get options(): Readonly<NetworkOptions> {
    return this.current;
  }

  /** Changes some knobs from now on; messages already waiting keep their fate. */
  setOptions(patch: Partial<NetworkOptions>): void {
    this.current = patchNetworkOptions(this.current, patch);
  }

  passesAtOnce(endpointId: string): boolean {
    return !this.endpoints.has(endpointId) && quiet(this.current);
  }

  outgoing(endpointId: string, pass: () => void): void {
    this.shape(endpointId, 'out', pass);
  }

  incoming(endpointId: string, pass: () => void): void {
    this.shape(endpointId, 'in', pass);
  }

  private shape(endpointId: string, direction: 'out' | 'in', pass: () => void): void {
    let endpoint = this.endpoints.get(endpointId);
    // A radio with every knob off costs nothing, not even an endpoint's stream.
    if (endpoint === undefined && quiet(this.current)) return pass();
    if (endpoint === undefined) {
      endpoint = { prng: this.prng.fork(endpointId), out: { waiting: [], armed: false }, in: { waiting: [], armed: false } };
      this.endpoints.set(endpointId, endpoint);
    }
    const fate = drawFate(this.current, endpoint.prng);
    if (fate.lost) {
      this.counters.lost++;
      return;
    }
    const nowMs = this.time.now();
    let arrivalMs = nowMs + fate.delayMs;
    if (fate.holdBackMs > 0) {
      // Off the lane, so the messages sent after it overtake it.
      this.counters.reordered++;
      this.counters.delayed++;
      arrivalMs += fate.holdBackMs;
      this.time.at(arrivalMs, pass);
    } else {
      arrivalMs = this.enqueue(endpoint[direction], nowMs, arrivalMs, pass);
    }
    if (fate.duplicateAfterMs !== undefined) {
      this.counters.duplicated++;
      this.time.at(arrivalMs + fate.duplicateAfterMs, pass);
    }
  }

  /** Queues `pass` on its lane no earlier than the message before it; returns when it will pass. */
  private enqueue(lane: Lane, nowMs: number, arrivalMs: number, pass: () => void): number {
    const last = lane.waiting[lane.waiting.length - 1];
    const atMs = last !== undefined && last.atMs > arrivalMs ? last.atMs : arrivalMs;
    if (lane.waiting.length === 0 && atMs <= nowMs) {
      pass();
      return atMs;
    }
    this.counters.delayed++;
    lane.waiting.push({ atMs, pass });
    if (!lane.armed) this.arm(lane);
    return atMs;
  }

  private arm(lane: Lane): void {
    lane.armed = true;
    this.time.at(lane.waiting[0]!.atMs, () => this.release(lane));
  }

  /** The head's time has come: it passes, and so does every message behind it whose time has come too. */
  private release(lane: Lane): void {
    lane.armed = false;
    const head = lane.waiting[0];
    if (head === undefined) return;
    // A real timer may fire a fraction of a millisecond early, so the head's own time counts as come.
    const limitMs = Math.max(this.time.now(), head.atMs);
    while (lane.waiting.length > 0 && lane.waiting[0]!.atMs <= limitMs) lane.waiting.shift()!.pass();
    if (lane.waiting.length > 0 && !lane.armed) this.arm(lane);
  }
}
