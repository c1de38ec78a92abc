import { describe, it, expect } from 'vitest';
import { flatten, renderComparison, scenarioDifferences } from './compare.ts';
import { CHARTS, comparisonChartsFor } from './charts.ts';
import { parseTimeseries } from './csv.ts';
import { FIXTURE_A, FIXTURE_B, embeddedCharts, fixture } from './testing.ts';

const a = fixture(FIXTURE_A);
const b = fixture(FIXTURE_B);

describe('renderComparison', () => {
  const html = renderComparison({ summary: a.summary, timeseriesCsv: a.csv, source: 'runs/before' }, { summary: b.summary, timeseriesCsv: b.csv, source: 'runs/after' });

  it('shows both verdicts and where each run came from', () => {
    expect(html).toContain('<p class="caption">A</p>\n  <div class="verdict-word">OK</div>');
    expect(html).toContain('<p class="caption">B</p>\n  <div class="verdict-word">VIOLATION</div>');
    expect(html).toContain('<code>runs/before</code>');
    expect(html).toContain('<h2>First violation in B</h2>');
    expect(html).not.toContain('First violation in A');
  });

  it('lists the scenario settings that differ', () => {
    expect(html).toContain('<tr><td><code>policy.thresholdMinor</code></td><td><code>2000</code></td><td><code>1000</code></td></tr>');
    expect(html).toContain('<tr><td><code>population.shards</code></td><td><code>2</code></td><td><code>4</code></td></tr>');
  });

  it('gives each key figure for A and B with the delta B − A, judged by which way is better', () => {
    expect(html).toContain('<tr><th>shards</th><td class="num">2</td><td class="num">4</td><td class="num ">+2</td><td class="num ">+100%</td></tr>');
    expect(html).toContain('<tr><th>remote p99</th><td class="num">688 ms</td><td class="num">1,412 ms</td><td class="num worse">+724 ms</td><td class="num worse">+105.2%</td></tr>');
    expect(html).toContain('<tr><th>duplicated</th><td class="num">0</td><td class="num">1</td><td class="num worse">+1</td><td class="num worse"></td></tr>');
    expect(html).toContain('<tr><th>peak money at risk</th><td class="num">1,749.90</td><td class="num">1,551.43</td><td class="num better">-198.47</td>');
  });

  it('counts a decline reason one run never hit as zero, not as not recorded', () => {
    expect(html).toContain('<tr><th>ceilingExceeded</th><td class="num">0</td><td class="num">8</td><td class="num worse">+8</td>');
  });

  it('overlays both runs on every chart, A solid and B dashed, on one minute axis', () => {
    const charts = embeddedCharts(html);
    expect(charts.map((c) => c.id)).toEqual(CHARTS.map((c) => c.id));
    for (const chart of charts) {
      expect(chart.series.filter((s) => !s.dash).every((s) => s.label.startsWith('A: '))).toBe(true);
      expect(chart.series.filter((s) => s.dash).every((s) => s.label.startsWith('B: '))).toBe(true);
      expect(chart.x).toHaveLength(45);
    }
  });
});

describe('comparisonChartsFor', () => {
  it('aligns runs of different lengths by minute, null where a run has no row', () => {
    const ta = parseTimeseries(a.csv);
    const tb = parseTimeseries(b.csv);
    const coverage = comparisonChartsFor(ta, tb).find((c) => c.id === 'coverage')!;
    const [seriesA, seriesB] = coverage.series;
    expect(seriesA!.values).toEqual(ta.columns.terminalsInCoverage);
    expect(seriesB!.values.slice(0, 22)).toEqual(tb.columns.terminalsInCoverage);
    expect(seriesB!.values.slice(22).every((v) => v === null)).toBe(true);
  });
});

describe('scenario differences', () => {
  it('flattens objects and arrays to paths', () => {
    expect([...flatten({ a: { b: 1, c: [2, { d: 'x' }] }, e: [], f: {}, g: null })]).toEqual([
      ['a.b', '1'],
      ['a.c[0]', '2'],
      ['a.c[1].d', '"x"'],
      ['e', '[]'],
      ['f', '{}'],
      ['g', 'null'],
    ]);
  });

  it('reports added, removed and changed settings', () => {
    const diff = scenarioDifferences({ scenario: { seed: 1, faults: [{ atMs: 5 }] } }, { scenario: { seed: 2, extra: true } });
    expect(diff).toEqual([
      { path: 'seed', a: '1', b: '2' },
      { path: 'faults[0].atMs', a: '5', b: undefined },
      { path: 'extra', a: undefined, b: 'true' },
    ]);
  });

  it('says so when the scenarios are the same, and copes with one missing', () => {
    const same = renderComparison({ summary: a.summary, timeseriesCsv: a.csv }, { summary: a.summary, timeseriesCsv: a.csv });
    expect(same).toContain('The two runs used the same scenario, seed included.');
    const { scenario: _dropped, ...noScenario } = b.summary;
    const missing = renderComparison({ summary: a.summary, timeseriesCsv: a.csv }, { summary: noScenario, timeseriesCsv: b.csv });
    expect(missing).toContain('Scenario <span class="nr">not recorded</span> for B.');
  });
});

describe('missing sections in a comparison', () => {
  it('renders two empty summaries without crashing', () => {
    const header = a.csv.split('\n')[0] + '\n';
    const html = renderComparison({ summary: {}, timeseriesCsv: header }, { summary: { orders: { total: 3 } }, timeseriesCsv: header });
    expect(html).toContain('<tr><th>total</th><td class="num"><span class="nr">not recorded</span></td><td class="num">3</td><td class="num"></td><td class="num"></td></tr>');
    expect(html.match(/NO VERDICT/g)).toHaveLength(2);
  });

  it('names the run whose input is bad', () => {
    expect(() => renderComparison({ summary: a.summary, timeseriesCsv: a.csv, source: 'runs/x' }, { summary: [], timeseriesCsv: b.csv, source: 'runs/y' })).toThrow(
      /^runs\/y\/summary\.json: expected a JSON object/,
    );
    expect(() => renderComparison({ summary: a.summary, timeseriesCsv: 'x\n', source: 'runs/x' }, { summary: b.summary, timeseriesCsv: b.csv })).toThrow(/^runs\/x\/timeseries\.csv: line 1/);
  });
});
