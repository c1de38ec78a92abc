import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './durations.ts';

const ms = (value: unknown, signed = false): number | undefined => {
  const result = parseDuration(value, signed ? { signed: true } : {});
  return result.ok ? result.ms : undefined;
};

describe('parseDuration', () => {
  it('reads every unit', () => {
    expect(ms('250ms')).toBe(250);
    expect(ms('90s')).toBe(90_000);
    expect(ms('40m')).toBe(2_400_000);
    expect(ms('24h')).toBe(86_400_000);
    expect(ms('1d')).toBe(86_400_000);
  });

  it('reads numbers as milliseconds', () => {
    expect(ms(0)).toBe(0);
    expect(ms(1500)).toBe(1500);
  });

  it('adds compound parts and accepts decimals that make whole milliseconds', () => {
    expect(ms('1h30m')).toBe(5_400_000);
    expect(ms('1m30s250ms')).toBe(90_250);
    expect(ms('1.5s')).toBe(1500);
    expect(ms('0.1s')).toBe(100);
  });

  it('refuses fractions of a millisecond, unknown units, empty text and non-integers', () => {
    for (const bad of ['0.5ms', '5x', '', 'h', '1 h', '1h 30m', '5', 1.5, Number.NaN, true, null, {}]) {
      expect(ms(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('refuses negative durations unless the field is signed', () => {
    expect(ms('-5m')).toBeUndefined();
    expect(ms(-1)).toBeUndefined();
    expect(ms('-0s')).toBeUndefined();
    expect(ms('-5m', true)).toBe(-300_000);
    expect(ms('+5m', true)).toBe(300_000);
    expect(ms(-1, true)).toBe(-1);
  });

  it('says what it expected', () => {
    const result = parseDuration('soon');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.expected).toContain('"90s"');
  });
});

describe('formatDuration', () => {
  it('writes the largest exact units', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(86_400_000)).toBe('1d');
    expect(formatDuration(-300_000)).toBe('-5m');
  });

  it('round-trips through parseDuration', () => {
    for (const value of [1, 999, 1000, 61_001, 3_600_000, 90_061_001, -42_000]) {
      expect(ms(formatDuration(value), true)).toBe(value);
    }
  });
});
