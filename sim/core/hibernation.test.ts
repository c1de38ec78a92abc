import { describe, expect, it } from 'vitest';
import { Scheduler } from './scheduler.ts';
import { TerminalClock } from './hibernation.ts';

// The clock that lets a hibernating terminal keep its armed timer in place in the scheduler. The whole of
// hibernation (the fleet's wake and sleep) is tested by comparing runs with and without it: sim/run/hibernation.test.ts.
describe('TerminalClock', () => {
  it('knows which timers its actors armed until they run or are cancelled', () => {
    const s = new Scheduler();
    const clock = new TerminalClock(s);
    const seen: string[] = [];
    const a = clock.setTimeout(() => seen.push('a'), 10);
    const b = clock.setTimeout(() => seen.push('b'), 20);
    expect([...clock.armed]).toEqual([a, b]);
    clock.clearTimeout(b);
    expect([...clock.armed]).toEqual([a]);
    s.runUntil(100);
    expect(seen).toEqual(['a']);
    expect(clock.armed.size).toBe(0);
  });

  it('leaves a released timer alone when the actors stop, and a new clock adopts it at its own time and place', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    const asleep = new TerminalClock(s);
    const kept = asleep.setTimeout(() => seen.push('old callback'), 50);
    s.schedule(50, () => seen.push('after it'));
    // Hibernating: the timer goes to a stand-in; stopping the actors then clears every timer they know.
    asleep.release(kept);
    s.rebind(kept, () => seen.push('stand-in'));
    asleep.clearTimeout(kept);
    expect(s.pending).toBe(2);
    // Waking: XState arms the timer again (any delay) and the new clock takes the kept one back.
    const awake = new TerminalClock(s);
    awake.adopt(kept);
    expect(awake.setTimeout(() => seen.push('re-armed'), 0)).toBe(kept);
    expect(s.pending).toBe(2);
    s.runUntil(100);
    expect(seen).toEqual(['re-armed', 'after it']);
    expect(s.now()).toBe(100);
  });

  it('refuses to adopt a timer that is gone', () => {
    const s = new Scheduler();
    const clock = new TerminalClock(s);
    const gone = s.schedule(5, () => undefined);
    s.cancel(gone);
    clock.adopt(gone);
    expect(() => clock.setTimeout(() => undefined, 5)).toThrow(/is gone/);
  });
});
