// Goal: the payment proxy's (PP's) steps for value held locally — reviewing its purses of local value (PMVL, FF,
// FLR) so they are reloaded, bought, renewed and accounted, taking SD's answers to those reloads — and ending the
// MTD periods that follow remittances or connections rather than time.
// Method: helpers on a `Flow` (proxyFlow.ts) that the order and outbox steps call; the rules are the pure
// functions of domain/localValue.ts and domain/means.ts. A proxy without a purse or such a ceiling is left exactly
// as it was (same objects, no outbox change), so runs without them replay as before.

import type { ServerResult } from './messages.ts';
import { applyBalances } from './domain/proxyRules.ts';
import { signRequest, UNSTORED_REFUSAL_CODES } from './domain/requests.ts';
import { grantReload, reviewPurses } from './domain/localValue.ts';
import { endCeilingPeriod, type MeansState } from './domain/means.ts';
import { acknowledge } from './domain/remittance.ts';
import type { Flow } from './proxyFlow.ts';

/** Brings the proxy's purses (or one) up to now and, online, asks SD for the value they need. */
export function reviewPursesNow(f: Flow, onlyMeansId?: string): void {
  const c = f.c;
  const key = c.input.key;
  const reviewed = reviewPurses(c.state.means, c.state.journal, {
    proxyId: c.state.proxyId,
    sign: (unsigned) => signRequest(key, unsigned),
    nowMs: c.input.now(),
    online: c.linkUp,
    onlyMeansId,
  });
  if (!reviewed.changed) return;
  c.state = { ...c.state, means: reviewed.means, journal: reviewed.journal };
  f.outboxChanged = true;
}

/**
 * SD answered a reload: the item leaves the outbox (unless the refusal is one SD did not store: it is resent as it
 * was), the purse that asked gets its value on an ok, and the funding means' figure is applied.
 */
export function takeReloadResult(f: Flow, result: ServerResult): void {
  const c = f.c;
  if (!result.ok && UNSTORED_REFUSAL_CODES.has(result.code)) {
    c.state = applyBalances(c.state, result.balances);
    return;
  }
  const { journal, item } = acknowledge(c.state.journal, result.reqId);
  if (!item) {
    c.state = applyBalances(c.state, result.balances);
    return;
  }
  let means = c.state.means;
  const purse = means[item.meansId];
  if (purse) {
    const granted = grantReload(purse, result);
    if (granted !== purse) means = { ...means, [purse.meansId]: granted };
  }
  c.state = applyBalances({ ...c.state, journal, means }, result.balances);
  f.e.emit({ type: 'proxy.acknowledged', reqId: result.reqId, requestKind: result.ok ? 'reload' : `reload:${result.code}`, ackAtMs: c.input.now() });
  f.outboxChanged = true;
}

/** Ends the MTD period of every ceiling that follows `by` (a connection), or of the means named (a remittance). */
export function endPeriods(f: Flow, by: 'remittance' | 'connection', meansIds?: Iterable<string>): void {
  const c = f.c;
  let means: Record<string, MeansState> = c.state.means;
  for (const meansId of meansIds ?? Object.keys(c.state.means)) {
    const current = means[meansId];
    if (!current) continue;
    const ended = endCeilingPeriod(current, by);
    if (ended === current) continue;
    if (means === c.state.means) means = { ...means };
    means[meansId] = ended;
  }
  if (means !== c.state.means) c.state = { ...c.state, means };
}
