// Goal: the invariant book of a run — every invariant of machines/domain/invariants.ts (docs/design.md §5) with its
// number of checks and violations, and the stop-the-run behaviour when one breaks.
// Method: the checkers of sim/check/ call `check(id, ok, …)` for one verdict, or `record(id, checks, violations)`
// for the findings of one of the domain's check functions; the first violation sets `stopped` (the simulator loop
// stops at the next event) unless the book collects all of them (the end checks, the mqtt mode). Each violation
// carries the seed, the invariant, what broke, and the recent events of the actors involved, so the seed replays it.

import { INVARIANTS, invariantName, type InvariantId, type Violation } from '../../machines/domain/invariants.ts';

export interface InvariantCount {
  id: InvariantId;
  name: string;
  checks: number;
  violations: number;
}

export interface TraceEntry {
  timeMs: number;
  actor: string;
  text: string;
}

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantId,
    readonly detail: string,
    readonly seed: number,
    readonly timeMs: number,
    readonly recent: TraceEntry[],
  ) {
    super(`invariant ${invariant} (${invariantName(invariant)}) violated at t=${timeMs} ms, seed ${seed}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** Keeps the last events of the run in a ring, to show what the actors involved were doing. */
export class RecentEvents {
  private readonly ring: TraceEntry[] = [];
  private next = 0;

  constructor(private readonly capacity = 4_096) {}

  push(entry: TraceEntry): void {
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
  }

  /** The recent events (oldest first) whose actor is one of `actors`, at most `limit`. */
  about(actors: readonly string[], limit = 20): TraceEntry[] {
    const ordered = this.ring.length < this.capacity ? this.ring : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    const wanted = new Set(actors);
    return ordered.filter((e) => wanted.has(e.actor) || actors.some((a) => e.text.includes(a))).slice(-limit);
  }
}

export class InvariantBook {
  private readonly counts = new Map<InvariantId, InvariantCount>();
  readonly violations: InvariantViolation[] = [];
  /** Set by the first violation while `stopOnViolation`: the simulator loop stops at the next event. */
  stopped = false;

  constructor(
    private readonly seed: number,
    private readonly now: () => number,
    private readonly recent: RecentEvents,
    /** Stop at the first violation (the default); the end-of-run checks collect all instead. */
    public stopOnViolation = true,
  ) {
    for (const { id, name } of INVARIANTS) this.counts.set(id, { id, name, checks: 0, violations: 0 });
  }

  /**
   * Records one check; a failed one is a bug, and by default stops the run: the book sets `stopped` (the loop
   * checks it after every event) rather than throwing, because a check often runs inside an XState callback.
   */
  check(id: InvariantId, ok: boolean, detail?: () => string, actors: readonly string[] = []): void {
    const count = this.counts.get(id)!;
    count.checks++;
    if (ok) return;
    count.violations++;
    const violation = new InvariantViolation(id, detail?.() ?? 'violated', this.seed, this.now(), this.recent.about(actors));
    this.violations.push(violation);
    if (this.stopOnViolation) this.stopped = true;
  }

  /**
   * Records `checks` checks of one invariant and the violations one of the domain's check functions found among
   * them (a check function may find more than one thing wrong with one item: the count of checks is at least the
   * count of violations). Each violation is booked as `check` books a failed one.
   */
  record(id: InvariantId, checks: number, violations: readonly Violation[], actorsOf: (violation: Violation) => readonly string[] = (v) => [v.subject]): void {
    const count = this.counts.get(id)!;
    count.checks += Math.max(0, checks - violations.length);
    for (const violation of violations) this.check(id, false, () => violation.message, actorsOf(violation));
  }

  summary(): InvariantCount[] {
    return [...this.counts.values()].map((c) => ({ ...c }));
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }
}
