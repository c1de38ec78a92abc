import { describe, expect, it } from 'vitest';
import { createActor, setup } from 'xstate';
import { RealTime, wallEpochMs } from './realTime.ts';

/** Waits until `condition` holds; fails after `timeoutMs` real ms (a bound, not a measurement). */
async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('RealTime', () => {
  it('stands at 0 before the run begins, then reads whole, scaled, non-decreasing milliseconds', async () => {
    const time = new RealTime(1_000);
    expect(time.now()).toBe(0);
    time.begin(wallEpochMs());
    let last = time.now();
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 100; i++) {
      const now = time.now();
      expect(Number.isInteger(now)).toBe(true);
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
    // 20 real ms at ×1000 is at least 20 s of run time.
    expect(last).toBeGreaterThanOrEqual(20_000);
  });

  it('reads the same run time in two instances given the same origin (as coordinator and worker do)', () => {
    const origin = wallEpochMs() - 1_000;
    const a = new RealTime(60);
    const b = new RealTime(60);
    a.begin(origin);
    b.begin(origin);
    const ta = a.now();
    const tb = b.now();
    expect(Math.abs(ta - tb)).toBeLessThan(60 * 50);
    expect(ta).toBeGreaterThanOrEqual(60_000);
  });

  it('runs timers in order of run time and never before their run time', async () => {
    const time = new RealTime(100);
    time.begin(wallEpochMs());
    const fired: Array<[string, number]> = [];
    time.schedule(3_000, () => fired.push(['late', time.now()]));
    time.schedule(1_000, () => fired.push(['early', time.now()]));
    time.at(2_000, () => fired.push(['middle', time.now()]));
    await until(() => fired.length === 3);
    expect(fired.map(([name]) => name)).toEqual(['early', 'middle', 'late']);
    expect(fired[0]![1]).toBeGreaterThanOrEqual(1_000 - 100);
    expect(fired[2]![1]).toBeGreaterThanOrEqual(3_000 - 100);
  });

  it('cancels one timer, or every timer on stop', async () => {
    const time = new RealTime(1_000);
    time.begin(wallEpochMs());
    const fired: string[] = [];
    const handle = time.schedule(1_000, () => fired.push('cancelled'));
    time.cancel(handle);
    time.schedule(500_000, () => fired.push('stopped'));
    expect(time.pendingCount).toBe(1);
    time.stop();
    expect(time.pendingCount).toBe(0);
    time.schedule(0, () => fired.push('after stop'));
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toEqual([]);
  });

  it('backs an XState clock, so machine delays run in run time', async () => {
    const time = new RealTime(1_000);
    time.begin(wallEpochMs());
    const machine = setup({}).createMachine({ initial: 'waiting', states: { waiting: { after: { 60_000: 'done' } }, done: { type: 'final' } } });
    const actor = createActor(machine, { clock: time.clock }).start();
    // 60 s of run time at ×1000 is 60 real ms; without the scaled clock this would take a minute.
    await until(() => actor.getSnapshot().status === 'done', 2_000);
    expect(time.now()).toBeGreaterThanOrEqual(60_000);
  });

  it('refuses a time scale that is not a positive number', () => {
    expect(() => new RealTime(0)).toThrow(/badTimeScale/);
    expect(() => new RealTime(Number.NaN)).toThrow(/badTimeScale/);
  });
});
