// Goal: one place that says what money is in payfleet.
// Method: money is always an integer number of minor units (cents). Every entry point that accepts an
// amount from outside (a scenario, a message, an HTTP body) calls `assertMinor`, so a float or a
// string never reaches a ledger.

/** An amount of money in integer minor units (for example cents). */
export type Minor = number;

/** The error every domain rule throws for bad input: a reason code and the offending value. */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly value?: unknown,
  ) {
    super(`${code}: ${message}`);
    this.name = 'DomainError';
  }
}

/** True when `value` is a safe, non-negative integer amount of minor units. */
export function isMinor(value: unknown): value is Minor {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Throws a DomainError naming `what` unless `value` is a non-negative integer amount. */
export function assertMinor(value: unknown, what: string): asserts value is Minor {
  if (!isMinor(value)) {
    throw new DomainError('badAmount', `${what} must be a non-negative integer of minor units, got ${JSON.stringify(value)}`, value);
  }
}

/** Sums amounts; kept as a function so every sum in the code base reads the same. */
export function sumMinor(amounts: Iterable<Minor>): Minor {
  let total = 0;
  for (const amount of amounts) total += amount;
  return total;
}
