// Goal: the capacity search's report.html — the throughput–latency chart an architect reads the answer from (remote
// p99 against the arrival rate, one line per shard count, capacity and knee marked), the recommendation, and the
// table of every probe.
// Method: one self-contained HTML page with an inline SVG drawn here (no script, no external file), so it opens
// from the run folder anywhere. The rate axis is logarithmic (the search doubles, then bisects); a failed probe is
// drawn as a hollow circle, a passing one filled.

import type { ProbeResult } from './search.ts';

interface ReportRow {
  shards: number;
  capacity: number | null;
  knee: number | null;
  firstFailing: number | null;
  boundBy: string;
  probes: ProbeResult[];
}

export interface ReportInput {
  scenario: string;
  file: string;
  seed: number;
  slos: string[];
  servers: string;
  peakRate: number;
  headroom: number;
  recommendation: { text: string };
  rows: ReportRow[];
  wallMs: number;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function chart(rows: readonly ReportRow[], peakNeeded: number): string {
  const W = 760, H = 420, left = 70, right = 20, top = 20, bottom = 50;
  const points = rows.flatMap((r) => r.probes.filter((p) => p.p99Ms !== null).map((p) => ({ rate: p.rate, p99: p.p99Ms! })));
  if (points.length === 0) return '<p>No probe recorded a remote latency.</p>';
  const rates = points.map((p) => p.rate).concat(peakNeeded > 0 ? [peakNeeded] : []);
  const minX = Math.log10(Math.min(...rates)), maxX = Math.log10(Math.max(...rates) * 1.05);
  const maxY = Math.max(...points.map((p) => p.p99)) * 1.1;
  const x = (rate: number) => left + ((Math.log10(rate) - minX) / Math.max(1e-9, maxX - minX)) * (W - left - right);
  const y = (ms: number) => H - bottom - (ms / maxY) * (H - top - bottom);
  const parts: string[] = [];
  parts.push(`<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="#333"/><line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="#333"/>`);
  for (let e = Math.floor(minX); e <= Math.ceil(maxX); e++) {
    for (const m of [1, 2, 5]) {
      const rate = m * 10 ** e;
      if (Math.log10(rate) < minX || Math.log10(rate) > maxX) continue;
      parts.push(`<line x1="${x(rate)}" y1="${H - bottom}" x2="${x(rate)}" y2="${H - bottom + 5}" stroke="#333"/><text x="${x(rate)}" y="${H - bottom + 18}" font-size="11" text-anchor="middle">${rate}</text>`);
    }
  }
  for (let i = 0; i <= 5; i++) {
    const ms = (maxY / 5) * i;
    parts.push(`<line x1="${left - 5}" y1="${y(ms)}" x2="${W - right}" y2="${y(ms)}" stroke="#eee"/><text x="${left - 8}" y="${y(ms) + 4}" font-size="11" text-anchor="end">${Math.round(ms)}</text>`);
  }
  parts.push(`<text x="${(left + W - right) / 2}" y="${H - 10}" font-size="12" text-anchor="middle">arrival rate (orders/s, log scale)</text>`);
  parts.push(`<text x="16" y="${(top + H - bottom) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${(top + H - bottom) / 2})">remote p99 (ms)</text>`);
  if (peakNeeded > 0) parts.push(`<line x1="${x(peakNeeded)}" y1="${top}" x2="${x(peakNeeded)}" y2="${H - bottom}" stroke="#555" stroke-dasharray="2 3"/><text x="${x(peakNeeded) + 4}" y="${H - bottom - 6}" font-size="11">peak × headroom</text>`);
  rows.forEach((row, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const probes = row.probes.filter((p) => p.p99Ms !== null);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${probes.map((p) => `${x(p.rate).toFixed(1)},${y(p.p99Ms!).toFixed(1)}`).join(' ')}"/>`);
    for (const p of probes) parts.push(`<circle cx="${x(p.rate).toFixed(1)}" cy="${y(p.p99Ms!).toFixed(1)}" r="3.5" stroke="${colour}" fill="${p.pass ? colour : 'white'}"><title>${row.shards} shards, ${p.rate}/s: ${p.pass ? 'pass' : escape(p.failed.join('; '))}, p99 ${p.p99Ms} ms</title></circle>`);
    if (row.capacity !== null) parts.push(`<line x1="${x(row.capacity)}" y1="${top}" x2="${x(row.capacity)}" y2="${H - bottom}" stroke="${colour}" stroke-dasharray="6 4"/>`);
    parts.push(`<rect x="${left + 10}" y="${top + 8 + i * 18}" width="12" height="3" fill="${colour}"/><text x="${left + 28}" y="${top + 13 + i * 18}" font-size="12">${row.shards} shard${row.shards === 1 ? '' : 's'}: capacity ${row.capacity ?? '–'}/s, knee ${row.knee ?? '–'}/s</text>`);
  });
  return `<svg id="throughput-latency" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

const pct = (v: unknown) => (typeof v === 'number' ? `${(v * 100).toFixed(1)} %` : '–');

export function capacityReportHtml(input: ReportInput): string {
  const needed = input.peakRate * (1 + input.headroom);
  const probeRows = input.rows.flatMap((r) =>
    r.probes.map((p) => {
      const d = p.details ?? {};
      return `<tr><td>${r.shards}</td><td>${p.rate}</td><td>${p.pass ? 'pass' : `FAIL: ${escape(p.failed.join('; '))}`}</td><td>${d.p50Ms ?? '–'}</td><td>${p.p99Ms ?? '–'}</td><td>${pct(d.systemFailureRate)}</td><td>${pct(d.businessDeclineRate)}</td><td>${d.topUps ?? '–'}</td><td>${pct(d.serverBusyShare)}</td><td>${d.peakQueueDepth ?? '–'}</td><td>${d.drainMs === null || d.drainMs === undefined ? '–' : Number(d.drainMs) / 1000}</td></tr>`;
    }),
  );
  const summaryRows = input.rows.map((r) => `<tr><td>${r.shards}</td><td>${r.capacity ?? `&lt; ${r.firstFailing}`}</td><td>${r.firstFailing ?? '–'}</td><td>${r.knee ?? '–'}</td><td>${escape(r.boundBy)}</td></tr>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>payfleet capacity — ${escape(input.scenario)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}th{background:#f4f4f4}.answer{font-size:1.15em;background:#eef6ee;padding:.6em 1em;border-left:4px solid #2ca02c}</style></head>
<body>
<h1>Capacity of ${escape(input.scenario)}</h1>
<p>${escape(input.file)}, seed ${input.seed}; servers: ${escape(input.servers)}; SLOs: ${escape(input.slos.join('; '))}; search took ${(input.wallMs / 1000).toFixed(1)} s of wall time.</p>
<p class="answer" id="recommendation">${escape(input.recommendation.text)}</p>
<h2>Throughput and latency</h2>
${chart(input.rows, needed)}
<h2>Per shard count</h2>
<table id="capacity"><tr><th>shards</th><th>capacity/s</th><th>first fail/s</th><th>knee/s</th><th>bound by</th></tr>${summaryRows.join('')}</table>
<h2>Every probe</h2>
<table id="probes"><tr><th>shards</th><th>rate/s</th><th>verdict</th><th>p50 ms</th><th>p99 ms</th><th>system failures</th><th>business declines</th><th>top-ups</th><th>busiest shard busy</th><th>peak queue</th><th>drain s</th></tr>${probeRows.join('')}</table>
</body></html>
`;
}
