import { describe, it, expect } from 'vitest';
import { renderReport } from './html.ts';
import { CHARTS } from './charts.ts';
import { parseTimeseries, TIMESERIES_COLUMNS } from './csv.ts';
import { ReportInputError } from './errors.ts';
import { formatMinor } from './format.ts';
import { inlineScript, jsonForScript } from './page.ts';
import { FIXTURE_A, FIXTURE_B, embeddedCharts, fixture } from './testing.ts';

const a = fixture(FIXTURE_A);
const b = fixture(FIXTURE_B);
const HEADER_ONLY = `${TIMESERIES_COLUMNS.join(',')}\n`;

describe('renderReport', () => {
  const html = renderReport(a.summary, a.csv);

  it('is one self-contained page: uPlot, styles, script and data inline, every fetch forbidden', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('var uPlot=function');
    expect(html).toContain('.uplot');
    expect(html).toContain('window.payfleetCharts');
    expect(html).toContain("default-src 'none'");
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+stylesheet/i);
    expect(html).not.toMatch(/<img[^>]+src="?https?:/i);
  });

  it('puts the verdict first, then the figures and charts, then the scenario', () => {
    const verdict = html.indexOf('class="verdict verdict-ok"');
    const invariants = html.indexOf('<h2>Invariants</h2>');
    const thresholds = html.indexOf('<h2>Thresholds</h2>');
    const charts = html.indexOf('class="chart-grid"');
    const scenario = html.indexOf('<h2>Scenario as run</h2>');
    expect(verdict).toBeGreaterThan(0);
    expect([verdict, invariants, thresholds, charts, scenario]).toEqual([verdict, invariants, thresholds, charts, scenario].sort((p, q) => p - q));
    expect(html).toContain('<div class="verdict-word">OK</div>');
  });

  it('lists every invariant with its checks and violations, the seed and the replay command', () => {
    for (const id of ['INV-1', 'INV-2', 'INV-3', 'INV-4', 'INV-5', 'INV-6', 'INV-7', 'ORACLE']) expect(html).toContain(`<code>${id}</code>`);
    expect(html).toContain('<td class="num">41,210</td><td class="num">0</td><td class="state">held</td>');
    expect(html).toContain('<td class="num">0</td><td class="num">0</td><td class="state">never checked</td>');
    expect(html).toContain('seed <code>1</code>');
    expect(html).toContain('<code class="cmd">payfleet replay runs/quickstart-1</code>');
  });

  it('shows money in major units from the integer minor units', () => {
    const remittance = a.summary.remittance as { peakBacklogAmountMinor: number };
    expect(html).toContain(`<th>peak money at risk</th><td class="num">${formatMinor(remittance.peakBacklogAmountMinor)}</td>`);
    expect(html).toContain('<th>approved amount</th><td class="num">10,934.66</td>');
  });

  it('embeds one chart per chart spec, carrying the columns of timeseries.csv', () => {
    const charts = embeddedCharts(html);
    const ts = parseTimeseries(a.csv);
    expect(charts.map((c) => c.id)).toEqual(CHARTS.map((c) => c.id));
    for (const [i, spec] of CHARTS.entries()) {
      expect(html).toContain(`<figure class="chart" data-chart="${spec.id}">`);
      expect(charts[i]!.x).toEqual(ts.columns.minute);
      expect(charts[i]!.series.map((s) => s.values)).toEqual(spec.series.map((s) => ts.columns[s.column]));
      expect(charts[i]!.empty).toBe(false);
    }
  });

  it('shows a violation: the verdict, the failed invariant, the first violation and failed thresholds', () => {
    const page = renderReport(b.summary, b.csv);
    expect(page).toContain('<div class="verdict-word">VIOLATION</div>');
    expect(page).toContain('<strong>INV-4 nothing lost, nothing twice: 1 violation</strong>');
    expect(page).toContain('<h2>First violation</h2>');
    expect(page).toContain('is in two accepted remittances');
    expect(page).toContain('<tr class="fail"><td><code>latencyMs.remote.p99 &lt; 500</code></td><td class="num">1,412</td><td class="state">FAIL</td>');
    expect(page).toContain('thresholds: 2 of 4 passed');
  });

  it('is the same page for the same inputs (no timestamp, no randomness)', () => {
    expect(renderReport(a.summary, a.csv)).toBe(html);
  });
});

describe('escaping', () => {
  const hostile = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script><!--';
  const summary = structuredClone(a.summary) as Record<string, any>;
  summary.scenario.name = hostile;
  summary.scenario.description = hostile;
  summary.replay = `payfleet replay 'runs/${hostile}'`;
  summary.invariants[0].name = hostile;
  summary.orders.declinedByReason = { [hostile]: 3 };
  summary.violation = { invariant: hostile, message: hostile, seed: 1, timeMs: 5, recent: [{ timeMs: 1, actor: hostile, text: hostile }] };
  summary.scenario.thresholds = [hostile];
  const page = renderReport(summary, a.csv);

  it('never lets user text become markup', () => {
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('<script>window.__pwned');
    expect(page).toContain('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;&lt;/script&gt;');
    expect(page.match(/<script\b/g)).toHaveLength(3);
    expect(page.match(/<\/script>/gi)).toHaveLength(3);
    expect(page).toContain(`<title>payfleet: ${'&lt;img src=x'}`);
  });

  it('keeps inline code and data from closing their <script> element', () => {
    expect(inlineScript('var s = "</script><!--";')).toBe('var s = "<\\/script><\\!--";');
    const data = { text: '</script><script>alert(1)</script>\u2028' };
    const json = jsonForScript(data);
    expect(json).not.toMatch(/<\/?script/i);
    expect(JSON.parse(json)).toEqual(data);
  });
});

describe('missing and malformed sections', () => {
  it('renders an empty summary and a header-only time series, saying what was not recorded', () => {
    const page = renderReport({}, HEADER_ONLY);
    expect(page).toContain('<div class="verdict-word">NO VERDICT</div>');
    expect(page).toContain('invariants <span class="nr">not recorded</span>');
    expect(page).toContain('replay: <span class="nr">not recorded</span>');
    expect(page).toContain('<h2>Scenario as run</h2><p><span class="nr">not recorded</span></p>');
    expect(embeddedCharts(page).every((c) => c.empty)).toBe(true);
  });

  it('renders with any one top-level section of a real summary missing', () => {
    for (const key of Object.keys(a.summary)) {
      const summary = { ...a.summary };
      delete summary[key];
      const page = renderReport(summary, a.csv);
      expect(page, key).toContain('</html>');
      if (['orders', 'latencyMs', 'remittance', 'ledger', 'invariants', 'scenario', 'replay', 'traceHash', 'mode', 'drainedAtMs'].includes(key)) {
        expect(page, key).toContain('not recorded');
      }
    }
  });

  it('renders sections of the wrong type as not recorded', () => {
    const summary = { ...a.summary, orders: 'lots', latencyMs: [1, 2], invariants: 'all fine', violation: 5, thresholds: { x: 1 }, scenario: null, ok: 'yes', seed: '1' };
    const page = renderReport(summary, a.csv);
    expect(page).toContain('<div class="verdict-word">NO VERDICT</div>');
    expect(page).toContain('<th>total</th><td class="num"><span class="nr">not recorded</span></td>');
    expect(page).toContain('<th>remote p99</th><td class="num"><span class="nr">not recorded</span></td>');
    expect(page).not.toContain('First violation');
  });

  it('believes the invariant counts over the ok flag', () => {
    const summary = structuredClone(a.summary) as Record<string, any>;
    summary.invariants[3].violations = 2;
    expect(renderReport(summary, a.csv)).toContain('<div class="verdict-word">VIOLATION</div>');
  });

  it('marks a chart without any sample as empty rather than drawing a blank frame', () => {
    const lines = a.csv.trim().split('\n');
    const header = lines[0]!.split(',');
    const remote = ['latencyRemoteP50Ms', 'latencyRemoteP99Ms'].map((c) => header.indexOf(c));
    const csv = [lines[0], ...lines.slice(1).map((l) => l.split(',').map((v, i) => (remote.includes(i) ? '' : v)).join(','))].join('\n');
    const charts = embeddedCharts(renderReport(a.summary, csv));
    expect(charts.filter((c) => c.empty).map((c) => c.id)).toEqual(['latency-remote']);
  });

  it('refuses a summary that is not a JSON object, and a bad time series, naming the file', () => {
    for (const value of [null, [], 'text', 3]) {
      expect(() => renderReport(value, a.csv)).toThrow(ReportInputError);
      expect(() => renderReport(value, a.csv)).toThrow(/^summary\.json: expected a JSON object/);
    }
    expect(() => renderReport(a.summary, 'a,b\n1,2\n', { summary: 'r/summary.json', timeseries: 'r/timeseries.csv' })).toThrow(/^r\/timeseries\.csv: line 1: not a payfleet time series/);
  });
});
