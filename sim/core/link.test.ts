import { describe, it, expect } from 'vitest';
import { assign, createActor, sendTo, setup } from 'xstate';
import type { LinkCommand, LinkEvent } from '../../machines/link.ts';
import type { LinkMessage, ServerResult } from '../../machines/messages.ts';
import { Scheduler } from './scheduler.ts';
import { Prng } from './prng.ts';
import { SimNetwork } from './network.ts';
import { createSimLink } from './link.ts';

type ClientEvent = LinkEvent | { type: 'coverage'; inCoverage: boolean } | { type: 'ask' };

/** A client that asks shard 0 once per `ask` and records what its link tells it. */
const client = setup({
  types: {} as { context: { log: string[]; asked: number }; events: ClientEvent; input: { id: string; inCoverage: boolean } },
  actors: { link: createSimLink(new SimNetwork(new Scheduler(), new Prng(0))) },
}).createMachine({
  context: { log: [], asked: 0 },
  invoke: { src: 'link', id: 'link', input: ({ self }) => ({ endpointId: self.id, role: 'terminal' as const, inCoverage: true }) },
  on: {
    'link.up': { actions: assign({ log: ({ context }) => [...context.log, 'up'] }) },
    'link.down': { actions: assign({ log: ({ context }) => [...context.log, 'down'] }) },
    'link.message': { actions: assign({ log: ({ context, event }) => [...context.log, `result ${event.message.reqId}`] }) },
    coverage: { actions: sendTo('link', ({ event }) => ({ type: 'link.coverage', inCoverage: event.inCoverage }) satisfies LinkCommand) },
    ask: {
      actions: [
        sendTo('link', ({ context, self }) => ({ type: 'link.send', to: 'sd/0', message: { kind: 'sync', reqId: `q${context.asked}`, from: self.id, sig: '', meansId: 'm1' } }) satisfies LinkCommand),
        assign({ asked: ({ context }) => context.asked + 1 }),
      ],
    },
  },
});

/** A server on shard 0 that answers every request to its sender. */
const server = setup({
  types: {} as { events: LinkEvent },
  actors: { link: createSimLink(new SimNetwork(new Scheduler(), new Prng(0))) },
}).createMachine({
  invoke: { src: 'link', id: 'link', input: { endpointId: 'server-a', role: 'server' as const, shards: [0], inCoverage: true } },
  on: {
    'link.message': {
      actions: sendTo('link', ({ event }) => {
        const request = event.message as Extract<LinkMessage, { kind: 'sync' }>;
        const result: ServerResult = { kind: 'result', reqId: request.reqId, to: request.from, requestKind: 'sync', ok: true, code: 'ok', serverSig: '' };
        return { type: 'link.send', to: request.from, message: result } satisfies LinkCommand;
      }),
    },
  },
});

function world() {
  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, new Prng(1).fork('network'), { oneWayDelayMsMedian: 40, oneWayDelayMsP99: 40 });
  const link = createSimLink(network);
  const traced: string[] = [];
  network.onDeliver = (timeMs, from, to, message) => traced.push(`${timeMs} ${from}→${to} ${message.kind} ${message.reqId}`);
  const sd = createActor(server.provide({ actors: { link } }), { clock: scheduler.clock }).start();
  const t1 = createActor(client.provide({ actors: { link } }), { id: 't1', clock: scheduler.clock, input: { id: 't1', inCoverage: true } }).start();
  return { scheduler, network, sd, t1, traced };
}

describe('createSimLink', () => {
  it('says link.up at start, and carries a request and its answer over the network', () => {
    const { scheduler, t1, traced } = world();
    expect(t1.getSnapshot().context.log).toEqual(['up']);
    t1.send({ type: 'ask' });
    scheduler.runUntil(1000);
    expect(t1.getSnapshot().context.log).toEqual(['up', 'result q0']);
    expect(traced).toEqual(['40 t1→sd/0 sync q0', '80 sd/0→t1 result q0']);
  });

  it('turns coverage changes into network state and link.down / link.up, and sends nothing out of coverage', () => {
    const { scheduler, network, t1 } = world();
    t1.send({ type: 'coverage', inCoverage: false });
    expect(network.isUp('t1')).toBe(false);
    t1.send({ type: 'coverage', inCoverage: false });
    t1.send({ type: 'ask' });
    scheduler.runUntil(1000);
    t1.send({ type: 'coverage', inCoverage: true });
    expect(t1.getSnapshot().context.log).toEqual(['up', 'down', 'up']);
    expect(network.counters.droppedDown).toBe(1);
  });

  it('tells the machine about a broker crash and restart', () => {
    const { scheduler, network, t1 } = world();
    scheduler.at(100, () => network.setAllDown(true));
    scheduler.at(200, () => network.setAllDown(false));
    scheduler.runUntil(1000);
    expect(t1.getSnapshot().context.log).toEqual(['up', 'down', 'up']);
  });

  it('attaches a server on each of its shards and detaches when the actor stops', () => {
    const { network, sd, t1 } = world();
    expect(network.isAttached('sd/0')).toBe(true);
    expect(network.isAttached('t1')).toBe(true);
    sd.stop();
    t1.stop();
    expect(network.isAttached('sd/0')).toBe(false);
    expect(network.isAttached('t1')).toBe(false);
    expect(network.connectedCount).toBe(0);
  });
});
