// The benchmark's own behaviour at a small size: every phase runs against real processes and reports measured
// figures, and the storm ends with nothing lost. Speed is not checked here (that is what the benchmark prints).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from './main.ts';
import { figuresOf, percentile } from './bareRoundTrips.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-bench-mqtt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('percentiles of round trips', () => {
  it('takes the nearest rank and derives the rate from the elapsed time', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile([], 99)).toBe(0);
    expect(figuresOf(4, [1, 2, 3, 4], 2000)).toMatchObject({ roundTrips: 4, perSecond: 2, p50Ms: 2, p99Ms: 4 });
  });
});

describe('npm run bench:mqtt', () => {
  it('refuses a bad flag with exit status 2, naming it', async () => {
    expect(await main(['--concurrency', '0,x'], () => undefined)).toBe(2);
    expect(await main(['--crypto', 'rsa'], () => undefined)).toBe(2);
    expect(await main(['--terminals', '10', '--concurrency', '20'], () => undefined)).toBe(2);
  });

  it('measures the baseline, the harness and a reconnect storm, and ends with nothing lost', async () => {
    const lines: string[] = [];
    const out = join(dir, 'run');
    const code = await main(['--terminals', '40', '--seconds', '1', '--concurrency', '1,8', '--out', out], (line) => lines.push(line));
    const text = lines.join('\n');
    expect(code, text).toBe(0);
    expect(text).toMatch(/connected terminals\s+40\/40/);
    // One row per concurrency, each with a measured, non-zero rate on both sides.
    for (const concurrency of [1, 8]) {
      const row = new RegExp(`^\\s+${concurrency}\\s+(\\d+)\\s+[\\d.]+\\s+[\\d.]+\\s+(\\d+)\\s`, 'm').exec(text);
      expect(row, `row for ${concurrency} in flight:\n${text}`).not.toBeNull();
      expect(Number(row![1])).toBeGreaterThan(0);
      expect(Number(row![2])).toBeGreaterThan(0);
    }
    expect(text).toMatch(/40 terminals out of coverage .* 40 offline payments/);
    expect(text).toMatch(/all reconnected after [\d.]+ s; backlog drained after [\d.]+ s/);
    expect(text).toMatch(/lost 0 transactions, duplicated 0/);
    const bench = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8'));
    expect(bench.summary.ok).toBe(true);
    expect(bench.harness.storm.offlineApproved).toBe(40);
    expect(bench.harness.loops.map((l: { concurrency: number }) => l.concurrency)).toEqual([1, 8]);
  }, 180_000);
});
