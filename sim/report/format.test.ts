import { describe, it, expect } from 'vitest';
import { escapeHtml, formatCount, formatDurationMs, formatMinor, formatSigned } from './format.ts';

describe('escapeHtml', () => {
  it('escapes the five characters that matter in content and quoted attributes', () => {
    expect(escapeHtml(`<img src=x onerror="alert('&')">`)).toBe('&lt;img src=x onerror=&quot;alert(&#39;&amp;&#39;)&quot;&gt;');
  });

  it('leaves other text alone and stringifies non-strings', () => {
    expect(escapeHtml('région sud — 10 min')).toBe('région sud — 10 min');
    expect(escapeHtml(42)).toBe('42');
    expect(escapeHtml(null)).toBe('null');
  });
});

describe('formatMinor', () => {
  it('shows minor units as major units with two decimals', () => {
    expect(formatMinor(0)).toBe('0.00');
    expect(formatMinor(5)).toBe('0.05');
    expect(formatMinor(40)).toBe('0.40');
    expect(formatMinor(100)).toBe('1.00');
    expect(formatMinor(174_990)).toBe('1,749.90');
    expect(formatMinor(123_456_789)).toBe('1,234,567.89');
  });

  it('keeps the sign on amounts below one major unit', () => {
    expect(formatMinor(-5)).toBe('-0.05');
    expect(formatMinor(-123_456)).toBe('-1,234.56');
  });

  it('is exact up to the largest safe integer (no float division)', () => {
    expect(formatMinor(Number.MAX_SAFE_INTEGER)).toBe('90,071,992,547,409.91');
    expect(formatMinor(30)).toBe('0.30');
  });

  it('flags a figure that is not an integer of minor units instead of rounding it', () => {
    expect(formatMinor(12.5)).toBe('12.5 (not an integer of minor units)');
    expect(formatMinor(Number.NaN)).toBe('NaN (not an integer of minor units)');
  });
});

describe('formatCount and formatDurationMs', () => {
  it('groups thousands', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(1_234_567)).toBe('1,234,567');
    expect(formatCount(-1000)).toBe('-1,000');
    expect(formatCount(1234.5)).toBe('1,234.5');
  });

  it('picks the unit that reads best', () => {
    expect(formatDurationMs(4)).toBe('4 ms');
    expect(formatDurationMs(2_140)).toBe('2,140 ms');
    expect(formatDurationMs(41_000)).toBe('41 s');
    expect(formatDurationMs(598_000)).toBe('9.97 min');
    expect(formatDurationMs(9_000_000)).toBe('2.5 h');
  });

  it('signs deltas', () => {
    expect(formatSigned(3, formatCount)).toBe('+3');
    expect(formatSigned(-19_847, formatMinor)).toBe('-198.47');
    expect(formatSigned(0, formatCount)).toBe('±0');
  });
});
