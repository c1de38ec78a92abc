// Goal: the parts of a report page that are not charts — the verdict, the invariants, the thresholds, the
// first violation, the key figures and the scenario as run — as HTML fragments, for the run report and the
// comparison alike.
// Method: every fragment reads the summary through the defensive accessors of read.ts and escapes every
// piece of text it puts on the page (scenario names, messages and reasons are user or run input); a section
// the run did not record says "not recorded".

import { stringify as toYaml } from 'yaml';
import { escapeHtml, formatCount, formatDurationMs } from './format.ts';
import { FIGURE_GROUPS, declineReasonFigures, figureText, type Figure } from './figures.ts';
import { arrayAt, invariantsOf, isRecord, numberAt, recordAt, stringAt, valueAt, verdictOf, type Summary } from './read.ts';
import { thresholdsOf } from './thresholds.ts';

export const NOT_RECORDED = '<span class="nr">not recorded</span>';

export function text(value: string | undefined): string {
  return value === undefined ? NOT_RECORDED : escapeHtml(value);
}

export function count(value: number | undefined): string {
  return value === undefined ? NOT_RECORDED : escapeHtml(formatCount(value));
}

export function scenarioName(summary: Summary): string | undefined {
  return stringAt(summary, 'scenario.name');
}

export function seedOf(summary: Summary): number | undefined {
  return numberAt(summary, 'seed') ?? numberAt(summary, 'scenario.seed');
}

const VERDICT_WORD = { ok: 'OK', violation: 'VIOLATION', unknown: 'NO VERDICT' } as const;

/** The verdict banner: the word, what it rests on, the seed and the replay command. */
export function verdictBanner(summary: Summary, caption?: string): string {
  const verdict = verdictOf(summary);
  const invariants = invariantsOf(summary);
  const held = invariants?.filter((row) => (row.violations ?? 0) === 0 && row.checks !== undefined).length;
  const idle = invariants?.filter((row) => row.violations === 0 && row.checks === 0).length ?? 0;
  const broken = invariants?.filter((row) => (row.violations ?? 0) > 0) ?? [];
  const thresholds = thresholdsOf(summary);
  const failed = thresholds.results.filter((t) => !t.pass).length;
  const lines: string[] = [];
  lines.push(
    invariants === undefined
      ? `invariants ${NOT_RECORDED}`
      : `${escapeHtml(held)} of ${escapeHtml(invariants.length)} invariants held` +
          (idle > 0 ? ` (${idle} never checked in this run)` : '') +
          broken.map((row) => `<br><strong>${escapeHtml(row.id)} ${escapeHtml(row.name)}: ${escapeHtml(formatCount(row.violations ?? 0))} violation${row.violations === 1 ? '' : 's'}</strong>`).join(''),
  );
  lines.push(
    thresholds.source === 'none'
      ? 'no thresholds set'
      : `thresholds: ${thresholds.results.length - failed} of ${thresholds.results.length} passed` + (failed > 0 ? ` · <strong class="fail">${failed} failed</strong>` : ''),
  );
  const replay = stringAt(summary, 'replay');
  return `<section class="verdict verdict-${verdict}" data-verdict="${verdict}">
  ${caption ? `<p class="caption">${escapeHtml(caption)}</p>` : ''}
  <div class="verdict-word">${VERDICT_WORD[verdict]}</div>
  <div class="verdict-detail">
    <p>${lines.join('<br>')}</p>
    <p>seed <code>${seedOf(summary) === undefined ? NOT_RECORDED : escapeHtml(seedOf(summary))}</code> · mode ${text(stringAt(summary, 'mode'))} · trace <code class="hash">${text(stringAt(summary, 'traceHash'))}</code></p>
    <p>replay: ${replay === undefined ? NOT_RECORDED : `<code class="cmd">${escapeHtml(replay)}</code>`}</p>
  </div>
</section>`;
}

export function invariantsTable(summary: Summary): string {
  const rows = invariantsOf(summary);
  if (rows === undefined) return `<section><h2>Invariants</h2><p>${NOT_RECORDED}</p></section>`;
  const body = rows
    .map((row) => {
      const state = row.violations === undefined || row.checks === undefined ? 'unknown' : row.violations > 0 ? 'fail' : row.checks === 0 ? 'idle' : 'pass';
      const word = { pass: 'held', fail: 'VIOLATED', idle: 'never checked', unknown: 'not recorded' }[state];
      return `<tr class="${state}"><td><code>${escapeHtml(row.id)}</code></td><td>${escapeHtml(row.name)}</td><td class="num">${count(row.checks)}</td><td class="num">${count(row.violations)}</td><td class="state">${word}</td></tr>`;
    })
    .join('\n');
  return `<section><h2>Invariants</h2>
<table class="invariants"><thead><tr><th>id</th><th>invariant</th><th class="num">checks</th><th class="num">violations</th><th></th></tr></thead>
<tbody>
${body || '<tr><td colspan="5">none recorded</td></tr>'}
</tbody></table></section>`;
}

function actualText(actual: unknown): string {
  if (actual === null || actual === undefined) return NOT_RECORDED;
  return escapeHtml(typeof actual === 'number' ? formatCount(actual) : JSON.stringify(actual));
}

export function thresholdsTable(summary: Summary, heading = 'Thresholds'): string {
  const { source, results } = thresholdsOf(summary);
  if (source === 'none') return `<section><h2>${escapeHtml(heading)}</h2><p>No thresholds set in this scenario.</p></section>`;
  const body = results
    .map(
      (t) =>
        `<tr class="${t.pass ? 'pass' : 'fail'}"><td><code>${escapeHtml(t.expression)}</code></td><td class="num">${actualText(t.actual)}</td><td class="state">${t.pass ? 'pass' : 'FAIL'}</td><td>${t.problem ? escapeHtml(t.problem) : ''}</td></tr>`,
    )
    .join('\n');
  const origin = source === 'scenario' ? '<p class="small">Checked by the report against this summary (the run did not record its own verdicts).</p>' : '';
  return `<section><h2>${escapeHtml(heading)}</h2>${origin}
<table class="thresholds"><thead><tr><th>threshold</th><th class="num">actual</th><th></th><th></th></tr></thead>
<tbody>
${body}
</tbody></table></section>`;
}

/** The first violation, with the recent events of the actors involved. */
export function violationBlock(summary: Summary, heading = 'First violation'): string {
  const violation = recordAt(summary, 'violation');
  if (!violation) return '';
  const recent = (arrayAt(violation, 'recent') ?? []).filter(isRecord);
  // Virtual time can carry fractions of a millisecond; whole milliseconds are what a person compares.
  const ms = (value: number | undefined) => (value === undefined ? undefined : Math.round(value));
  const timeMs = ms(numberAt(violation, 'timeMs'));
  const events = recent
    .map((e) => `<tr><td class="num">${ms(numberAt(e, 'timeMs')) === undefined ? '' : escapeHtml(formatCount(ms(numberAt(e, 'timeMs'))!))}</td><td><code>${escapeHtml(stringAt(e, 'actor') ?? '')}</code></td><td>${escapeHtml(stringAt(e, 'text') ?? '')}</td></tr>`)
    .join('\n');
  return `<section class="violation"><h2>${escapeHtml(heading)}</h2>
<p><strong>${text(stringAt(violation, 'invariant'))}</strong>${timeMs === undefined ? '' : ` at t = ${escapeHtml(formatCount(timeMs))} ms (${escapeHtml(formatDurationMs(timeMs))})`}, seed ${numberAt(violation, 'seed') === undefined ? NOT_RECORDED : escapeHtml(numberAt(violation, 'seed'))}</p>
<p class="message">${text(stringAt(violation, 'message'))}</p>
${events ? `<table class="events"><thead><tr><th class="num">t (ms)</th><th>actor</th><th>event</th></tr></thead><tbody>\n${events}\n</tbody></table>` : ''}
</section>`;
}

function figureRows(summary: Summary, figures: Figure[]): string {
  return figures
    .map((f) => {
      const value = figureText(summary, f);
      return `<tr><th>${escapeHtml(f.label)}</th><td class="num">${value === undefined ? NOT_RECORDED : escapeHtml(value)}</td></tr>`;
    })
    .join('\n');
}

/** The key figures of one run, as a grid of small tables. */
export function figuresGrid(summary: Summary): string {
  const reasons = declineReasonFigures(summary);
  const cards = FIGURE_GROUPS.map((group) => `<table class="figures"><caption>${escapeHtml(group.title)}</caption><tbody>\n${figureRows(summary, group.figures)}\n</tbody></table>`);
  const reasonBody = recordAt(summary, 'orders.declinedByReason') === undefined ? `<tr><td>${NOT_RECORDED}</td></tr>` : reasons.length === 0 ? '<tr><td>no order declined</td></tr>' : figureRows(summary, reasons);
  cards.splice(1, 0, `<table class="figures"><caption>Declined, by reason</caption><tbody>\n${reasonBody}\n</tbody></table>`);
  return `<section><h2>Key figures</h2><p class="small">Money in major units (minor units ÷ 100).</p><div class="figure-grid">\n${cards.join('\n')}\n</div></section>`;
}

/** The resolved scenario as YAML, exactly as the run used it. */
export function scenarioYaml(summary: Summary): string | undefined {
  const scenario = valueAt(summary, 'scenario');
  if (!isRecord(scenario)) return undefined;
  return toYaml(scenario, { lineWidth: 0 });
}

export function scenarioBlock(summary: Summary): string {
  const yaml = scenarioYaml(summary);
  const file = stringAt(summary, 'scenario.file');
  if (yaml === undefined) return `<section><h2>Scenario as run</h2><p>${NOT_RECORDED}</p></section>`;
  return `<section><h2>Scenario as run</h2>
<p>${file === undefined ? '' : `From <code>${escapeHtml(file)}</code>, with `}every default applied (durations in ms, amounts in minor units).</p>
<pre class="scenario">${escapeHtml(yaml)}</pre>
</section>`;
}

/** The figures panel a chart grid sits in. */
export function chartGrid(charts: Array<{ id: string; title: string; note: string }>): string {
  const figures = charts
    .map(
      (c) => `<figure class="chart" data-chart="${escapeHtml(c.id)}"><figcaption><h3>${escapeHtml(c.title)}</h3><p>${escapeHtml(c.note)}</p></figcaption><div class="plot"></div></figure>`,
    )
    .join('\n');
  return `<div class="chart-grid">\n${figures}\n</div>`;
}
