// Goal: the discrete-event scheduler of a virtual run — virtual time in milliseconds, events run one at a time
// in (time, sequence) order, so the same inputs give the same run to the event. It also serves XState as its
// `Clock`, so every machine's `after` delay runs in the same virtual time as the network and the workload.
// Method: a binary min-heap ordered by (timeMs, seq); `seq` grows with every insertion, which makes equal times
// FIFO without any re-sorting. Each heap entry is three numbers side by side in one Float64Array — time, seq and
// the slot of its callback — so a level of sifting touches one cache line instead of chasing pointers, and a
// handle is a number, so scheduling allocates nothing but the caller's closure. Insert and pop are O(log n).
// Cancellation is lazy: it frees the slot at once, and the heap entry, whose seq no longer matches its slot's,
// is skipped when it surfaces; once such entries outnumber live ones the heap is compacted in O(n) (filter, then
// heapify), so its size stays within twice the live timers and cancellation is amortised O(1). XState's own
// SimulatedClock re-sorts every timer on each change, which collapses past ~1,000 re-arming actors; this one
// holds up to 2^24 (16.7 million) pending timers and was tested with a million.

import type { ActorOptions, AnyActorLogic } from 'xstate';
import { DomainError } from '../../machines/domain/money.ts';
import type { TimeSource } from './timeSource.ts';

/** XState v5's clock interface (`createActor(machine, { clock })`); xstate does not export the type by name. */
export type Clock = NonNullable<ActorOptions<AnyActorLogic>['clock']>;

/** Below this heap size compaction is not worth its pass. */
const COMPACT_MIN_SIZE = 64;
const INITIAL_CAPACITY = 1024;
/** A handle packs a slot (below 2^24) and the low 29 bits of the timer's sequence number into one safe integer. */
const SLOT_SPACE = 0x100_0000;
const SEQ_SPACE = 0x2000_0000;
const FREE = -1;

/**
 * What `schedule`, `at` and the clock's `setTimeout` return; pass it to `cancel`. A number, so that scheduling
 * allocates no handle object: slot + 2^24 × (seq mod 2^29). A stale handle can only alias a live timer if its
 * slot was reused by the timer scheduled exactly a multiple of 2^29 (≈ 537 million) insertions later.
 */
export type TimerHandle = number;

export interface RunUntilOptions {
  /** Checked after every event; `true` stops the run at once (virtual time stays at that event's time). */
  stopWhen?: () => boolean;
  /** Stops after this many events (a guard against a run that never quiets down). */
  maxEvents?: number;
}

/** Why `runUntil` returned. */
export type RunUntilOutcome = 'reachedTime' | 'stopped' | 'maxEvents';

export class Scheduler implements TimeSource {
  /** The heap: entry i is (entries[3i], entries[3i+1], entries[3i+2]) = (timeMs, seq, slot). */
  private entries = new Float64Array(3 * INITIAL_CAPACITY);
  private size = 0;
  /** Callbacks by slot, and the seq of the timer holding each slot (FREE once it ran or was cancelled). */
  private readonly fns: Array<(() => void) | undefined> = [];
  private slotSeqs = new Float64Array(INITIAL_CAPACITY).fill(FREE);
  private readonly freeSlots: number[] = [];
  /** Heap entries whose timer was cancelled (their slot is already free, or held by another timer). */
  private cancelledInHeap = 0;
  private nextSeq = 0;
  private nowMs: number;
  private running = false;
  /** Events run so far (cancelled timers do not count). */
  eventsRun = 0;
  /**
   * Called after each event has run, when no actor is in the middle of its work: the fleet hibernates the
   * terminals that became idle here (hibernation.ts). It schedules nothing, so the run's order is unchanged.
   */
  afterEvent: (() => void) | undefined;

  /** The XState v5 clock backed by this heap: `createActor(machine, { clock: scheduler.clock })`. */
  readonly clock: Clock;

  constructor(startMs = 0) {
    if (!Number.isFinite(startMs)) throw new DomainError('badTime', 'the start time must be a finite number of ms', startMs);
    this.nowMs = startMs;
    this.clock = {
      setTimeout: (fn: (...args: unknown[]) => void, timeoutMs: number): TimerHandle => this.schedule(timeoutMs, fn as () => void),
      clearTimeout: (id: unknown): void => {
        if (typeof id === 'number') this.cancel(id);
      },
    };
  }

  /** The current virtual time (ms). */
  now(): number {
    return this.nowMs;
  }

  /** Timers waiting to run, not counting cancelled ones. */
  get pending(): number {
    return this.size - this.cancelledInHeap;
  }

  /** Heap entries, cancelled ones included; compaction keeps it below twice `pending` (plus a little). */
  get heapSize(): number {
    return this.size;
  }

  /** The time of the next live timer, or undefined when none is left. */
  get nextTimeMs(): number | undefined {
    this.dropCancelledTop();
    return this.size > 0 ? this.entries[0] : undefined;
  }

  /** Runs `fn` `delayMs` after now; a negative delay means now (after what is already due now). */
  schedule(delayMs: number, fn: () => void): TimerHandle {
    if (!Number.isFinite(delayMs)) throw new DomainError('badDelay', 'a delay must be a finite number of ms', delayMs);
    // Virtual time is whole milliseconds: every time a machine reads (and signs, in a claim) is an integer.
    return this.insert(delayMs > 0 ? this.nowMs + Math.round(delayMs) : this.nowMs, fn);
  }

  /** Runs `fn` at virtual time `timeMs`, or now if that is already past. */
  at(timeMs: number, fn: () => void): TimerHandle {
    if (!Number.isFinite(timeMs)) throw new DomainError('badTime', 'a time must be a finite number of ms', timeMs);
    return this.insert(timeMs > this.nowMs ? Math.round(timeMs) : this.nowMs, fn);
  }

  /** Cancels a timer; returns false when it already ran or was already cancelled. */
  cancel(handle: TimerHandle): boolean {
    const slot = handle % SLOT_SPACE;
    const seq = this.slotSeqs[slot];
    if (seq === undefined || seq === FREE || seq % SEQ_SPACE !== (handle - slot) / SLOT_SPACE) return false;
    // The slot is freed now; its heap entry stays until it surfaces or a compaction drops it.
    this.releaseSlot(slot);
    this.cancelledInHeap++;
    if (this.cancelledInHeap > this.size >>> 1 && this.size >= COMPACT_MIN_SIZE) this.compact();
    return true;
  }

  /**
   * Gives a pending timer a new callback; its time and its place among the timers of the same time stay as they
   * were. Returns false when the timer already ran or was cancelled. A hibernating terminal hands its armed timer
   * over this way, so that waking it again (or the timer firing while it sleeps) keeps the run's order to the event.
   */
  rebind(handle: TimerHandle, fn: () => void): boolean {
    const slot = handle % SLOT_SPACE;
    const seq = this.slotSeqs[slot];
    if (seq === undefined || seq === FREE || seq % SEQ_SPACE !== (handle - slot) / SLOT_SPACE) return false;
    this.fns[slot] = fn;
    return true;
  }

  /** Runs the next live timer, whatever its time; returns false when there is none. */
  step(): boolean {
    this.enter();
    try {
      this.dropCancelledTop();
      if (this.size === 0) return false;
      this.runTop();
      return true;
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
        if (this.size === 0 || this.entries[0]! > timeMs) break;
        if (ran >= maxEvents) return 'maxEvents';
        this.runTop();
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

  private insert(timeMs: number, fn: () => void): TimerHandle {
    const seq = this.nextSeq++;
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.fns.length;
      if (slot >= SLOT_SPACE) throw new DomainError('tooManyTimers', `at most ${SLOT_SPACE} timers may be pending at once`, slot);
      if (slot === this.slotSeqs.length) this.growSlots();
    }
    this.fns[slot] = fn;
    this.slotSeqs[slot] = seq;
    if (3 * this.size === this.entries.length) this.growHeap();
    this.siftUp(this.size++, timeMs, seq, slot);
    return slot + SLOT_SPACE * (seq % SEQ_SPACE);
  }

  private growHeap(): void {
    const entries = new Float64Array(this.entries.length * 2);
    entries.set(this.entries);
    this.entries = entries;
  }

  private growSlots(): void {
    const slotSeqs = new Float64Array(this.slotSeqs.length * 2).fill(FREE);
    slotSeqs.set(this.slotSeqs);
    this.slotSeqs = slotSeqs;
  }

  private releaseSlot(slot: number): void {
    this.fns[slot] = undefined;
    this.slotSeqs[slot] = FREE;
    this.freeSlots.push(slot);
  }

  /** True when heap entry i still belongs to a pending timer. */
  private isLive(i: number): boolean {
    const entries = this.entries;
    return this.slotSeqs[entries[3 * i + 2]!] === entries[3 * i + 1];
  }

  /** Pops the top (known live) timer and runs it. */
  private runTop(): void {
    const entries = this.entries;
    const timeMs = entries[0]!;
    const slot = entries[2]!;
    const fn = this.fns[slot]!;
    this.releaseSlot(slot);
    this.removeTop();
    this.nowMs = timeMs;
    this.eventsRun++;
    fn();
    this.afterEvent?.();
  }

  private dropCancelledTop(): void {
    while (this.size > 0 && !this.isLive(0)) {
      this.removeTop();
      this.cancelledInHeap--;
    }
  }

  /** Removes the top entry; the heap must not be empty. */
  private removeTop(): void {
    const entries = this.entries;
    const last = --this.size;
    if (last > 0) this.siftDown(0, entries[3 * last]!, entries[3 * last + 1]!, entries[3 * last + 2]!);
  }

  /** Places (timeMs, seq, slot) at or above entry `index`, moving later parents down. */
  private siftUp(index: number, timeMs: number, seq: number, slot: number): void {
    const entries = this.entries;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      const p = 3 * parent;
      const parentTime = entries[p]!;
      if (parentTime < timeMs || (parentTime === timeMs && entries[p + 1]! < seq)) break;
      const at = 3 * i;
      entries[at] = parentTime;
      entries[at + 1] = entries[p + 1]!;
      entries[at + 2] = entries[p + 2]!;
      i = parent;
    }
    const at = 3 * i;
    entries[at] = timeMs;
    entries[at + 1] = seq;
    entries[at + 2] = slot;
  }

  /** Places (timeMs, seq, slot) at or below entry `index`, moving earlier children up. */
  private siftDown(index: number, timeMs: number, seq: number, slot: number): void {
    const entries = this.entries;
    const size = this.size;
    let i = index;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      let c = 3 * child;
      let childTime = entries[c]!;
      if (child + 1 < size) {
        const r = c + 3;
        const rightTime = entries[r]!;
        if (rightTime < childTime || (rightTime === childTime && entries[r + 1]! < entries[c + 1]!)) {
          child++;
          c = r;
          childTime = rightTime;
        }
      }
      if (timeMs < childTime || (timeMs === childTime && seq < entries[c + 1]!)) break;
      const at = 3 * i;
      entries[at] = childTime;
      entries[at + 1] = entries[c + 1]!;
      entries[at + 2] = entries[c + 2]!;
      i = child;
    }
    const at = 3 * i;
    entries[at] = timeMs;
    entries[at + 1] = seq;
    entries[at + 2] = slot;
  }

  /** Drops every cancelled entry and rebuilds the heap; (time, seq) is a total order, so run order is unchanged. */
  private compact(): void {
    const entries = this.entries;
    let live = 0;
    for (let i = 0; i < this.size; i++) {
      if (!this.isLive(i)) continue;
      if (live !== i) entries.copyWithin(3 * live, 3 * i, 3 * i + 3);
      live++;
    }
    this.size = live;
    this.cancelledInHeap = 0;
    for (let i = (live >>> 1) - 1; i >= 0; i--) this.siftDown(i, entries[3 * i]!, entries[3 * i + 1]!, entries[3 * i + 2]!);
  }
}
