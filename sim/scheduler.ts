// Goal: the discrete-event scheduler of a virtual run — virtual time in milliseconds, events run one at a time
// in (time, sequence) order, so the same inputs give the same run to the event. It also serves XState as its
// `Clock`, so every machine's `after` delay runs in the same virtual time as the network and the workload.
// Method: a binary min-heap of timer records ordered by (timeMs, seq); `seq` grows with every insertion, which
// makes equal times FIFO without any re-sorting. Insert and pop are O(log n). Cancellation is lazy: the record is
// marked and skipped when it reaches the top; once cancelled records outnumber live ones the heap is compacted
// in O(n) (filter, then heapify), so its size stays within twice the live timers and cancellation is amortised
// O(1). XState's own SimulatedClock re-sorts every timer on each change, which collapses past ~1,000 re-arming
// actors; this one holds millions of pending timers.

import type { ActorOptions, AnyActorLogic } from 'xstate';
import { DomainError } from '../machines/domain/money.ts';
import type { TimeSource } from './timeSource.ts';

/** XState v5's clock interface (`createActor(machine, { clock })`); xstate does not export the type by name. */
export type Clock = NonNullable<ActorOptions<AnyActorLogic>['clock']>;

const PENDING = 0;
const RAN = 1;
const CANCELLED = 2;

/** Below this heap size compaction is not worth its pass. */
const COMPACT_MIN_SIZE = 64;

/** One scheduled callback; also the opaque handle `schedule` returns. */
class Timer {
  state = PENDING;
  constructor(
    readonly timeMs: number,
    readonly seq: number,
    readonly fn: () => void,
  ) {}
}

/** What `schedule`, `at` and the clock's `setTimeout` return; pass it to `cancel`. */
export type TimerHandle = Timer;

export interface RunUntilOptions {
  /** Checked after every event; `true` stops the run at once (virtual time stays at that event's time). */
  stopWhen?: () => boolean;
  /** Stops after this many events (a guard against a run that never quiets down). */
  maxEvents?: number;
}

/** Why `runUntil` returned. */
export type RunUntilOutcome = 'reachedTime' | 'stopped' | 'maxEvents';

function earlier(a: Timer, b: Timer): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}

export class Scheduler implements TimeSource {
  private heap: Timer[] = [];
  private cancelledInHeap = 0;
  private nextSeq = 0;
  private nowMs: number;
  private running = false;
  /** Events run so far (cancelled timers do not count). */
  eventsRun = 0;

  /** The XState v5 clock backed by this heap: `createActor(machine, { clock: scheduler.clock })`. */
  readonly clock: Clock;

  constructor(startMs = 0) {
    if (!Number.isFinite(startMs)) throw new DomainError('badTime', 'the start time must be a finite number of ms', startMs);
    this.nowMs = startMs;
    this.clock = {
      setTimeout: (fn: (...args: unknown[]) => void, timeoutMs: number): TimerHandle => this.schedule(timeoutMs, fn as () => void),
      clearTimeout: (id: unknown): void => {
        if (id instanceof Timer) this.cancel(id);
      },
    };
  }

  /** The current virtual time (ms). */
  now(): number {
    return this.nowMs;
  }

  /** Timers waiting to run, not counting cancelled ones. */
  get pending(): number {
    return this.heap.length - this.cancelledInHeap;
  }

  /** Records in the heap, cancelled ones included; compaction keeps it below twice `pending` (plus a little). */
  get heapSize(): number {
    return this.heap.length;
  }

  /** The time of the next live timer, or undefined when none is left. */
  get nextTimeMs(): number | undefined {
    this.dropCancelledTop();
    return this.heap[0]?.timeMs;
  }

  /** Runs `fn` `delayMs` after now; a negative delay means now (after what is already due now). */
  schedule(delayMs: number, fn: () => void): TimerHandle {
    if (!Number.isFinite(delayMs)) throw new DomainError('badDelay', 'a delay must be a finite number of ms', delayMs);
    return this.insert(delayMs > 0 ? this.nowMs + delayMs : this.nowMs, fn);
  }

  /** Runs `fn` at virtual time `timeMs`, or now if that is already past. */
  at(timeMs: number, fn: () => void): TimerHandle {
    if (!Number.isFinite(timeMs)) throw new DomainError('badTime', 'a time must be a finite number of ms', timeMs);
    return this.insert(timeMs > this.nowMs ? timeMs : this.nowMs, fn);
  }

  /** Cancels a timer; returns false when it already ran or was already cancelled. */
  cancel(handle: TimerHandle): boolean {
    if (handle.state !== PENDING) return false;
    handle.state = CANCELLED;
    this.cancelledInHeap++;
    if (this.cancelledInHeap > this.heap.length >>> 1 && this.heap.length >= COMPACT_MIN_SIZE) this.compact();
    return true;
  }

  /** Runs the next live timer, whatever its time; returns false when there is none. */
  step(): boolean {
    this.enter();
    try {
      return this.runNext();
    } finally {
      this.running = false;
    }
  }

  /**
   * Runs every timer due at or before `timeMs`, including those scheduled meanwhile, then moves the clock to
   * `timeMs`. `options` may be a stop predicate alone. Re-entrant calls (from inside an event) are refused.
   */
  runUntil(timeMs: number, options?: RunUntilOptions | (() => boolean)): RunUntilOutcome {
    if (Number.isNaN(timeMs)) throw new DomainError('badTime', 'runUntil needs a time', timeMs);
    const stopWhen = typeof options === 'function' ? options : options?.stopWhen;
    const maxEvents = typeof options === 'function' ? Infinity : (options?.maxEvents ?? Infinity);
    this.enter();
    try {
      let ran = 0;
      for (;;) {
        this.dropCancelledTop();
        const top = this.heap[0];
        if (top === undefined || top.timeMs > timeMs) break;
        if (ran >= maxEvents) return 'maxEvents';
        this.runNext();
        ran++;
        if (stopWhen !== undefined && stopWhen()) return 'stopped';
      }
      if (timeMs > this.nowMs && timeMs !== Infinity) this.nowMs = timeMs;
      return 'reachedTime';
    } finally {
      this.running = false;
    }
  }

  // ------------------------------------------------------------------ heap

  private enter(): void {
    if (this.running) throw new DomainError('reentrantRun', 'the scheduler is already running (called from inside an event)', this.nowMs);
    this.running = true;
  }

  private insert(timeMs: number, fn: () => void): Timer {
    const timer = new Timer(timeMs, this.nextSeq++, fn);
    const heap = this.heap;
    heap.push(timer);
    this.siftUp(heap.length - 1);
    return timer;
  }

  private runNext(): boolean {
    this.dropCancelledTop();
    const timer = this.popTop();
    if (timer === undefined) return false;
    timer.state = RAN;
    this.nowMs = timer.timeMs;
    this.eventsRun++;
    timer.fn();
    return true;
  }

  private dropCancelledTop(): void {
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.state === CANCELLED) {
      this.popTop();
      this.cancelledInHeap--;
    }
  }

  private popTop(): Timer | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    let i = index;
    while (i > 0) {
      const parentIndex = (i - 1) >>> 1;
      const parent = heap[parentIndex]!;
      if (!earlier(item, parent)) break;
      heap[i] = parent;
      i = parentIndex;
    }
    heap[i] = item;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const size = heap.length;
    const item = heap[index]!;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      let child = left;
      if (right < size && earlier(heap[right]!, heap[left]!)) child = right;
      const candidate = heap[child]!;
      if (!earlier(candidate, item)) break;
      heap[i] = candidate;
      i = child;
    }
    heap[i] = item;
  }

  /** Drops every cancelled record and rebuilds the heap; (time, seq) is a total order, so run order is unchanged. */
  private compact(): void {
    const live: Timer[] = [];
    for (const timer of this.heap) if (timer.state === PENDING) live.push(timer);
    this.heap = live;
    this.cancelledInHeap = 0;
    for (let i = (live.length >>> 1) - 1; i >= 0; i--) this.siftDown(i);
  }
}
