// The report as a person sees it: each page opened from disk in headless Chromium (Debian's), with any
// console error, page error or network request failing the test, and every chart checked for drawn data —
// its uPlot instance holds the series, and the plot area of its canvas shows each series' colour.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { CHROMIUM_PATH, chromiumInstalled, launchChromium, type Browser } from './browser.ts';
import { CHARTS } from './charts.ts';
import { TIMESERIES_COLUMNS } from './csv.ts';
import { writeComparison, writeReport } from './write.ts';
import { FIXTURE_A, FIXTURE_B, embeddedCharts } from './testing.ts';

const IN_CI = Boolean(process.env.CI);

interface Opened {
  page: Page;
  problems: string[];
}

// The page's globals as the test reads them (the project compiles without the DOM library).
interface PageChart {
  id: string;
  element: { clientWidth: number };
  plot: {
    data: Array<Array<number | null>>;
    bbox: { left: number; top: number; width: number; height: number };
    ctx: { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } };
    width: number;
  };
}
interface PageGlobals {
  payfleetCharts: PageChart[];
  __pwned?: number;
  document: { documentElement: { scrollWidth: number; clientWidth: number } };
}

interface DrawnChart {
  id: string;
  xLength: number;
  /** Non-null values per series. */
  values: number[];
  /** Pixels of the plot area whose colour is saturated (the grid and axes are grey). */
  coloured: number;
  /** Pixels of the plot area close to each series' colour, by colour. */
  byColour: Record<string, number>;
  plotWidth: number;
  containerWidth: number;
}

// Skipped only on a developer machine without Chromium; in CI a missing browser must fail, not pass quietly.
describe.skipIf(!chromiumInstalled() && !IN_CI)('the report in Chromium', () => {
  let browser: Browser;
  let root: string;
  const files: Record<'a' | 'b' | 'compare' | 'hostile' | 'sparse', string> = { a: '', b: '', compare: '', hostile: '', sparse: '' };

  beforeAll(async () => {
    if (!chromiumInstalled()) throw new Error(`${CHROMIUM_PATH} is missing and CI is set: install Debian's chromium (apt-get install -y chromium)`);
    root = mkdtempSync(join(tmpdir(), 'payfleet-report-browser-'));
    const [a, b, hostile, sparse] = ['run-a', 'run-b', 'hostile', 'sparse'].map((name) => join(root, name)) as [string, string, string, string];
    cpSync(FIXTURE_A, a, { recursive: true });
    cpSync(FIXTURE_B, b, { recursive: true });
    cpSync(FIXTURE_A, hostile, { recursive: true });
    const summary = JSON.parse(readFileSync(join(hostile, 'summary.json'), 'utf8'));
    const evil = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>';
    summary.scenario.name = evil;
    summary.scenario.description = evil;
    summary.violation = { invariant: evil, message: evil, seed: 1, timeMs: 1, recent: [{ timeMs: 1, actor: evil, text: evil }] };
    writeFileSync(join(hostile, 'summary.json'), JSON.stringify(summary));
    cpSync(FIXTURE_A, sparse, { recursive: true });
    writeFileSync(join(sparse, 'summary.json'), '{}');
    writeFileSync(join(sparse, 'timeseries.csv'), `${TIMESERIES_COLUMNS.join(',')}\n`);
    files.a = writeReport(a);
    files.b = writeReport(b);
    files.hostile = writeReport(hostile);
    files.sparse = writeReport(sparse);
    files.compare = writeComparison(a, b, join(root, 'compare.html'));
    browser = await launchChromium({ width: 1366, height: 768 });
  });

  afterAll(async () => {
    await browser?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function open(file: string): Promise<Opened> {
    const page = await browser.context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('request', (request) => {
      if (!request.url().startsWith('file:') && !request.url().startsWith('data:')) problems.push(`network request: ${request.url()}`);
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    return { page, problems };
  }

  /** What each uPlot instance holds and what its canvas shows, read inside the page. */
  function drawnCharts(page: Page, colours: string[]): Promise<DrawnChart[]> {
    return page.evaluate((wanted) => {
      const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      const charts = (globalThis as unknown as PageGlobals).payfleetCharts;
      return charts.map(({ id, element, plot }) => {
        const { left, top, width, height } = plot.bbox;
        const pixels = plot.ctx.getImageData(Math.round(left), Math.round(top), Math.round(width), Math.round(height)).data;
        let coloured = 0;
        const byColour: Record<string, number> = Object.fromEntries(wanted.map((c) => [c, 0]));
        for (let i = 0; i < pixels.length; i += 4) {
          const [r, g, b, a] = [pixels[i]!, pixels[i + 1]!, pixels[i + 2]!, pixels[i + 3]!];
          if (a < 128) continue;
          if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
          for (const c of wanted) {
            const [cr, cg, cb] = rgb(c) as [number, number, number];
            if (Math.abs(r - cr) <= 24 && Math.abs(g - cg) <= 24 && Math.abs(b - cb) <= 24) byColour[c]!++;
          }
        }
        return {
          id,
          xLength: plot.data[0]!.length,
          values: plot.data.slice(1).map((series) => series.filter((v) => v !== null && v !== undefined).length),
          coloured,
          byColour,
          plotWidth: plot.width,
          containerWidth: element.clientWidth,
        };
      });
    }, colours);
  }

  async function expectEveryChartDrawn(file: string, opened: Opened): Promise<void> {
    const html = readFileSync(file, 'utf8');
    const charts = embeddedCharts(html);
    expect(await opened.page.locator('figure.chart').count()).toBe(CHARTS.length);
    const drawn = await drawnCharts(opened.page, [...new Set(charts.flatMap((c) => c.series.map((s) => s.color)))]);
    expect(drawn.map((d) => d.id)).toEqual(CHARTS.map((c) => c.id));
    for (const [i, chart] of charts.entries()) {
      const d = drawn[i]!;
      expect(d.xLength, chart.id).toBe(chart.x.length);
      expect(d.xLength, chart.id).toBeGreaterThan(0);
      expect(d.values, chart.id).toEqual(chart.series.map((s) => s.values.filter((v) => v !== null).length));
      for (const count of d.values) expect(count, chart.id).toBeGreaterThan(0);
      expect(d.coloured, `${chart.id}: coloured pixels in the plot area`).toBeGreaterThan(100);
      for (const colour of new Set(chart.series.map((s) => s.color))) expect(d.byColour[colour], `${chart.id}: pixels of ${colour}`).toBeGreaterThan(10);
      expect(d.plotWidth, chart.id).toBeLessThanOrEqual(d.containerWidth);
    }
  }

  async function expectNoHorizontalScroll(page: Page): Promise<void> {
    const [scrollWidth, clientWidth] = await page.evaluate(() => {
      const root = (globalThis as unknown as PageGlobals).document.documentElement;
      return [root.scrollWidth, root.clientWidth];
    });
    expect(scrollWidth).toBeLessThanOrEqual(clientWidth);
  }

  it('draws the report of an OK run: verdict first, every chart with data, no error', async () => {
    const opened = await open(files.a);
    expect(await opened.page.locator('.verdict-word').first().textContent()).toBe('OK');
    expect(await opened.page.locator('table.invariants tbody tr').count()).toBe(8);
    await expectEveryChartDrawn(files.a, opened);
    await expectNoHorizontalScroll(opened.page);
    expect(opened.problems).toEqual([]);
    await opened.page.close();
  });

  it('draws the report of a violating run, and keeps fitting a narrower window', async () => {
    const opened = await open(files.b);
    expect(await opened.page.locator('.verdict-word').first().textContent()).toBe('VIOLATION');
    expect(await opened.page.locator('section.violation').textContent()).toContain('is in two accepted remittances');
    await expectEveryChartDrawn(files.b, opened);
    await opened.page.setViewportSize({ width: 1024, height: 768 });
    await opened.page.waitForFunction(() => (globalThis as unknown as PageGlobals).payfleetCharts.every((c) => c.plot.width <= c.element.clientWidth));
    await expectNoHorizontalScroll(opened.page);
    expect(opened.problems).toEqual([]);
    await opened.page.close();
  });

  it('draws the comparison: both verdicts, every chart with both runs', async () => {
    const opened = await open(files.compare);
    expect(await opened.page.locator('.verdict-word').allTextContents()).toEqual(['OK', 'VIOLATION']);
    await expectEveryChartDrawn(files.compare, opened);
    await expectNoHorizontalScroll(opened.page);
    expect(opened.problems).toEqual([]);
    await opened.page.close();
  });

  it('shows hostile scenario text as text and runs none of it', async () => {
    const opened = await open(files.hostile);
    expect(await opened.page.evaluate(() => (globalThis as unknown as PageGlobals).__pwned)).toBeUndefined();
    expect(await opened.page.locator('h1').textContent()).toContain('<img src=x onerror="window.__pwned=1"></script>');
    expect(await opened.page.locator('img').count()).toBe(0);
    await expectEveryChartDrawn(files.hostile, opened);
    expect(opened.problems).toEqual([]);
    await opened.page.close();
  });

  it('shows a run that recorded nothing as such, without an error', async () => {
    const opened = await open(files.sparse);
    expect(await opened.page.locator('.verdict-word').textContent()).toBe('NO VERDICT');
    expect(await opened.page.evaluate(() => (globalThis as unknown as PageGlobals).payfleetCharts.length)).toBe(0);
    expect(await opened.page.locator('figure.chart .empty').count()).toBe(CHARTS.length);
    expect(opened.problems).toEqual([]);
    await opened.page.close();
  });
});
