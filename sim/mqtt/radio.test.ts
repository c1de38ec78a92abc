import { describe, it, expect } from 'vitest';
import { createLinkStats } from '../../broker/linkOptions.ts';
import { drawFate, type NetworkOptions } from '../core/network.ts';
import { Prng } from '../core/prng.ts';
import { Scheduler } from '../core/scheduler.ts';
import { Radio } from './radio.ts';

const lossy: NetworkOptions = { lossProbability: 0.2, duplicateProbability: 0.1, reorderProbability: 0, oneWayDelayMsMedian: 80, oneWayDelayMsP99: 1500 };

interface Passed {
  endpointId: string;
  direction: 'out' | 'in';
  n: number;
  atMs: number;
}

/** A radio on a virtual clock, and what it let through, in the order it did. */
function world(options: Partial<NetworkOptions>, seed = 1) {
  const scheduler = new Scheduler();
  const stats = createLinkStats();
  const radio = new Radio(scheduler, new Prng(seed).fork('radio'), options, stats);
  const passed: Passed[] = [];
  /** Sends `count` messages from (or to) `endpointId`, `gapMs` apart, starting now. */
  const send = (endpointId: string, direction: 'out' | 'in', count: number, gapMs = 0) => {
    for (let n = 0; n < count; n++) {
      scheduler.schedule(n * gapMs, () => {
        const pass = () => passed.push({ endpointId, direction, n, atMs: scheduler.now() });
        if (direction === 'out') radio.outgoing(endpointId, pass);
        else radio.incoming(endpointId, pass);
      });
    }
  };
  return { scheduler, stats, radio, passed, send };
}

describe('Radio', () => {
  it('makes the same decisions for the same seed and endpoint, and other ones for another seed', () => {
    const run = (seed: number) => {
      const w = world(lossy, seed);
      w.send('t1', 'out', 300, 10);
      w.send('t1', 'in', 300, 10);
      w.scheduler.runUntil(60_000);
      return { passed: w.passed, stats: w.stats };
    };
    const first = run(7);
    expect(run(7)).toEqual(first);
    expect(run(8).passed).not.toEqual(first.passed);
    expect(first.stats.lost).toBeGreaterThan(0);
    expect(first.stats.duplicated).toBeGreaterThan(0);
  });

  it("draws an endpoint's fates from its own stream, whatever the other endpoints send", () => {
    const alone = world(lossy);
    alone.send('t1', 'out', 200, 5);
    alone.scheduler.runUntil(60_000);
    const crowded = world(lossy);
    crowded.send('t2', 'out', 500, 1);
    crowded.send('t1', 'out', 200, 5);
    crowded.send('t3', 'in', 500, 2);
    crowded.scheduler.runUntil(60_000);
    expect(crowded.passed.filter((p) => p.endpointId === 't1')).toEqual(alone.passed);
  });

  it("applies the virtual network's own fate draw, message by message", () => {
    const options = { ...lossy, oneWayDelayMsMedian: 40, oneWayDelayMsP99: 40 };
    const w = world(options, 3);
    w.send('t1', 'out', 100);
    w.scheduler.runUntil(10_000);
    // The same stream the radio forks for t1, drawn by drawFate: which messages are lost, which doubled.
    const stream = new Prng(3).fork('radio').fork('t1');
    const expected: Array<[number, number]> = [];
    for (let n = 0; n < 100; n++) {
      const fate = drawFate(options, stream);
      if (fate.lost) continue;
      expected.push([n, 40]);
      if (fate.duplicateAfterMs !== undefined) expected.push([n, 40 + fate.duplicateAfterMs]);
    }
    const byTime = (a: [number, number], b: [number, number]) => a[1] - b[1] || a[0] - b[0];
    expect(w.passed.map((p): [number, number] => [p.n, p.atMs]).sort(byTime)).toEqual(expected.sort(byTime));
  });

  it('loses and duplicates at the configured rates, and counts exactly what it did', () => {
    const w = world(lossy);
    for (let t = 0; t < 20; t++) w.send(`t${t}`, t % 2 === 0 ? 'out' : 'in', 500, 3);
    w.scheduler.runUntil(120_000);
    const total = 20 * 500;
    expect(w.stats.lost / total).toBeGreaterThan(0.17);
    expect(w.stats.lost / total).toBeLessThan(0.23);
    expect(w.stats.duplicated / (total - w.stats.lost)).toBeGreaterThan(0.08);
    expect(w.stats.duplicated / (total - w.stats.lost)).toBeLessThan(0.12);
    expect(w.passed.length).toBe(total - w.stats.lost + w.stats.duplicated);
    expect(w.stats.delayed).toBe(total - w.stats.lost);
    expect(w.stats.reordered).toBe(0);
  });

  it('keeps each lane in order despite the spread of delays, unless the reorder knob holds a message back', () => {
    const inOrder = (passed: Passed[], endpointId: string, direction: 'out' | 'in') => {
      const ns = passed.filter((p) => p.endpointId === endpointId && p.direction === direction).map((p) => p.n);
      return ns.every((n, i) => i === 0 || n > ns[i - 1]!);
    };
    const spread = { oneWayDelayMsMedian: 50, oneWayDelayMsP99: 5000 };
    const fifo = world(spread);
    fifo.send('t1', 'out', 400, 5);
    fifo.send('t1', 'in', 400, 5);
    fifo.scheduler.runUntil(600_000);
    expect(fifo.passed).toHaveLength(800);
    expect(inOrder(fifo.passed, 't1', 'out')).toBe(true);
    expect(inOrder(fifo.passed, 't1', 'in')).toBe(true);

    const shuffled = world({ ...spread, reorderProbability: 0.2 });
    shuffled.send('t1', 'out', 400, 5);
    shuffled.scheduler.runUntil(600_000);
    expect(shuffled.passed).toHaveLength(400);
    expect(shuffled.stats.reordered).toBeGreaterThan(40);
    expect(inOrder(shuffled.passed, 't1', 'out')).toBe(false);
  });

  it('passes at once, drawing nothing, when every knob is off', () => {
    const w = world({ lossProbability: 0, duplicateProbability: 0, reorderProbability: 0, oneWayDelayMsMedian: 0, oneWayDelayMsP99: 0 });
    let passed = 0;
    for (let n = 0; n < 50; n++) w.radio.outgoing('t1', () => passed++);
    expect(passed).toBe(50);
    expect(w.scheduler.pending).toBe(0);
    expect(w.stats).toEqual(createLinkStats());
  });

  it('calms down when the faults are switched off (the drain), keeping the latency', () => {
    const w = world({ ...lossy, lossProbability: 1 });
    w.send('t1', 'out', 20);
    w.scheduler.runUntil(10);
    expect(w.stats.lost).toBe(20);
    w.radio.setOptions({ lossProbability: 0, duplicateProbability: 0, reorderProbability: 0 });
    w.send('t1', 'out', 20);
    w.scheduler.runUntil(60_000);
    expect(w.passed).toHaveLength(20);
    expect(w.stats.lost).toBe(20);
    expect(w.stats.delayed).toBe(20);
    expect(w.passed.every((p) => p.atMs > 10)).toBe(true);
  });

  it('refuses knobs out of range, naming the knob and the value', () => {
    const scheduler = new Scheduler();
    expect(() => new Radio(scheduler, new Prng(1), { lossProbability: 1.5 }, createLinkStats())).toThrow(/lossProbability/);
    const radio = new Radio(scheduler, new Prng(1), {}, createLinkStats());
    expect(() => radio.setOptions({ oneWayDelayMsMedian: 10, oneWayDelayMsP99: 5 })).toThrow(/oneWayDelayMsP99/);
  });

  it('lets the link pass a message itself only while no knob is on and nothing of that endpoint is waiting', () => {
    const w = world({ oneWayDelayMsMedian: 0, oneWayDelayMsP99: 0 });
    expect(w.radio.passesAtOnce('t1')).toBe(true);
    w.radio.setOptions({ oneWayDelayMsMedian: 50, oneWayDelayMsP99: 200 });
    expect(w.radio.passesAtOnce('t1')).toBe(false);
    w.send('t1', 'out', 1);
    w.scheduler.runUntil(0);
    // The radio is quiet again, but t1 has a lane of its own now: its messages keep going through it, in order.
    w.radio.setOptions({ oneWayDelayMsMedian: 0, oneWayDelayMsP99: 0 });
    expect(w.radio.passesAtOnce('t1')).toBe(false);
    expect(w.radio.passesAtOnce('t2')).toBe(true);
  });
});
