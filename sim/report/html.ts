// Goal: `report.html` of one run — verdict first (OK or VIOLATION, every invariant, thresholds, seed and the
// replay command), then the key figures, the charts over time, and the scenario as run.
// Method: parse the time series (bad CSV throws ReportInputError), read the summary defensively (a missing
// section shows "not recorded"), assemble escaped HTML fragments from sections.ts, and hand them with the
// chart data to the self-contained page shell. Rendering is pure: same inputs, same page (no timestamp).

import { chartsFor } from './charts.ts';
import { parseTimeseries } from './csv.ts';
import { ReportInputError } from './errors.ts';
import { escapeHtml } from './format.ts';
import { renderPage } from './page.ts';
import { isRecord, numberAt, stringAt, type Summary } from './read.ts';
import { lossAccountSection } from './lossSection.ts';
import {
  chartGrid,
  figuresGrid,
  invariantsTable,
  scenarioBlock,
  scenarioName,
  seedOf,
  thresholdsTable,
  verdictBanner,
  violationBlock,
} from './sections.ts';

/** Refuses a summary that is not a JSON object; everything inside it is optional. */
export function asSummary(value: unknown, file = 'summary.json'): Summary {
  if (!isRecord(value)) {
    const found = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    throw new ReportInputError('notAnObject', file, `expected a JSON object (a payfleet run summary), found ${found}`, value);
  }
  return value;
}

export function runTitle(summary: Summary): string {
  const name = scenarioName(summary) ?? 'unnamed scenario';
  const seed = seedOf(summary);
  return seed === undefined ? name : `${name}, seed ${seed}`;
}

/** File names used in error messages (write.ts passes the paths it read). */
export interface ReportFiles {
  summary: string;
  timeseries: string;
}

export function renderReport(summaryJson: unknown, timeseriesCsvText: string, files: ReportFiles = { summary: 'summary.json', timeseries: 'timeseries.csv' }): string {
  const summary = asSummary(summaryJson, files.summary);
  const timeseries = parseTimeseries(timeseriesCsvText, files.timeseries);
  const charts = chartsFor(timeseries);
  const description = stringAt(summary, 'scenario.description');
  const version = numberAt(summary, 'version');
  const body = `<header>
<h1>payfleet run report: ${escapeHtml(runTitle(summary))}</h1>
${description ? `<p>${escapeHtml(description)}</p>` : ''}
</header>
${verdictBanner(summary)}
${violationBlock(summary)}
${invariantsTable(summary)}
${thresholdsTable(summary)}
${figuresGrid(summary)}
${lossAccountSection(summary)}
<section><h2>Over time</h2><p class="small">One point per simulated minute (${escapeHtml(timeseries.rowCount)} minutes). Hover a chart to read every chart at that minute.</p>
${chartGrid(charts)}
</section>
${scenarioBlock(summary)}
<footer>summary.json version ${version === undefined ? 'not recorded' : escapeHtml(version)} · rebuild with <code>payfleet report &lt;run-dir&gt;</code></footer>`;
  return renderPage({ title: `payfleet: ${runTitle(summary)}`, body, charts });
}
