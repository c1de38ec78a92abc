// Goal: split declined orders into business declines — the payment system said no as it should (no funds, a
// ceiling or an offline cap, a wrong PIN, the user saying no) — and system failures — it could not answer (a
// remote payment timed out, a busy proxy or POS, a refused or unverifiable message, a reversal), so SLOs and
// the capacity search see failure the way k6's `http_req_failed` does, apart from the customers' own limits.
// Method: a fixed list of business reasons (the proxy's local refusals, the offline policy, the confirmation,
// and the server's refusals about money); every other reason, unknown ones included, is a system failure, so a
// new failure mode counts against capacity until someone names it business.

/** The proxy's and the server's reasons that are the customers' own limits, not failures of the system. */
const BUSINESS_REASONS = new Set([
  // The means on the SIM (machines/domain/means.ts LocalRefusal).
  'localBalanceExceeded', 'walletInsufficient', 'fixedAmountExpired', 'fixedAmountNotYetValid', 'fixedAmountInsufficient',
  'recurringInsufficient', 'ceilingExceeded',
  // The offline policy (machines/domain/discriminate.ts).
  'offlineOverThreshold', 'offlinePerPaymentCap', 'offlinePendingCount', 'offlinePendingAmount',
  // The user at the confirmation prompt.
  'userDeclined', 'wrongPin', 'pinBlocked', 'confirmationTimeout',
  // The server's refusals about money (ledger rules), as the proxy reports them.
  'server:insufficientFunds', 'server:captureExceedsHold',
]);

export type DeclineClass = 'business' | 'system';

export function classifyDecline(reason: string): DeclineClass {
  return BUSINESS_REASONS.has(reason) ? 'business' : 'system';
}

export interface DeclineSplit {
  /** Declines that were the customers' own limits. */
  business: number;
  /** Declines that were failures of the system (timeouts, busy, refused messages, reversals, anything unknown). */
  system: number;
  /** Each as a share of all orders (0 when there were none). */
  businessRate: number;
  systemRate: number;
}

export function splitDeclines(declinedByReason: Record<string, number>, totalOrders: number): DeclineSplit {
  let business = 0;
  let system = 0;
  for (const [reason, count] of Object.entries(declinedByReason)) {
    if (classifyDecline(reason) === 'business') business += count;
    else system += count;
  }
  const rate = (n: number) => (totalOrders === 0 ? 0 : n / totalOrders);
  return { business, system, businessRate: rate(business), systemRate: rate(system) };
}
