// Goal: radio coverage φ of every terminal over the run — each terminal flips between in and out of coverage
// as a two-state Markov process, and scheduled regional outages take a whole region out at once.
// Method: a terminal is in coverage when its own Markov state is "on" and no outage covers its region. One
// pending timer per terminal for its next flip; outages are two timers each. A change is sent to the terminal
// (which tells its proxy's link), so coverage loss reaches the machines exactly as a real radio would.

import type { Scenario } from '../scenario/types.ts';
import type { Prng } from './prng.ts';
import type { TimeSource } from './timeSource.ts';
import type { Fleet, TerminalSlot } from './fleet.ts';

export class CoverageModel {
  private readonly markovOn: boolean[] = [];
  private readonly regionOutages = new Map<string, number>();
  private running = true;
  private outageEverywhere = false;
  /** Terminals in coverage now (kept incrementally for the per-minute series). */
  inCoverageCount = 0;
  changes = 0;

  constructor(
    private readonly scenario: Scenario,
    private readonly scheduler: TimeSource,
    private readonly fleet: Fleet,
    private readonly prng: Prng,
  ) {}

  /** The initial coverage of terminal i: the stationary probability of "on". */
  initialCoverage(index: number): boolean {
    const { meanOnDurationMs, meanOffDurationMs } = this.scenario.coverage;
    const on = meanOffDurationMs === 0 ? true : !this.prng.chance(meanOffDurationMs / (meanOnDurationMs + meanOffDurationMs));
    this.markovOn[index] = on;
    if (on) this.inCoverageCount++;
    return on;
  }

  start(): void {
    const { meanOffDurationMs, outages } = this.scenario.coverage;
    if (meanOffDurationMs > 0) for (const slot of this.fleet.terminals) this.armFlip(slot);
    for (const outage of outages) {
      this.scheduler.at(outage.atMs, () => this.setOutage(outage.region, +1));
      this.scheduler.at(outage.atMs + outage.durationMs, () => this.setOutage(outage.region, -1));
    }
  }

  private armFlip(slot: TerminalSlot): void {
    const { meanOnDurationMs, meanOffDurationMs } = this.scenario.coverage;
    const index = slot.plan.index;
    const mean = this.markovOn[index] ? meanOnDurationMs : meanOffDurationMs;
    this.scheduler.schedule(this.prng.exponential(mean), () => {
      if (!this.running) return;
      this.markovOn[index] = !this.markovOn[index];
      this.apply(slot);
      this.armFlip(slot);
    });
  }

  private setOutage(region: string, delta: number): void {
    if (!this.running) return;
    this.regionOutages.set(region, (this.regionOutages.get(region) ?? 0) + delta);
    for (const slot of this.fleet.terminals) if (slot.plan.region === region) this.apply(slot);
  }

  private isCovered(slot: TerminalSlot): boolean {
    return !this.outageEverywhere && this.markovOn[slot.plan.index]! && (this.regionOutages.get(slot.plan.region) ?? 0) <= 0;
  }

  /** Brings a terminal's coverage in line with the model; tells the terminal if it changed. */
  apply(slot: TerminalSlot): void {
    const covered = this.isCovered(slot);
    if (covered === slot.inCoverage) return;
    slot.inCoverage = covered;
    this.inCoverageCount += covered ? 1 : -1;
    this.changes++;
    this.fleet.sendToTerminal(slot, { type: 'coverage', inCoverage: covered });
  }

  /**
   * Every terminal out of coverage at once (a nationwide outage, a benchmark's reconnect storm), or the end of
   * that outage. Returns how many terminals changed.
   */
  setEverywhere(inCoverage: boolean): number {
    const before = this.changes;
    this.outageEverywhere = !inCoverage;
    for (const slot of this.fleet.terminals) this.apply(slot);
    return this.changes - before;
  }

  /** Liveness phase: every terminal back in coverage for good. */
  restoreAll(): void {
    this.running = false;
    this.outageEverywhere = false;
    this.regionOutages.clear();
    for (const slot of this.fleet.terminals) {
      this.markovOn[slot.plan.index] = true;
      this.apply(slot);
    }
  }
}
