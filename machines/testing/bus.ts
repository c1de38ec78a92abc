// Goal: a small in-process bus for testing the machines together without the simulator: it implements the
// `link` and `nearLink` contracts of machines/link.ts, delivers messages in order, and lets a test drop,
// duplicate, hold back or forge messages.
// Method: endpoints register their `sendBack` by address; `link.send` queues the message, and `flush()`
// delivers the queue (and whatever the deliveries cause) until it is empty, so a test decides when the network
// "runs". Coverage is per endpoint; an endpoint out of coverage neither sends nor receives.

import { fromCallback } from 'xstate';
import type { LinkCommand, LinkEvent, LinkInput, NearLinkCommand, NearLinkEvent } from '../link.ts';
import type { LinkMessage } from '../messages.ts';

export interface BusMessage {
  from: string;
  to: string;
  message: LinkMessage;
}

/** Decides what happens to a message on its way: deliver, drop, or deliver twice. */
export type BusFilter = (m: BusMessage) => 'deliver' | 'drop' | 'duplicate';

export class TestBus {
  private readonly endpoints = new Map<string, { sendBack: (e: LinkEvent) => void; inCoverage: boolean }>();
  private readonly nearEndpoints = new Map<string, (e: NearLinkEvent) => void>();
  private queue: BusMessage[] = [];
  readonly delivered: BusMessage[] = [];
  readonly dropped: BusMessage[] = [];
  filter: BusFilter = () => 'deliver';

  readonly link = fromCallback<LinkCommand, LinkInput>(({ input, receive, sendBack }) => {
    const addresses = input.role === 'server' ? (input.shards ?? []).map((s) => `sd/${s}`) : [input.endpointId];
    const endpoint = { sendBack: sendBack as (e: LinkEvent) => void, inCoverage: input.inCoverage };
    for (const address of addresses) this.endpoints.set(address, endpoint);
    if (endpoint.inCoverage) sendBack({ type: 'link.up' });
    receive((command) => {
      if (command.type === 'link.coverage') {
        if (command.inCoverage === endpoint.inCoverage) return;
        endpoint.inCoverage = command.inCoverage;
        sendBack({ type: command.inCoverage ? 'link.up' : 'link.down' });
        return;
      }
      if (!endpoint.inCoverage) return;
      this.queue.push({ from: input.endpointId, to: command.to, message: command.message });
    });
    return () => {
      for (const address of addresses) if (this.endpoints.get(address) === endpoint) this.endpoints.delete(address);
    };
  });

  readonly nearLink = fromCallback<NearLinkCommand, { endpointId: string }>(({ input, receive, sendBack }) => {
    this.nearEndpoints.set(input.endpointId, sendBack as (e: NearLinkEvent) => void);
    receive((command) => {
      const target = this.nearEndpoints.get(command.to);
      if (!target) return;
      if (command.type === 'near.order') target({ type: 'near.order', from: input.endpointId, order: command.order });
      else target({ type: 'near.response', from: input.endpointId, response: command.response });
    });
    return () => {
      if (this.nearEndpoints.get(input.endpointId)) this.nearEndpoints.delete(input.endpointId);
    };
  });

  /** Messages waiting to be delivered. */
  get pending(): readonly BusMessage[] {
    return this.queue;
  }

  /** Puts a message on the bus as if `from` had sent it (forgeries, replays). */
  inject(m: BusMessage): void {
    this.queue.push(m);
  }

  /** Takes the waiting messages off the bus without delivering them (a network that swallows them). */
  takePending(): BusMessage[] {
    const taken = this.queue;
    this.queue = [];
    return taken;
  }

  /** Delivers until nothing is left; returns how many messages were delivered. */
  flush(maxMessages = 10_000): number {
    let count = 0;
    while (this.queue.length > 0) {
      if (++count > maxMessages) throw new Error(`TestBus.flush: more than ${maxMessages} messages, a loop?`);
      const m = this.queue.shift()!;
      const verdict = this.filter(m);
      if (verdict === 'drop') {
        this.dropped.push(m);
        continue;
      }
      const target = this.endpoints.get(m.to);
      if (!target || !target.inCoverage) {
        this.dropped.push(m);
        continue;
      }
      this.delivered.push(m);
      target.sendBack({ type: 'link.message', message: m.message });
      if (verdict === 'duplicate') target.sendBack({ type: 'link.message', message: structuredClone(m.message) });
    }
    return count;
  }
}
