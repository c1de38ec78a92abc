// Goal: the INV-2 checker (period limits and non-negative balances), the same in both modes: from one decision of
// a proxy to the next, the means moved only as the decision allows — MTD within PD and never back, wallet, fixed
// and recurring amounts never negative, a recurring amount reset to S0 exactly at a period boundary.
// Method: the domain's `checkMeansTransition` (machines/domain/invariants.ts) between the last means seen and the
// new one. The last means is kept per (terminal, means), because a shared means has one local image per proxy.

import { checkMeansTransition } from '../../machines/domain/invariants.ts';
import type { MeansState } from '../../machines/domain/means.ts';
import type { ProxyResponse } from '../../machines/messages.ts';
import type { InvariantBook } from './invariantBook.ts';

export class PeriodLimitsCheck {
  private readonly lastMeans = new Map<string, MeansState>();

  constructor(private readonly book: InvariantBook) {}

  /** The means a terminal starts with, so its first decision is checked against it. */
  seed(terminalId: string, means: MeansState): void {
    this.lastMeans.set(`${terminalId}/${means.meansId}`, means);
  }

  /** [INV-2 period limits] the means after a decision, against the one after the terminal's previous decision. */
  check(terminalId: string, means: MeansState, response: ProxyResponse): void {
    const key = `${terminalId}/${means.meansId}`;
    const before = this.lastMeans.get(key);
    if (before) {
      // Only a local approval says exactly how much the local limits moved; a remote one or a sync moves MTD or SL
      // by what SD said, which the domain check allows.
      const payment = response.ok && response.proof.path !== 'remote' ? { amountMinor: response.proof.amountMinor, nowMs: response.proof.timeMs } : null;
      const problems = checkMeansTransition(before, means, payment);
      // One check per transition, however many things it found wrong (as the per-decision check always counted).
      this.book.check('INV-2', problems.length === 0, () => problems.map((p) => p.message).join('; '), [terminalId]);
    }
    this.lastMeans.set(key, means);
  }
}
