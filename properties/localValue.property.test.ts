// Goal: local value held on the SIM (issue 13 item 6) neither appears nor disappears between the SIM and SD: a
// purse (PMVL wallet, FF fixed amount, FLR recurring amount) reviewed, spent, reloaded, renewed and expired in any
// order of events — online or not, SD's answers late and in any order — ends, once every request is answered,
// worth on the SIM exactly what SD's books hold for it; SD's ledger still sums to zero, every leftover went to the
// operator's `expired` account, and the purse moved from one payment to the next only as INV-2 allows.
// Method: the proxy's pure rules (reviewPurses, localApproval, grantReload) and a real Ledger (fundPurse,
// postPayment) driven by random command lists over virtual time; SD answers a random outbox item at each
// `answer` and all the rest at the end, each as serverRules would (a refusal for insufficient funds ends an ask).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createMeans, localApproval, type MeansState } from '../machines/domain/means.ts';
import { grantReload, newPurse, purseValueMinor, reviewPurses, EXPIRED_VALUE_PAYEE, type PurseKind } from '../machines/domain/localValue.ts';
import { Ledger } from '../machines/domain/ledger.ts';
import { MemoryLedgerStore } from '../machines/domain/ledgerStore.ts';
import { DomainError } from '../machines/domain/money.ts';
import { emptyJournal, type Journal } from '../machines/domain/remittance.ts';
import { signRequest } from '../machines/domain/requests.ts';
import { checkMeansTransition } from '../machines/domain/invariants.ts';
import type { ReloadRequest } from '../machines/messages.ts';
import { keyFor } from './arbitraries.ts';
import { runProperty } from './fc.ts';

const PROXY = 'p1';
const FUNDING = 'm1';
const KEY = keyFor('proxy:p1', 'sim');

type Command = { kind: 'tick'; ms: number } | { kind: 'pay'; amountMinor: number; online: boolean } | { kind: 'review'; online: boolean } | { kind: 'answer'; pick: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40 * 60_000 }) }),
  fc.record({ kind: fc.constant('pay' as const), amountMinor: fc.integer({ min: 1, max: 1_500 }), online: fc.boolean() }),
  fc.record({ kind: fc.constant('review' as const), online: fc.boolean() }),
  fc.record({ kind: fc.constant('answer' as const), pick: fc.nat() }),
);

interface World {
  nowMs: number;
  means: Record<string, MeansState>;
  journal: Journal;
  ledger: Ledger;
  seq: number;
  /** The purse as the last payment left it, for the INV-2 transition check. */
  lastSeen: MeansState;
}

const purseId = (w: World): string => Object.keys(w.means).find((id) => w.means[id]!.localValue)!;

function review(w: World, online: boolean): void {
  const r = reviewPurses(w.means, w.journal, { proxyId: PROXY, sign: (u) => signRequest<ReloadRequest>(KEY, u), nowMs: w.nowMs, online });
  w.means = r.means;
  w.journal = r.journal;
}

/** SD answers one outbox item as serverRules does, and the proxy takes the answer. */
function answer(w: World, index: number): void {
  const item = w.journal.outbox[index]!;
  w.journal = { ...w.journal, outbox: w.journal.outbox.filter((_, i) => i !== index) };
  const req = item.request as ReloadRequest;
  let ok = true;
  try {
    w.ledger.fundPurse({ transferId: `lv:${req.from}/${req.reqId}`, proxyId: req.from, purseMeansId: req.purseMeansId, fundingMeansId: req.fundingMeansId, amountMinor: req.amountMinor, leftoverMinor: req.leftoverMinor, granted: req.granted });
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    expect(req.granted).toBe(false);
    ok = false;
  }
  const id = purseId(w);
  w.means = { ...w.means, [id]: grantReload(w.means[id]!, { reqId: req.reqId, ok }) };
}

function run(kind: PurseKind, fundingMinor: number, commands: Command[]): World {
  const ledger = new Ledger(new MemoryLedgerStore());
  ledger.openMeans({ meansId: FUNDING, kind: 'prepaid', openingBalanceMinor: fundingMinor, creditLimitMinor: 0 });
  const funding = createMeans({ meansId: FUNDING, kind: 'prepaid', dedicated: true, localBalanceMinor: 1_000_000 });
  const purse = newPurse(PROXY, funding, { kind, amountMinor: 1_000, periodMs: 30 * 60_000, reloadBelowMinor: 400 });
  const w: World = { nowMs: 0, means: { [FUNDING]: funding, [purse.meansId]: purse }, journal: emptyJournal(), ledger, seq: 0, lastSeen: purse };
  for (const command of commands) {
    if (command.kind === 'tick') w.nowMs += command.ms;
    else if (command.kind === 'review') review(w, command.online);
    else if (command.kind === 'answer') {
      if (w.journal.outbox.length > 0) answer(w, command.pick % w.journal.outbox.length);
    } else {
      // An internal order: the purse is reviewed first (proxyRules.decideOrder), then pays if it can.
      review(w, command.online);
      const id = purseId(w);
      const approval = localApproval(w.means[id]!, command.amountMinor, w.nowMs);
      if (!approval.ok) continue;
      // [INV-2] from the purse the last payment left to this one, only what a payment and a period reset allow.
      expect(checkMeansTransition(w.lastSeen, approval.means, { amountMinor: command.amountMinor, nowMs: w.nowMs })).toEqual([]);
      w.means = { ...w.means, [id]: approval.means };
      w.lastSeen = approval.means;
      w.ledger.postPayment({ txId: `${PROXY}:t${++w.seq}`, meansId: id, payee: 'game', amountMinor: command.amountMinor, requestId: `${PROXY}/r${w.seq}` }, 'remit');
    }
  }
  while (w.journal.outbox.length > 0) answer(w, 0);
  return w;
}

describe('local value: the SIM and SD agree', () => {
  it('a purse of any kind is worth on the SIM what SD holds for it once every request is answered', () => {
    runProperty(
      fc.property(fc.constantFrom<PurseKind>('wallet', 'fixedAmount', 'recurring'), fc.integer({ min: 0, max: 6_000 }), fc.array(commandArb, { maxLength: 40 }), (kind, fundingMinor, commands) => {
        const w = run(kind, fundingMinor, commands);
        const id = purseId(w);
        const purse = w.means[id]!;
        const sdMinor = w.ledger.accountOf(`means:${id}`)?.balanceMinor ?? 0;
        expect(sdMinor).toBe(purseValueMinor(purse));
        expect(w.ledger.sumOfBalancesMinor()).toBe(0);
        // Value never goes negative on the SIM.
        expect(purse.wallet?.balanceMinor ?? 0).toBeGreaterThanOrEqual(0);
        expect(purse.fixedAmount?.remainingMinor ?? 0).toBeGreaterThanOrEqual(0);
        expect(purse.recurring?.remainingMinor ?? 0).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });

  it('accounts every leftover: an unused fixed amount past its period, and each recurring period, goes to the operator', () => {
    runProperty(
      fc.property(fc.constantFrom<PurseKind>('fixedAmount', 'recurring'), fc.integer({ min: 1, max: 4 }), (kind, periods) => {
        // Bought (subscribed) online, never spent, reviewed after `periods` whole periods: all of it expired.
        const w = run(kind, 100_000, [{ kind: 'review', online: true }, { kind: 'answer', pick: 0 }, { kind: 'tick', ms: periods * 30 * 60_000 }, { kind: 'review', online: false }]);
        const expiredMinor = w.ledger.accountOf(`payee:${EXPIRED_VALUE_PAYEE}`)?.balanceMinor ?? 0;
        // A fixed amount leaves its S0 once; a recurring one leaves S0 for every period that ended.
        expect(expiredMinor).toBe(kind === 'fixedAmount' ? 1_000 : periods * 1_000);
        const fundedMinor = 100_000 - w.ledger.balanceOf(FUNDING).availableMinor;
        expect(fundedMinor).toBe(kind === 'fixedAmount' ? 1_000 : (periods + 1) * 1_000);
      }),
      { numRuns: 40 },
    );
  });

  it('refuses a reload of another proxy’s purse, or one funded by a means the purse does not name', () => {
    const ledger = new Ledger(new MemoryLedgerStore());
    ledger.openMeans({ meansId: FUNDING, kind: 'prepaid', openingBalanceMinor: 5_000, creditLimitMinor: 0 });
    const base = { transferId: 'lv:x', amountMinor: 100, leftoverMinor: 0, granted: false };
    expect(() => ledger.fundPurse({ ...base, proxyId: 'p2', purseMeansId: `${FUNDING}/v:${PROXY}`, fundingMeansId: FUNDING })).toThrow(/not the purse of p2/);
    expect(() => ledger.fundPurse({ ...base, proxyId: PROXY, purseMeansId: `m2/v:${PROXY}`, fundingMeansId: FUNDING })).toThrow(/not the purse/);
    expect(ledger.balanceOf(FUNDING).availableMinor).toBe(5_000);
  });
});
