// Goal: the `link` child actor of machines/link.ts for the virtual mode — a machine's connection to the
// simulated network, so the machines run unchanged on top of `SimNetwork`.
// Method: an XState `fromCallback` that attaches its address(es) to the network and turns the link contract into
// network calls: `link.send` → `network.send`, `link.coverage` → `network.setCoverage`. The network reports
// every up/down change (coverage, broker crash and restart), and the link passes each real change on as
// `link.up` / `link.down`, once. A server attaches `sd/{shard}` for each shard it serves and sends from its first
// shard's address, so a partition of that shard silences its answers too. Stopping the actor detaches it.
// A terminal waking from hibernation (hibernation.ts) resumes its endpoint instead: the endpoint never left the
// network, so the link takes it back with a hand-over and starts from the up/down its proxy last heard.

import { fromCallback, type CallbackActorLogic } from 'xstate';
import { serverAddress, type LinkCommand, type LinkEvent, type LinkInput } from '../../machines/link.ts';
import type { LinkMessage } from '../../machines/messages.ts';
import type { SimNetwork } from './network.ts';

/** The addresses a link receives on: `sd/{shard}` for each shard of a server, else its endpoint id. */
export function linkAddresses(input: LinkInput): string[] {
  return input.role === 'server' ? (input.shards ?? []).map(serverAddress) : [input.endpointId];
}

/**
 * The input of a terminal's link restored from hibernation: `resumeUp` is whether the link was up when the
 * terminal went to sleep, which its proxy knows as `linkUp`. Only the virtual mode's fleet makes it.
 */
export interface ResumedLinkInput extends LinkInput {
  resumeUp: boolean;
}

function isResumed(input: LinkInput): input is ResumedLinkInput {
  return typeof (input as Partial<ResumedLinkInput>).resumeUp === 'boolean';
}

/** The link logic for `machine.provide({ actors: { link: createSimLink(network) } })`. */
export function createSimLink(network: SimNetwork): CallbackActorLogic<LinkCommand, LinkInput> {
  return fromCallback<LinkCommand, LinkInput>(({ input, receive, sendBack }) => {
    const emit = sendBack as (event: LinkEvent) => void;
    const addresses = linkAddresses(input);
    const source = addresses[0] ?? input.endpointId;
    // Servers are always in coverage; terminals and POS units start as their input says.
    const inCoverage = input.role === 'server' || input.inCoverage;
    let up = false;
    const report = (): void => {
      const now = network.isUp(source);
      if (now === up) return;
      up = now;
      emit({ type: up ? 'link.up' : 'link.down' });
    };
    const deliver = (message: LinkMessage): void => emit({ type: 'link.message', message });
    if (isResumed(input) && network.isAttached(source)) {
      // The waking fleet asks for a report (`reportStatus`) once the terminal's timer is armed again, so that a
      // change that woke it (a `link.down` that cancels that timer) finds everything as it was.
      up = input.resumeUp;
      network.handOver(source, deliver, report);
    } else {
      for (const address of addresses) network.attach(address, deliver, { inCoverage, onStatus: report });
      report();
    }

    receive((command) => {
      if (command.type === 'link.send') {
        network.send(source, command.to, command.message);
      } else if (command.type === 'link.coverage') {
        if (input.role === 'server') return;
        for (const address of addresses) network.setCoverage(address, command.inCoverage);
      }
    });

    return () => {
      for (const address of addresses) network.detach(address, deliver);
    };
  });
}
