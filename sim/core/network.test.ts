import { describe, it, expect } from 'vitest';
import type { LinkMessage } from '../../machines/messages.ts';
import { Scheduler } from './scheduler.ts';
import { Prng } from './prng.ts';
import { SimNetwork, type NetworkOptions } from './network.ts';

function sync(reqId: string, from = 't1'): LinkMessage {
  return { kind: 'sync', reqId, from, sig: '', meansId: 'm1' };
}

interface Arrival {
  atMs: number;
  from: string;
  reqId: string;
}

function world(options: Partial<NetworkOptions> = {}, seed = 1) {
  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, new Prng(seed).fork('network'), options);
  const inbox = new Map<string, Arrival[]>();
  const attach = (address: string, inCoverage = true, onStatus?: (up: boolean) => void) => {
    const arrivals: Arrival[] = [];
    inbox.set(address, arrivals);
    network.attach(address, (message, from) => arrivals.push({ atMs: scheduler.now(), from, reqId: message.reqId }), { inCoverage, onStatus });
    return arrivals;
  };
  return { scheduler, network, attach, inbox };
}

const fixed40 = { oneWayDelayMsMedian: 40, oneWayDelayMsP99: 40 };

describe('SimNetwork', () => {
  it('delivers after the one-way delay and reports each delivery to the trace hook', () => {
    const { scheduler, network, attach } = world(fixed40);
    attach('t1');
    const server = attach('sd/0');
    const traced: Array<[number, string, string, string]> = [];
    network.onDeliver = (timeMs, from, to, message) => traced.push([timeMs, from, to, message.reqId]);
    scheduler.runUntil(10);
    network.send('t1', 'sd/0', sync('r1'));
    scheduler.runUntil(49);
    expect(server).toEqual([]);
    scheduler.runUntil(50);
    expect(server).toEqual([{ atMs: 50, from: 't1', reqId: 'r1' }]);
    expect(traced).toEqual([[50, 't1', 'sd/0', 'r1']]);
    expect(network.counters).toMatchObject({ sent: 1, delivered: 1, lost: 0, droppedDown: 0 });
  });

  it('keeps each channel FIFO under random latency when nothing is reordered', () => {
    const { scheduler, network, attach } = world({ oneWayDelayMsMedian: 40, oneWayDelayMsP99: 2000 });
    attach('t1');
    const server = attach('sd/0');
    for (let i = 0; i < 200; i++) {
      scheduler.schedule(i, () => network.send('t1', 'sd/0', sync(`r${i}`)));
    }
    scheduler.runUntil(60_000);
    expect(server.map((a) => a.reqId)).toEqual(Array.from({ length: 200 }, (_, i) => `r${i}`));
  });

  it('keeps FIFO per channel for a sender talking to many receivers at once', () => {
    const { scheduler, network, attach, inbox } = world({ oneWayDelayMsMedian: 40, oneWayDelayMsP99: 2000 });
    attach('sd/0');
    for (let t = 0; t < 100; t++) attach(`t${t}`);
    for (let i = 0; i < 20; i++) {
      for (let t = 0; t < 100; t++) scheduler.schedule(i * 10 + (t % 7), () => network.send('sd/0', `t${t}`, sync(`r${i}`, 'sd/0')));
    }
    scheduler.runUntil(600_000);
    for (let t = 0; t < 100; t++) expect(inbox.get(`t${t}`)!.map((a) => a.reqId)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
    expect(network.counters.delivered).toBe(2000);
  });

  it('lets later messages overtake a reordered one', () => {
    const { scheduler, network, attach } = world({ ...fixed40, reorderProbability: 1 });
    attach('t1');
    const server = attach('sd/0');
    network.send('t1', 'sd/0', sync('held'));
    network.setOptions({ reorderProbability: 0 });
    scheduler.runUntil(1);
    network.send('t1', 'sd/0', sync('next'));
    scheduler.runUntil(10_000);
    expect(server.map((a) => a.reqId)).toEqual(['next', 'held']);
    expect(network.counters.reordered).toBe(1);
  });

  it('loses every message at loss 1 and delivers every one twice at duplication 1', () => {
    const lossy = world({ ...fixed40, lossProbability: 1 });
    lossy.attach('t1');
    const nothing = lossy.attach('sd/0');
    for (let i = 0; i < 10; i++) lossy.network.send('t1', 'sd/0', sync(`r${i}`));
    lossy.scheduler.runUntil(1000);
    expect(nothing).toEqual([]);
    expect(lossy.network.counters.lost).toBe(10);

    const doubled = world({ ...fixed40, duplicateProbability: 1 });
    doubled.attach('t1');
    const twice = doubled.attach('sd/0');
    doubled.network.send('t1', 'sd/0', sync('r'));
    doubled.scheduler.runUntil(1000);
    expect(twice.map((a) => [a.atMs, a.reqId])).toEqual([[40, 'r'], [80, 'r']]);
    expect(doubled.network.counters).toMatchObject({ sent: 1, delivered: 2, duplicated: 1 });
  });

  it('drops what an endpoint out of coverage sends, and what arrives at one', () => {
    const { scheduler, network, attach } = world(fixed40);
    const terminal = attach('t1', false);
    attach('sd/0');
    network.send('t1', 'sd/0', sync('from-out-of-coverage'));
    expect(network.counters.droppedDown).toBe(1);
    network.setCoverage('t1', true);
    network.send('sd/0', 't1', sync('in-flight'));
    scheduler.runUntil(20);
    network.setCoverage('t1', false);
    scheduler.runUntil(100);
    expect(terminal).toEqual([]);
    expect(network.counters.droppedDown).toBe(2);
    network.send('sd/0', 'nobody', sync('to-nowhere'));
    scheduler.runUntil(200);
    expect(network.counters.droppedDown).toBe(3);
    expect(network.setCoverage('nobody', true)).toBe(false);
  });

  it('partitions a shard until a time or until healed, both ways', () => {
    const { scheduler, network, attach } = world(fixed40);
    const terminal = attach('t1');
    const server = attach('sd/0');
    network.partition('sd/0', 1000);
    network.send('t1', 'sd/0', sync('to-partitioned'));
    network.send('sd/0', 't1', sync('from-partitioned'));
    expect(network.counters.droppedPartition).toBe(2);
    scheduler.runUntil(1000);
    expect(network.isPartitioned('sd/0')).toBe(false);
    network.send('t1', 'sd/0', sync('after'));
    scheduler.runUntil(1100);
    expect(server.map((a) => a.reqId)).toEqual(['after']);
    network.partition('sd/0', 1_000_000);
    network.heal('sd/0');
    network.send('sd/0', 't1', sync('healed'));
    scheduler.runUntil(1200);
    expect(terminal.map((a) => a.reqId)).toEqual(['healed']);
  });

  it('takes every endpoint down on a broker crash and loses what was on the way', () => {
    const { scheduler, network, attach } = world(fixed40);
    const statuses: Array<[string, boolean]> = [];
    attach('t1', true, (up) => statuses.push(['t1', up]));
    attach('t2', false, (up) => statuses.push(['t2', up]));
    const server = attach('sd/0', true, (up) => statuses.push(['sd/0', up]));
    expect(network.connectedCount).toBe(2);
    network.send('t1', 'sd/0', sync('lost-in-crash'));
    scheduler.runUntil(10);
    network.setAllDown(true);
    expect(network.connectedCount).toBe(0);
    network.setAllDown(false);
    scheduler.runUntil(1000);
    expect(server).toEqual([]);
    expect(statuses).toEqual([['t1', false], ['sd/0', false], ['t1', true], ['sd/0', true]]);
    expect(network.counters.reconnects).toBe(2);
    expect(network.connectedCount).toBe(2);
  });

  it('detaches only the endpoint it is asked to, so a restarted device keeps its new attachment', () => {
    const { network, attach } = world(fixed40);
    attach('t1');
    const newer = (): void => {};
    network.attach('t1', newer);
    network.detach('t1', () => {});
    expect(network.isAttached('t1')).toBe(true);
    network.detach('t1', newer);
    expect(network.isAttached('t1')).toBe(false);
    expect(network.connectedCount).toBe(0);
  });

  it('delivers an injected message whatever the sender state, and counts it apart', () => {
    const { scheduler, network, attach } = world({ ...fixed40, lossProbability: 1 });
    const server = attach('sd/0');
    network.inject('t9', 'sd/0', sync('forged', 't9'));
    scheduler.runUntil(100);
    expect(server.map((a) => a.reqId)).toEqual(['forged']);
    expect(network.counters).toMatchObject({ sent: 0, injected: 1, delivered: 1 });
  });

  it('gives the same deliveries for the same seed and different ones for another seed', () => {
    const run = (seed: number) => {
      const { scheduler, network, attach } = world({ oneWayDelayMsMedian: 40, oneWayDelayMsP99: 400, lossProbability: 0.1, duplicateProbability: 0.1, reorderProbability: 0.1 }, seed);
      attach('t1');
      const server = attach('sd/0');
      for (let i = 0; i < 300; i++) scheduler.schedule(i * 7, () => network.send('t1', 'sd/0', sync(`r${i}`)));
      scheduler.runUntil(100_000);
      return server.map((a) => `${a.atMs}:${a.reqId}`).join(',');
    };
    expect(run(5)).toBe(run(5));
    expect(run(5)).not.toBe(run(6));
  });

  it('refuses knobs that make no sense', () => {
    const { network } = world();
    expect(() => network.setOptions({ lossProbability: 1.5 })).toThrow(/badNetworkOption/);
    expect(() => network.setOptions({ oneWayDelayMsMedian: 100, oneWayDelayMsP99: 50 })).toThrow(/badNetworkOption/);
    expect(network.options.lossProbability).toBe(0);
  });
});
