// Goal: the secure element's PIN try counter behaves like a SIM's, under any sequence of entries: a wrong PIN
// spends one try, the right one restores them all, and after `maxTries` wrong entries in a row the counter is
// blocked for good — even the right PIN is refused — and the proxy declines every order that needs it.
// Method: a three-line model (tries left, blocked) run side by side with `checkPin` over random entry
// sequences; then the same at the machine level, through a World with a real proxy, for a few runs.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkPin, isPinBlocked, newPinCounter } from '../machines/domain/confirmation.ts';
import { walletMeans, World } from '../machines/testing/world.ts';
import { runProperty } from './fc.ts';

const PIN = '1234';
const entryArb = fc.oneof(fc.constant(PIN), fc.stringMatching(/^[0-9]{4}$/), fc.string({ maxLength: 6 }));

describe('PIN counter', () => {
  it('follows the model: wrong spends a try, right restores all, maxTries wrong in a row blocks for good', () => {
    runProperty(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(entryArb, { maxLength: 30 }), (maxTries, entries) => {
        let counter = newPinCounter(maxTries);
        let modelLeft = maxTries;
        let modelBlocked = false;
        for (const entry of entries) {
          const check = checkPin(counter, entry, PIN);
          if (modelBlocked) {
            expect(check.result).toBe('blocked');
          } else if (entry === PIN) {
            expect(check.result).toBe('ok');
            modelLeft = maxTries;
          } else {
            modelLeft--;
            modelBlocked = modelLeft === 0;
            expect(check.result).toBe(modelBlocked ? 'blocked' : 'wrong');
          }
          counter = check.counter;
          expect(counter.triesLeft).toBe(modelBlocked ? 0 : modelLeft);
          expect(counter.triesLeft).toBeGreaterThanOrEqual(0);
          expect(counter.triesLeft).toBeLessThanOrEqual(maxTries);
          expect(isPinBlocked(counter)).toBe(modelBlocked);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('makes the proxy decline PIN orders after the counter blocks, and pay them while it does not', () => {
    runProperty(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), (rightPins) => {
        // Internal payments above the PIN threshold: always local, always asking for the PIN.
        const world = new World({ terminals: [{ id: 't1', means: [walletMeans('m1', 1_000_000)] }], scheme: 'sim' });
        let wrongInARow = 0;
        let blocked = false;
        rightPins.forEach((right, i) => {
          const orderId = `o${i}`;
          world.pay('t1', { orderId, type: 'internal', meansId: 'm1', amountMinor: 6_000 });
          if (!blocked) world.answer('t1', orderId, true, right ? PIN : '0000');
          if (blocked) {
            expect(world.declineOf(orderId)).toBe('pinBlocked');
            return;
          }
          if (right) {
            wrongInARow = 0;
            expect(world.proofOf(orderId).amountMinor).toBe(6_000);
          } else {
            wrongInARow++;
            blocked = wrongInARow >= world.policy.confirmation.pinTries;
            expect(world.declineOf(orderId)).toBe(blocked ? 'pinBlocked' : 'wrongPin');
          }
        });
        expect(isPinBlocked(world.proxyState('t1').pin)).toBe(blocked);
      }),
      { numRuns: 25 },
    );
  });
});
