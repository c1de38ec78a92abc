// Goal: turn numbers and user text into what the page shows: escaped HTML, money in major units, counts and
// durations a person reads at a glance.
// Method: money is formatted from the integer of minor units with integer arithmetic only (quotient and
// remainder by 100), never through a float division, so 0.1 + 0.2 never shows up on a report; anything
// that is not an integer of minor units is shown as it is, flagged, rather than rounded into a plausible lie.

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** 1234567 → "1,234,567". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const sign = n < 0 ? '-' : '';
  const [whole, fraction] = Math.abs(n).toString().split('.') as [string, string | undefined];
  return sign + groupThousands(whole) + (fraction === undefined ? '' : `.${fraction}`);
}

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Minor units → major units with 2 decimals: 123456 → "1,234.56", -5 → "-0.05". */
export function formatMinor(amountMinor: number): string {
  if (!Number.isSafeInteger(amountMinor)) return `${String(amountMinor)} (not an integer of minor units)`;
  const sign = amountMinor < 0 ? '-' : '';
  const abs = Math.abs(amountMinor);
  const major = Math.trunc(abs / 100);
  const cents = abs - major * 100;
  return `${sign}${groupThousands(String(major))}.${String(cents).padStart(2, '0')}`;
}

/** A duration in milliseconds in the unit that reads best: "152 ms", "4.2 s", "9.97 min", "2.5 h". */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const abs = Math.abs(ms);
  if (abs < 10_000) return `${formatCount(Math.round(ms * 10) / 10)} ms`;
  if (abs < 120_000) return `${trim(ms / 1000)} s`;
  if (abs < 7_200_000) return `${trim(ms / 60_000)} min`;
  return `${trim(ms / 3_600_000)} h`;
}

function trim(value: number): string {
  return String(Number(value.toPrecision(3)));
}

/** A signed difference for a comparison: "+12", "-3", "±0". */
export function formatSigned(delta: number, format: (n: number) => string): string {
  if (delta === 0) return '±0';
  return delta > 0 ? `+${format(delta)}` : `-${format(-delta)}`;
}
