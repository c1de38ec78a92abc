// The report reads what the simulator writes: these tests hold the two to one format, so that a renamed
// column or summary field fails here instead of showing up as "not recorded" on every report.
import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { TIMESERIES_COLUMNS as SIMULATOR_COLUMNS } from '../run/metrics.ts';
import { runVirtual } from '../run/runVirtual.ts';
import { loadScenario, withOverrides } from '../scenario/load.ts';
import { TIMESERIES_COLUMNS } from './csv.ts';
import { renderReport } from './html.ts';
import { embeddedCharts } from './testing.ts';

const QUICKSTART = fileURLToPath(new URL('../../scenarios/quickstart.yaml', import.meta.url));

describe('the simulator and the report agree on the formats', () => {
  it('timeseries.csv has the columns the report reads, in the same order', () => {
    expect([...SIMULATOR_COLUMNS]).toEqual([...TIMESERIES_COLUMNS]);
  });

  it('a real run renders with every section recorded', () => {
    const scenario = withOverrides(loadScenario(QUICKSTART), { terminals: 40, duration: 15 * 60_000 });
    const { summary, timeseriesCsv } = runVirtual(scenario, { file: QUICKSTART, outDir: 'runs/contract' });
    const html = renderReport(JSON.parse(JSON.stringify(summary)), timeseriesCsv);
    expect(html).not.toContain('not recorded');
    expect(html).toMatch(/<div class="verdict-word">(OK|VIOLATION)<\/div>/);
    const charts = embeddedCharts(html);
    expect(charts.find((c) => c.id === 'coverage')!.empty).toBe(false);
    expect(charts.find((c) => c.id === 'orders-outcome')!.empty).toBe(false);
  });
});
