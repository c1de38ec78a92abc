// Goal: read and write the durations of scenario files ("90s", "40m", "24h", "1d", "250ms", or a number of ms).
// Method: a duration is a number of milliseconds, or a string of one or more <number><unit> parts
// ("1h30m"), with an optional sign where the field allows negative durations (a clock skew). The result must
// be a safe integer of milliseconds, so "1.5s" is fine and "0.5ms" is not. Parsing returns a result rather
// than throwing, so that the scenario loader can collect every problem of a file.

export const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export type DurationUnit = keyof typeof DURATION_UNITS_MS;

/** The accepted string form, also published in the JSON Schema. */
export const DURATION_PATTERN = '^[+-]?([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$';

const PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/y;

export type DurationResult = { ok: true; ms: number } | { ok: false; expected: string };

export interface DurationOptions {
  /** Negative durations allowed (a clock skew); otherwise a duration is ≥ 0. */
  signed?: boolean;
}

/** What a duration field expects, for error messages. */
export function describeDuration(options: DurationOptions = {}): string {
  return options.signed
    ? 'a signed duration such as "-5m", "90s" or a number of ms'
    : 'a duration such as "90s", "40m", "24h", "1d", "250ms" or a number of ms';
}

export function parseDuration(value: unknown, options: DurationOptions = {}): DurationResult {
  const fail: DurationResult = { ok: false, expected: describeDuration(options) };
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return fail;
    ms = value;
  } else if (typeof value === 'string') {
    const text = value.trim();
    // "-0s" is zero, but a minus sign on a field that cannot be negative is a mistake worth naming.
    if (!options.signed && text.startsWith('-')) return fail;
    const parsed = parseDurationString(text);
    if (parsed === undefined) return fail;
    ms = parsed;
  } else {
    return fail;
  }
  if (!options.signed && ms < 0) return fail;
  return { ok: true, ms };
}

function parseDurationString(text: string): number | undefined {
  let sign = 1;
  let rest = text;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < rest.length) {
    const match = PART.exec(rest);
    if (!match) return undefined;
    const unit = match[2] as DurationUnit;
    total += Number(match[1]) * DURATION_UNITS_MS[unit];
  }
  // Decimal parts are allowed only when they add up to whole milliseconds; the rounding guards against
  // binary fractions such as 0.1 * 1000 = 100.00000000000001.
  const rounded = Math.round(total);
  if (Math.abs(total - rounded) > 1e-6 || !Number.isSafeInteger(rounded)) return undefined;
  return sign * rounded === 0 ? 0 : sign * rounded;
}

/** The shortest exact writing of `ms` in the largest units ("1h30m", "-5m", "250ms", "0s"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = DURATION_UNITS_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return sign + out;
}
