// Goal: the confirmation step (CA, PIN) of the patent's flow: which orders the user must approve, and the PIN
// try counter of the secure element.
// Method: pure functions over a small policy and a counter. The counter blocks at zero and resets to its
// maximum on a correct PIN, like a SIM's PIN counter; a blocked counter refuses even the right PIN.

import type { Minor } from './money.ts';
import type { PaymentType } from './discriminate.ts';

/** 'none': no display; 'inform': shown, no answer needed; 'approve': yes/no; 'pin': yes with PIN. */
export type ConfirmationKind = 'none' | 'inform' | 'approve' | 'pin';

export interface ConfirmationPolicy {
  /** Orders above this amount are shown to the user for information. */
  informAboveMinor: Minor;
  /** Orders above this amount need the user's yes. */
  approveAboveMinor: Minor;
  /** Orders above this amount need the PIN. */
  pinAboveMinor: Minor;
  /** Proximity payments (a shop's POS) always need at least a yes. */
  approveProximity: boolean;
  /** Tries before the PIN blocks. */
  pinTries: number;
}

export const defaultConfirmationPolicy: ConfirmationPolicy = {
  informAboveMinor: 0,
  approveAboveMinor: 1_000,
  pinAboveMinor: 5_000,
  approveProximity: true,
  pinTries: 3,
};

export function requiredConfirmation(order: { type: PaymentType; amountMinor: Minor }, policy: ConfirmationPolicy): ConfirmationKind {
  if (order.amountMinor > policy.pinAboveMinor) return 'pin';
  if (order.amountMinor > policy.approveAboveMinor) return 'approve';
  if (order.type === 'proximity' && policy.approveProximity) return 'approve';
  if (order.amountMinor > policy.informAboveMinor) return 'inform';
  return 'none';
}

export interface PinCounter {
  triesLeft: number;
  maxTries: number;
}

export type PinCheck = { counter: PinCounter; result: 'ok' | 'wrong' | 'blocked' };

export function newPinCounter(maxTries: number): PinCounter {
  return { triesLeft: maxTries, maxTries };
}

export function isPinBlocked(counter: PinCounter): boolean {
  return counter.triesLeft <= 0;
}

/** Checks an entered PIN: a correct one resets the counter, a wrong one spends a try, zero tries blocks. */
export function checkPin(counter: PinCounter, entered: string, expected: string): PinCheck {
  if (isPinBlocked(counter)) return { counter, result: 'blocked' };
  if (entered === expected) return { counter: { ...counter, triesLeft: counter.maxTries }, result: 'ok' };
  const next = { ...counter, triesLeft: counter.triesLeft - 1 };
  return { counter: next, result: next.triesLeft <= 0 ? 'blocked' : 'wrong' };
}
