// Goal: whatever order the network delivers messages in and the server's store finishes its writes in — server
// answers overtaking one another, a duplicate landing after the original's answer, a request resent while the
// first copy is still being written, a server crash between a request and its commit — two proxies and their
// server end with every approved payment on the ledger exactly once, nothing else on it, and the books balanced
// at every step [INV-3], [INV-4], [INV-5], [INV-7].
// Method: `fc.scheduler()` owns every delivery and every ledger commit: each message the machines send and each
// write the server hands its ledger becomes a scheduled task, and fast-check picks which runs next (and
// shrinks the interleaving when a property fails). The test's own actions (payments, coverage, time, server
// crashes) run in between, letting a random number of scheduled tasks through at each `wait`. During the run the
// network also drops or duplicates some messages; the drain then delivers everything.

import { describe, it } from 'vitest';
import fc from 'fast-check';
import { policyWith, walletMeans } from '../machines/testing/world.ts';
import type { BusMessage } from '../machines/testing/bus.ts';
import type { PaymentOrder } from '../machines/messages.ts';
import { ModelWorld, type PendingWrite } from './harness.ts';
import { checkAfterDrain, checkConservation, checkMeans } from './checks.ts';
import { runAsyncProperty } from './fc.ts';

const TERMINALS = ['t1', 't2'] as const;
const PAYEES = ['shop', 'cafe'];

const actionArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      a: fc.constant('pay' as const),
      t: fc.constantFrom(...TERMINALS),
      type: fc.constantFrom<PaymentOrder['type']>('internal', 'proximity', 'telepayment'),
      amountMinor: fc.oneof(fc.integer({ min: 1, max: 1_500 }), fc.integer({ min: 1, max: 6_000 })),
      payee: fc.constantFrom(...PAYEES),
      remoteMode: fc.constantFrom('debit' as const, 'authCapture' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('coverage' as const), t: fc.constantFrom(...TERMINALS), inCoverage: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('advance' as const), ms: fc.integer({ min: 100, max: 20_000 }) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('remitNow' as const), t: fc.constantFrom(...TERMINALS) }) },
  { weight: 1, arbitrary: fc.constant({ a: 'serverCrash' as const }) },
  { weight: 4, arbitrary: fc.record({ a: fc.constant('wait' as const), k: fc.integer({ min: 1, max: 6 }) }) },
);

function label(m: BusMessage): string {
  const msg = m.message as { kind: string; reqId?: string; ok?: boolean; code?: string };
  return `${m.from}→${m.to} ${msg.kind}${msg.reqId ? ` ${msg.reqId}` : ''}${msg.kind === 'result' ? ` ${msg.code}` : ''}`;
}

describe('proxy: scheduled interleavings of server responses', () => {
  it('ends with every approved payment on the ledger once, whatever the order of deliveries and commits [INV-3, INV-4, INV-5, INV-7]', async () => {
    await runAsyncProperty(
      fc.asyncProperty(
        fc.scheduler(),
        fc.record({
          mode: fc.constantFrom('grouped' as const, 'aggregate' as const),
          maxBatchSize: fc.integer({ min: 1, max: 3 }),
          backlogCount: fc.integer({ min: 1, max: 4 }),
          sl: fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 })),
        }),
        fc.array(actionArb, { minLength: 1, maxLength: 25 }),
        // The network's fate for each message in turn: 0 lost, 1 duplicated, anything else delivered once.
        fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 32 }),
        async (s, setup, actions, fates) => {
          const policy = policyWith({ remittance: { mode: setup.mode, maxBatchSize: setup.maxBatchSize, triggers: { backlogCount: setup.backlogCount } } });
          const world = new ModelWorld({
            terminals: [
              { id: 't1', means: [walletMeans('m1', setup.sl[0])] },
              { id: 't2', means: [walletMeans('m2', setup.sl[1])] },
            ],
            scheme: 'sim',
            policy,
          });
          const errors: unknown[] = [];
          const scheduledWrites = new Set<PendingWrite>();
          let next = 0;
          let draining = false;
          let orderSeq = 0;

          const check = (where: string) => {
            checkConservation(world.ledger, where);
            for (const t of TERMINALS) for (const m of Object.values(world.proxyState(t).means)) checkMeans(m, `${where} (${t})`);
          };
          // Errors inside scheduled callbacks would be lost as unhandled rejections: keep them for the property.
          const guarded = (where: string, body: () => void) => () => {
            try {
              body();
              check(where);
              pump();
            } catch (error) {
              errors.push(error);
            }
          };
          const pump = (): void => {
            for (const m of world.net.takeAll()) {
              const fate = draining ? 2 : fates[next++ % fates.length]!;
              if (fate === 0) continue;
              for (let copy = 0; copy < (fate === 1 ? 2 : 1); copy++) {
                void s.schedule(Promise.resolve(label(m)), label(m)).then(guarded(`deliver ${label(m)}`, () => world.net.deliverMessage(m)));
              }
            }
            for (const w of world.writes) {
              if (scheduledWrites.has(w)) continue;
              scheduledWrites.add(w);
              const what = `commit ${w.command.request.kind} ${w.command.request.reqId}`;
              void s.schedule(Promise.resolve(what), what).then(guarded(what, () => world.commitWrite(w)));
            }
          };

          for (const action of actions) {
            switch (action.a) {
              case 'pay':
                world.pay(action.t, { orderId: `o${++orderSeq}`, type: action.type, meansId: action.t === 't1' ? 'm1' : 'm2', amountMinor: action.amountMinor, payee: action.payee, remoteMode: action.remoteMode });
                world.answerPrompts();
                break;
              case 'coverage':
                world.setCoverage(action.t, action.inCoverage);
                break;
              case 'advance':
                world.advanceBy(action.ms);
                break;
              case 'remitNow':
                world.requestRemittance(action.t);
                world.settle();
                break;
              case 'serverCrash':
                world.crashServer();
                break;
              case 'wait': {
                const count = Math.min(action.k, s.count());
                if (count > 0) await s.waitNext(count);
                break;
              }
            }
            check(`after ${action.a}`);
            pump();
            if (errors.length > 0) throw errors[0];
          }

          // Drain: both terminals in coverage, the network reliable, SD asking for any backlog.
          draining = true;
          for (const t of TERMINALS) world.setCoverage(t, true);
          for (let round = 0; round < 400; round++) {
            pump();
            await s.waitIdle();
            if (errors.length > 0) throw errors[0];
            if (TERMINALS.every((t) => world.isQuiet(t))) break;
            for (const t of TERMINALS) {
              if (world.proxyState(t).journal.pending.length > 0) {
                world.requestRemittance(t);
                world.settle();
              }
            }
            world.advanceBy(5_000);
          }
          for (const t of TERMINALS) {
            if (!world.isQuiet(t)) throw new Error(`[INV-7 liveness] ${t} not drained: ${JSON.stringify(world.proxyState(t).journal.outbox.map((i) => i.reqId))}`);
          }
          checkAfterDrain(world.drainFacts(TERMINALS, PAYEES));
        },
      ),
      { numRuns: 60 },
    );
  });
});
