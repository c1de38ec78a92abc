import { describe, it, expect } from 'vitest';
import { TraceHash } from './traceHash.ts';

type Row = [number, string, string, string, string | undefined];

function hashOf(rows: Row[]): string {
  const trace = new TraceHash();
  for (const row of rows) trace.update(...row);
  return trace.digest();
}

const rows: Row[] = [
  [40, 't1', 'sd/0', 'sync', 't1:1'],
  [80, 'sd/0', 't1', 'result', 't1:1'],
  [120.5, 't2', 'sd/1', 'remit', 't2:7'],
];

describe('TraceHash', () => {
  it('is 16 hex digits, the same for the same deliveries', () => {
    expect(hashOf(rows)).toMatch(/^[0-9a-f]{16}$/);
    expect(hashOf(rows)).toBe(hashOf(rows.map((r) => [...r] as Row)));
  });

  it('changes with the order, the time, or any field', () => {
    const base = hashOf(rows);
    const variants: Row[][] = [
      [rows[1]!, rows[0]!, rows[2]!],
      [[41, 't1', 'sd/0', 'sync', 't1:1'], rows[1]!, rows[2]!],
      [[40, 't1', 'sd/0', 'sync', 't1:1'], rows[1]!, [120.50000000000001, 't2', 'sd/1', 'remit', 't2:7']],
      [[40, 't1', 'sd/9', 'sync', 't1:1'], rows[1]!, rows[2]!],
      [[40, 't1', 'sd/0', 'debit', 't1:1'], rows[1]!, rows[2]!],
      [[40, 't1', 'sd/0', 'sync', 't1:2'], rows[1]!, rows[2]!],
      [rows[0]!, rows[1]!],
    ];
    const hashes = new Set([base, ...variants.map(hashOf)]);
    expect(hashes.size).toBe(variants.length + 1);
  });

  it('keeps field boundaries: moving a character from one field to the next changes the hash', () => {
    expect(hashOf([[1, 'ab', 'c', 'k', 'r']])).not.toBe(hashOf([[1, 'a', 'bc', 'k', 'r']]));
    expect(hashOf([[1, 'a', 'b', 'k', undefined]])).toBe(hashOf([[1, 'a', 'b', 'k', '']]));
  });

  it('spreads many similar messages over distinct digests', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(hashOf([[i, `t${i % 100}`, 'sd/0', 'sync', `r${i}`]]));
    expect(seen.size).toBe(20_000);
  });
});
