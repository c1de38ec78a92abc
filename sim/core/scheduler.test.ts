import { describe, it, expect } from 'vitest';
import { assign, createActor, createMachine, setup } from 'xstate';
import { Scheduler } from './scheduler.ts';

describe('Scheduler', () => {
  it('runs events in time order and moves the clock to each', () => {
    const s = new Scheduler();
    const seen: Array<[string, number]> = [];
    s.schedule(30, () => seen.push(['c', s.now()]));
    s.schedule(10, () => seen.push(['a', s.now()]));
    s.at(20, () => seen.push(['b', s.now()]));
    expect(s.pending).toBe(3);
    expect(s.runUntil(100)).toBe('reachedTime');
    expect(seen).toEqual([['a', 10], ['b', 20], ['c', 30]]);
    expect(s.now()).toBe(100);
    expect(s.eventsRun).toBe(3);
    expect(s.pending).toBe(0);
  });

  it('keeps FIFO order among events due at the same time, including ones scheduled while running', () => {
    const s = new Scheduler();
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) s.schedule(5, () => seen.push(i));
    s.schedule(5, () => s.schedule(0, () => seen.push(999)));
    s.schedule(5, () => seen.push(50));
    s.runUntil(5);
    expect(seen).toEqual([...Array.from({ length: 51 }, (_, i) => i), 999]);
  });

  it('orders a large random batch exactly like a stable sort by time', () => {
    const s = new Scheduler();
    const times: number[] = [];
    let x = 12345;
    for (let i = 0; i < 5000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      times.push(x % 200);
    }
    const seen: number[] = [];
    times.forEach((t, i) => s.at(t, () => seen.push(i)));
    s.runUntil(1000);
    const expected = times.map((t, i) => ({ t, i })).sort((a, b) => a.t - b.t || a.i - b.i).map((e) => e.i);
    expect(seen).toEqual(expected);
  });

  it('does not run cancelled events, and cancel reports whether it did anything', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    const a = s.schedule(10, () => seen.push('a'));
    const b = s.schedule(20, () => seen.push('b'));
    expect(s.cancel(a)).toBe(true);
    expect(s.cancel(a)).toBe(false);
    expect(s.pending).toBe(1);
    s.runUntil(50);
    expect(seen).toEqual(['b']);
    expect(s.cancel(b)).toBe(false);
    expect(s.eventsRun).toBe(1);
  });

  it('ignores a stale handle whose slot now holds another timer', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    const a = s.schedule(1, () => seen.push('a'));
    s.runUntil(1);
    const b = s.schedule(1, () => seen.push('b'));
    expect(s.cancel(a)).toBe(false);
    expect(s.cancel(-1)).toBe(false);
    expect(s.cancel(0.5)).toBe(false);
    s.runUntil(10);
    expect(seen).toEqual(['a', 'b']);
    expect(s.cancel(b)).toBe(false);
  });

  it('keeps order after compaction of many cancelled timers', () => {
    const s = new Scheduler();
    const seen: number[] = [];
    const handles = Array.from({ length: 1000 }, (_, i) => s.at(1000 - i, () => seen.push(1000 - i)));
    handles.forEach((h, i) => {
      if (i % 10 !== 0) s.cancel(h);
    });
    expect(s.pending).toBe(100);
    s.runUntil(2000);
    expect(seen).toEqual(Array.from({ length: 100 }, (_, k) => 10 + 10 * k));
  });

  it('runs past times at once and refuses times that are not numbers', () => {
    const s = new Scheduler();
    s.runUntil(100);
    const seen: number[] = [];
    s.at(50, () => seen.push(s.now()));
    s.schedule(-5, () => seen.push(s.now()));
    s.step();
    s.step();
    expect(seen).toEqual([100, 100]);
    expect(() => s.schedule(Number.NaN, () => {})).toThrow(/badDelay/);
    expect(() => s.at(Infinity, () => {})).toThrow(/badTime/);
  });

  it('stops on the predicate with the clock at the stopping event, and on maxEvents', () => {
    const s = new Scheduler();
    let count = 0;
    for (let t = 1; t <= 10; t++) s.at(t * 10, () => count++);
    expect(s.runUntil(1000, () => count === 3)).toBe('stopped');
    expect(s.now()).toBe(30);
    expect(s.runUntil(1000, { maxEvents: 2 })).toBe('maxEvents');
    expect(count).toBe(5);
    expect(s.now()).toBe(50);
    expect(s.runUntil(1000)).toBe('reachedTime');
    expect(count).toBe(10);
  });

  it('refuses to be run from inside an event', () => {
    const s = new Scheduler();
    let error: unknown;
    s.schedule(1, () => {
      try {
        s.runUntil(10);
      } catch (e) {
        error = e;
      }
    });
    s.runUntil(5);
    expect(String(error)).toMatch(/reentrantRun/);
  });

  it('step runs one event whatever its time and returns false when empty', () => {
    const s = new Scheduler();
    s.at(1_000_000, () => {});
    expect(s.nextTimeMs).toBe(1_000_000);
    expect(s.step()).toBe(true);
    expect(s.now()).toBe(1_000_000);
    expect(s.step()).toBe(false);
    expect(s.nextTimeMs).toBeUndefined();
  });

  it('holds a million pending timers with re-arming and stays bounded', () => {
    const s = new Scheduler();
    const n = 1_000_000;
    const handles = new Array(n);
    let fired = 0;
    const fire = () => fired++;
    for (let i = 0; i < n; i++) handles[i] = s.schedule(1000 + (i % 997), fire);
    // Every timer re-armed once, the way an actor cancels and restarts a timeout.
    for (let i = 0; i < n; i++) {
      s.clock.clearTimeout(handles[i]);
      handles[i] = s.clock.setTimeout(fire, 2000 + (i % 991));
    }
    expect(s.pending).toBe(n);
    expect(s.heapSize).toBeLessThanOrEqual(2 * n + 64);
    s.runUntil(1999);
    expect(fired).toBe(0);
    s.runUntil(5000);
    expect(fired).toBe(n);
    expect(s.pending).toBe(0);
  });
});

describe('Scheduler as an XState clock', () => {
  it('fires an `after: { 1000 }` transition at virtual time 1000', () => {
    const s = new Scheduler();
    const machine = createMachine({
      initial: 'waiting',
      states: { waiting: { after: { 1000: 'done' } }, done: {} },
    });
    const actor = createActor(machine, { clock: s.clock }).start();
    const seenAtMs: number[] = [];
    actor.subscribe((snapshot) => {
      if (snapshot.value === 'done') seenAtMs.push(s.now());
    });
    s.runUntil(999);
    expect(actor.getSnapshot().value).toBe('waiting');
    s.runUntil(1000);
    expect(actor.getSnapshot().value).toBe('done');
    expect(seenAtMs).toEqual([1000]);
    actor.stop();
  });

  it('drives thousands of re-arming actors, each tick at its virtual time', () => {
    const s = new Scheduler();
    const ticker = setup({
      types: {} as { context: { ticks: number; lastAtMs: number; offsetMs: number }; input: { offsetMs: number } },
      delays: { offset: ({ context }) => context.offsetMs },
    }).createMachine({
      context: ({ input }) => ({ ticks: 0, lastAtMs: -1, offsetMs: input.offsetMs }),
      initial: 'offset',
      states: {
        offset: { after: { offset: 'ticking' } },
        ticking: {
          after: { 1000: { target: 'ticking', reenter: true, actions: assign({ ticks: ({ context }) => context.ticks + 1, lastAtMs: () => s.now() }) } },
        },
      },
    });
    const actors = Array.from({ length: 5000 }, (_, i) => createActor(ticker, { clock: s.clock, input: { offsetMs: i % 100 } }).start());
    s.runUntil(10_099);
    for (const [i, actor] of actors.entries()) {
      const offsetMs = i % 100;
      const { ticks, lastAtMs } = actor.getSnapshot().context;
      expect(ticks).toBe(10);
      expect(lastAtMs).toBe(offsetMs + 10_000);
    }
    expect(s.pending).toBe(5000);
    for (const actor of actors) actor.stop();
    expect(s.pending).toBe(0);
  });

  it('cancels a delay when the state is left before it fires', () => {
    const s = new Scheduler();
    const machine = createMachine({
      initial: 'waiting',
      states: { waiting: { after: { 1000: 'timedOut' }, on: { answer: 'answered' } }, answered: {}, timedOut: {} },
    });
    const actor = createActor(machine, { clock: s.clock }).start();
    s.runUntil(500);
    actor.send({ type: 'answer' });
    expect(s.pending).toBe(0);
    s.runUntil(5000);
    expect(actor.getSnapshot().value).toBe('answered');
    expect(s.eventsRun).toBe(0);
  });
});

describe('Scheduler.rebind and afterEvent', () => {
  it('gives a pending timer a new callback at its own time and place among timers of the same instant', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.schedule(10, () => seen.push('a'));
    const b = s.schedule(10, () => seen.push('b'));
    s.schedule(10, () => seen.push('c'));
    expect(s.rebind(b, () => seen.push('b, rebound'))).toBe(true);
    s.runUntil(10);
    expect(seen).toEqual(['a', 'b, rebound', 'c']);
    // A timer that ran or was cancelled cannot be rebound.
    expect(s.rebind(b, () => seen.push('never'))).toBe(false);
    const d = s.schedule(5, () => seen.push('d'));
    s.cancel(d);
    expect(s.rebind(d, () => seen.push('never'))).toBe(false);
    s.runUntil(100);
    expect(seen).toEqual(['a', 'b, rebound', 'c']);
  });

  it('calls afterEvent once after each event, which can schedule nothing into the current one', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.afterEvent = () => seen.push(`after@${s.now()}`);
    s.schedule(1, () => seen.push('one'));
    s.schedule(2, () => seen.push('two'));
    s.runUntil(10);
    expect(seen).toEqual(['one', 'after@1', 'two', 'after@2']);
  });
});
