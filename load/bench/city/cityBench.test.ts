// The benchmark's own behaviour at a small size: it runs the real `payfleet run` children at the default heap,
// reads their peak RSS and heap limit, compares the day with the week, and refuses bad flags. Speed and memory are
// not checked here: that is what the benchmark prints.

import { describe, expect, it } from 'vitest';
import { main } from './cityBench.ts';

describe('npm run bench:city', () => {
  it('refuses a bad flag with exit status 2, naming it', async () => {
    const lines: string[] = [];
    expect(await main(['--days', '0'], (line) => lines.push(line))).toBe(2);
    expect(lines.join('\n')).toContain("--days: '0'");
    expect(await main(['--terminals', 'many'], (line) => lines.push(line))).toBe(2);
    expect(lines.join('\n')).toContain('--terminals');
  });

  it('runs city-day children at the default heap and prints each run measured, and the week against the day', async () => {
    const lines: string[] = [];
    const code = await main(['--terminals', '100', '--days', '1,2'], (line) => lines.push(line));
    const text = lines.join('\n');
    expect(code, text).toBe(0);
    const runs = [...text.matchAll(/^run\s+100 terminals × (\d) d: ([\d.]+) s wall, ([\d.]+) GiB peak RSS, heap limit ([\d.]+) GiB, exit 0 \(OK\)$/gm)];
    expect(runs.map((run) => run[1]), text).toEqual(['1', '2']);
    for (const run of runs) {
      expect(Number(run[2])).toBeGreaterThan(0);
      expect(Number(run[3])).toBeGreaterThan(0);
      expect(Number(run[4])).toBeGreaterThan(0);
    }
    expect(text).toMatch(/^memory 2 d against 1 d: peak RSS [+-]\d+ %/m);
  }, 240_000);
});
