// Goal: what the report's tests share: the fixture runs, and reading back the chart data a page embeds.
// Method: plain functions over the files in fixtures/ (hand-made runs shaped like the quickstart's).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChartData } from './charts.ts';

export const FIXTURE_A = fileURLToPath(new URL('./fixtures/run-a/', import.meta.url));
export const FIXTURE_B = fileURLToPath(new URL('./fixtures/run-b/', import.meta.url));

export interface Fixture {
  summary: Record<string, unknown>;
  csv: string;
}

export function fixture(dir: string): Fixture {
  return { summary: JSON.parse(readFileSync(`${dir}summary.json`, 'utf8')) as Record<string, unknown>, csv: readFileSync(`${dir}timeseries.csv`, 'utf8') };
}

/** The chart data embedded in a rendered page. */
export function embeddedCharts(html: string): ChartData[] {
  const match = /<script type="application\/json" id="payfleet-data">(.*?)<\/script>/s.exec(html);
  if (!match) throw new Error('no embedded chart data');
  return (JSON.parse(match[1]!) as { charts: ChartData[] }).charts;
}
