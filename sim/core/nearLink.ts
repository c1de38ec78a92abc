// Goal: the near link (ICP) of a virtual fleet — a short fixed delay, no loss, and no need of coverage — between
// terminals and POS units that meet each other.
// Method: every terminal and POS has one, though only those that meet each other use it, so it is a bare actor
// logic rather than `fromCallback`: no callback state, receiver set or closures per endpoint (about 0.4 KB less
// heap per terminal, measured in a swarm worker with 5,000 terminals). Each endpoint is registered under its id
// with what it delivers to (the link's parent) from start until stop, as the callback version did; a hibernating
// terminal leaves a stand-in there that wakes it (hibernation.ts).

import type { CallbackActorLogic } from 'xstate';
import type { NearLinkCommand, NearLinkEvent } from '../../machines/link.ts';
import type { TimeSource } from './timeSource.ts';
import type { NearEndpoint } from './hibernation.ts';

/** The `nearLink` actor logic; `endpoints` maps each endpoint id to its receiver. */
export function createNearLink(endpoints: Map<string, NearEndpoint>, time: TimeSource, delayMs: number): CallbackActorLogic<NearLinkCommand, { endpointId: string }> {
  return {
    config: 'nearLink',
    getInitialSnapshot: (_scope, input) => ({ status: 'active', output: undefined, error: undefined, input }),
    start: (snapshot, { self }) => {
      if (self._parent) endpoints.set(snapshot.input.endpointId, self._parent);
    },
    transition: (snapshot, command, { self }) => {
      const from = snapshot.input.endpointId;
      if ((command as { type: string }).type === 'xstate.stop') {
        if (endpoints.get(from) === self._parent) endpoints.delete(from);
        return { ...snapshot, status: 'stopped', error: undefined };
      }
      time.schedule(delayMs, () => {
        const target = endpoints.get(command.to);
        if (!target) return;
        if (command.type === 'near.order') target.send({ type: 'near.order', from, order: command.order } satisfies NearLinkEvent);
        else target.send({ type: 'near.response', from, response: command.response } satisfies NearLinkEvent);
      });
      return snapshot;
    },
    getPersistedSnapshot: (snapshot) => snapshot,
  };
}
