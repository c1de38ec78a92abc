// Goal: two runs side by side — the before/after an architect needs when changing a threshold, a policy or a
// shard count: both verdicts, what differs in the scenarios, the key figures with deltas, and every chart
// with both runs overlaid (A solid, B dashed).
// Method: the same defensive reading, figures and chart list as the run report; deltas are B − A, computed on
// the recorded integers (money stays in minor units until it is formatted), coloured by whether lower or
// higher is better for that figure.

import { comparisonChartsFor } from './charts.ts';
import { parseTimeseries } from './csv.ts';
import { escapeHtml, formatSigned } from './format.ts';
import { FIGURE_GROUPS, declineReasonFigures, figureText, figureValue, formatByKind, type Figure } from './figures.ts';
import { asSummary, runTitle } from './html.ts';
import { renderPage } from './page.ts';
import { invariantsOf, isRecord, valueAt, type Summary } from './read.ts';
import { NOT_RECORDED, chartGrid, count, scenarioYaml, thresholdsTable, verdictBanner, violationBlock } from './sections.ts';

export interface RunInput {
  summary: unknown;
  timeseriesCsv: string;
  /** Where the run came from (its directory), shown in the page header. */
  source?: string;
}

const MAX_DIFFERENCES = 200;

function deltaCell(a: Summary, b: Summary, figure: Figure): string {
  const va = figureValue(a, figure);
  const vb = figureValue(b, figure);
  if (figure.kind === 'text' || va === undefined || vb === undefined) return '<td class="num"></td><td class="num"></td>';
  const delta = vb - va;
  const judged = figure.better === undefined || delta === 0 ? '' : (delta < 0) === (figure.better === 'lower') ? 'better' : 'worse';
  const percent = va === 0 ? (delta === 0 ? '±0%' : '') : `${formatSigned(Math.round((delta / Math.abs(va)) * 1000) / 10, String)}%`;
  return `<td class="num ${judged}">${escapeHtml(formatSigned(delta, (n) => formatByKind(figure.kind, n)))}</td><td class="num ${judged}">${escapeHtml(percent)}</td>`;
}

function figureRow(a: Summary, b: Summary, figure: Figure): string {
  const show = (s: Summary) => {
    const value = figureText(s, figure);
    return value === undefined ? NOT_RECORDED : escapeHtml(value);
  };
  return `<tr><th>${escapeHtml(figure.label)}</th><td class="num">${show(a)}</td><td class="num">${show(b)}</td>${deltaCell(a, b, figure)}</tr>`;
}

function figuresTable(a: Summary, b: Summary): string {
  const groups = [...FIGURE_GROUPS];
  const reasons = declineReasonFigures(a, b);
  if (reasons.length > 0) groups.splice(1, 0, { title: 'Declined, by reason', figures: reasons });
  const body = groups
    .map((g) => `<tr class="group"><th colspan="5">${escapeHtml(g.title)}</th></tr>\n${g.figures.map((f) => figureRow(a, b, f)).join('\n')}`)
    .join('\n');
  return `<section><h2>Key figures</h2><p class="small">Δ is B − A; green where it improved, red where it got worse. Money in major units.</p>
<table class="compare"><thead><tr><th></th><th class="num">A</th><th class="num">B</th><th class="num">Δ</th><th class="num">Δ %</th></tr></thead>
<tbody>
${body}
</tbody></table></section>`;
}

function invariantsSideBySide(a: Summary, b: Summary): string {
  const rowsA = invariantsOf(a);
  const rowsB = invariantsOf(b);
  const ids = [...new Set([...(rowsA ?? []).map((r) => r.id), ...(rowsB ?? []).map((r) => r.id)])];
  const cells = (rows: ReturnType<typeof invariantsOf>, id: string) => {
    const row = rows?.find((r) => r.id === id);
    if (!row) return `<td class="num">${NOT_RECORDED}</td><td class="num"></td>`;
    return `<td class="num">${count(row.checks)}</td><td class="num${(row.violations ?? 0) > 0 ? ' fail' : ''}">${count(row.violations)}</td>`;
  };
  const body = ids
    .map((id) => {
      const name = rowsA?.find((r) => r.id === id)?.name ?? rowsB?.find((r) => r.id === id)?.name ?? '';
      return `<tr><td><code>${escapeHtml(id)}</code></td><td>${escapeHtml(name)}</td>${cells(rowsA, id)}${cells(rowsB, id)}</tr>`;
    })
    .join('\n');
  return `<section><h2>Invariants</h2>
<table class="invariants"><thead><tr><th>id</th><th>invariant</th><th class="num">A checks</th><th class="num">A violations</th><th class="num">B checks</th><th class="num">B violations</th></tr></thead>
<tbody>
${body || `<tr><td colspan="6">${NOT_RECORDED}</td></tr>`}
</tbody></table></section>`;
}

/** Every leaf of a JSON value by path ("population.shards", "faults[0].atMs"). */
export function flatten(value: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(prefix, '[]');
    value.forEach((item, i) => flatten(item, `${prefix}[${i}]`, out));
  } else if (isRecord(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) out.set(prefix, '{}');
    for (const key of keys) flatten(value[key], prefix ? `${prefix}.${key}` : key, out);
  } else {
    out.set(prefix, JSON.stringify(value) ?? 'undefined');
  }
  return out;
}

/** The scenario settings that differ between the runs (the seed included). */
export function scenarioDifferences(a: Summary, b: Summary): Array<{ path: string; a: string | undefined; b: string | undefined }> {
  const fa = flatten(valueAt(a, 'scenario') ?? {});
  const fb = flatten(valueAt(b, 'scenario') ?? {});
  const paths = [...new Set([...fa.keys(), ...fb.keys()])];
  return paths.filter((p) => fa.get(p) !== fb.get(p)).map((path) => ({ path, a: fa.get(path), b: fb.get(path) }));
}

function differencesTable(a: Summary, b: Summary): string {
  if (!isRecord(valueAt(a, 'scenario')) || !isRecord(valueAt(b, 'scenario'))) {
    return `<section><h2>What differs</h2><p>Scenario ${NOT_RECORDED} for ${isRecord(valueAt(a, 'scenario')) ? 'B' : 'A'}.</p></section>`;
  }
  const differences = scenarioDifferences(a, b);
  if (differences.length === 0) return '<section><h2>What differs</h2><p>The two runs used the same scenario, seed included.</p></section>';
  const shown = differences.slice(0, MAX_DIFFERENCES);
  const cell = (v: string | undefined) => (v === undefined ? '<span class="nr">absent</span>' : `<code>${escapeHtml(v)}</code>`);
  const more = differences.length > shown.length ? `<p class="small">…and ${differences.length - shown.length} more.</p>` : '';
  return `<section><h2>What differs</h2>
<table class="differences"><thead><tr><th>scenario setting</th><th>A</th><th>B</th></tr></thead>
<tbody>
${shown.map((d) => `<tr><td><code>${escapeHtml(d.path)}</code></td><td>${cell(d.a)}</td><td>${cell(d.b)}</td></tr>`).join('\n')}
</tbody></table>${more}</section>`;
}

function scenariosSideBySide(a: Summary, b: Summary): string {
  const block = (s: Summary, label: string) => {
    const yaml = scenarioYaml(s);
    return `<div><h3>${label}</h3>${yaml === undefined ? `<p>${NOT_RECORDED}</p>` : `<pre class="scenario">${escapeHtml(yaml)}</pre>`}</div>`;
  };
  return `<section><h2>Scenarios as run</h2><div class="scenarios">${block(a, 'A')}${block(b, 'B')}</div></section>`;
}

function describe(s: Summary, input: RunInput, label: string): string {
  return `<li><strong>${label}</strong>: ${escapeHtml(runTitle(s))}${input.source ? ` — <code>${escapeHtml(input.source)}</code>` : ''}</li>`;
}

export function renderComparison(a: RunInput, b: RunInput): string {
  const sa = asSummary(a.summary, a.source ? `${a.source}/summary.json` : 'summary.json (A)');
  const sb = asSummary(b.summary, b.source ? `${b.source}/summary.json` : 'summary.json (B)');
  const ta = parseTimeseries(a.timeseriesCsv, a.source ? `${a.source}/timeseries.csv` : 'timeseries.csv (A)');
  const tb = parseTimeseries(b.timeseriesCsv, b.source ? `${b.source}/timeseries.csv` : 'timeseries.csv (B)');
  const charts = comparisonChartsFor(ta, tb);
  const body = `<header>
<h1>payfleet comparison: ${escapeHtml(runTitle(sa))} vs ${escapeHtml(runTitle(sb))}</h1>
<ul>${describe(sa, a, 'A')}${describe(sb, b, 'B')}</ul>
</header>
<div class="verdicts">${verdictBanner(sa, 'A')}${verdictBanner(sb, 'B')}</div>
${violationBlock(sa, 'First violation in A')}
${violationBlock(sb, 'First violation in B')}
${differencesTable(sa, sb)}
${invariantsSideBySide(sa, sb)}
${thresholdsTable(sa, 'Thresholds of A')}
${thresholdsTable(sb, 'Thresholds of B')}
${figuresTable(sa, sb)}
<section><h2>Over time</h2><p class="small">A solid, B dashed, one point per simulated minute.</p>
${chartGrid(charts)}
</section>
${scenariosSideBySide(sa, sb)}
<footer>rebuild with <code>payfleet compare &lt;run-dir-A&gt; &lt;run-dir-B&gt;</code></footer>`;
  return renderPage({ title: `payfleet: ${runTitle(sa)} vs ${runTitle(sb)}`, body, charts });
}
