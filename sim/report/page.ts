// Goal: the shell of a report page: one self-contained HTML file that opens from disk with no network — the
// charting library, its styles, the page's styles, its script and its data all inline.
// Method: uPlot's IIFE build and stylesheet are read from node_modules when a page is rendered (so the page
// always carries the installed version), and `client.js` from beside this file. A Content-Security-Policy
// forbids every fetch, so a page that tried to load anything would fail loudly in the browser test. Inline
// code and data are made safe for a <script> element: no "</script" or "<!--" can close or confuse it.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ChartData } from './charts.ts';
import { escapeHtml } from './format.ts';

const require = createRequire(import.meta.url);

interface Assets {
  uplotJs: string;
  uplotCss: string;
  clientJs: string;
}

function readAssets(): Assets {
  return {
    uplotJs: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    uplotCss: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    clientJs: readFileSync(new URL('./client.js', import.meta.url), 'utf8'),
  };
}

/** Makes script text safe inside <script>…</script>; "<\/" and "<\!" mean the same in JS strings and regexes. */
export function inlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

export function inlineStyle(css: string): string {
  return css.replace(/<\/(style)/gi, '<\\/$1');
}

/** JSON for a <script type="application/json"> element: every "<" escaped, so no text in it can end the element. */
export function jsonForScript(data: unknown): string {
  return JSON.stringify(data).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const PAGE_CSS = `
:root { --ok: #177a34; --ok-bg: #e6f4ea; --bad: #b3261e; --bad-bg: #fce8e6; --warn-bg: #fff4e0; --muted: #5f6368; --line: #dadce0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #202124; background: #fff; }
main { max-width: 1360px; margin: 0 auto; padding: 16px 24px 48px; }
header h1 { font-size: 20px; margin: 0 0 2px; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 0; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
code.cmd { background: #f1f3f4; padding: 2px 6px; border-radius: 4px; user-select: all; }
code.hash { font-size: 12px; word-break: break-all; }
.nr { color: var(--muted); font-style: italic; }
.small { color: var(--muted); font-size: 12px; margin: 0 0 6px; }
.verdict { display: flex; gap: 24px; align-items: center; margin: 16px 0; padding: 16px 24px; border-radius: 8px; border: 2px solid; }
.verdict-ok { background: var(--ok-bg); border-color: var(--ok); }
.verdict-violation { background: var(--bad-bg); border-color: var(--bad); }
.verdict-unknown { background: var(--warn-bg); border-color: #b06000; }
.verdict-word { font-size: 44px; font-weight: 800; letter-spacing: 1px; min-width: 170px; flex: none; }
.verdict-ok .verdict-word { color: var(--ok); }
.verdict-violation .verdict-word { color: var(--bad); }
.verdict-detail p { margin: 2px 0; }
.verdict .caption { font-weight: 700; margin: 0; min-width: 24px; font-size: 20px; }
.verdicts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.verdicts .verdict { margin: 8px 0; flex-direction: column; align-items: flex-start; gap: 4px; }
.verdicts .verdict-word { font-size: 32px; min-width: 0; line-height: 1.1; }
.verdicts .verdict .caption { font-size: 14px; color: var(--muted); }
.fail, tr.fail .state { color: var(--bad); font-weight: 700; }
tr.pass .state { color: var(--ok); }
tr.idle .state { color: var(--muted); }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
thead th { border-bottom: 1px solid var(--line); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td { background: var(--bad-bg); }
.violation { background: var(--bad-bg); padding: 4px 16px 12px; border-radius: 8px; }
.violation .message { font-family: ui-monospace, Menlo, Consolas, monospace; }
.figure-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 8px 24px; }
table.figures caption { text-align: left; font-weight: 700; padding: 4px 0; }
table.figures th { font-weight: 400; color: var(--muted); }
table.compare td.better { color: var(--ok); }
table.compare td.worse { color: var(--bad); font-weight: 600; }
table.compare tr.group th { padding-top: 12px; font-weight: 700; color: #202124; }
.chart-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px 24px; }
figure.chart { margin: 0; min-width: 0; }
figure.chart figcaption p { margin: 0 0 4px; color: var(--muted); font-size: 12px; }
figure.chart .plot { min-height: 60px; }
figure.chart .empty { color: var(--muted); font-style: italic; border: 1px dashed var(--line); padding: 24px; text-align: center; }
.uplot .u-legend { font-size: 12px; }
pre.scenario { background: #f8f9fa; border: 1px solid var(--line); border-radius: 6px; padding: 12px; max-height: 520px; overflow: auto; font-size: 12px; }
.scenarios { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media (max-width: 900px) { .verdicts, .scenarios { grid-template-columns: 1fr; } .verdict { flex-direction: column; align-items: flex-start; } }
`;

export interface PageInput {
  title: string;
  /** The page's HTML, already escaped. */
  body: string;
  charts: ChartData[];
}

export function renderPage(input: PageInput): string {
  const assets = readAssets();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(input.title)}</title>
<style>${inlineStyle(assets.uplotCss)}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
${input.body}
</main>
<script type="application/json" id="payfleet-data">${jsonForScript({ charts: input.charts })}</script>
<script>${inlineScript(assets.uplotJs)}</script>
<script>${inlineScript(assets.clientJs)}</script>
</body>
</html>
`;
}
