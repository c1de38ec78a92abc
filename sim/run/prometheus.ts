// Goal: the live metrics of a run in Prometheus text format, on a loopback HTTP endpoint, so a person can watch a
// long mqtt run (or scrape it) while it goes.
// Method: `renderPrometheus` turns a `Metrics` into the text exposition format (counters end in `_total`,
// gauges plain, latency quantiles as a summary); `startMetricsEndpoint` serves it at GET /metrics on 127.0.0.1.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';

function line(name: string, value: number, labels: Record<string, string | number> = {}): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, '_')}"`);
  return `${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${Number.isFinite(value) ? value : 0}`;
}

function metricName(text: string): string {
  return text.replace(/[^a-zA-Z0-9_]/g, '_');
}

export function renderPrometheus(metrics: Metrics, extra: Record<string, number> = {}): string {
  const parts = metrics.summaryParts();
  const out: string[] = [];
  out.push('# HELP payfleet_orders_total Payment orders decided, by path and outcome.', '# TYPE payfleet_orders_total counter');
  for (const [path, count] of Object.entries(parts.orders.byPath)) out.push(line('payfleet_orders_total', count, { path, outcome: 'approved' }));
  out.push(line('payfleet_orders_total', parts.orders.declined, { path: 'any', outcome: 'declined' }));
  out.push('# HELP payfleet_declined_total Declined orders, by reason.', '# TYPE payfleet_declined_total counter');
  for (const [reason, count] of Object.entries(parts.orders.declinedByReason)) out.push(line('payfleet_declined_total', count, { reason }));
  out.push('# HELP payfleet_latency_ms Decision latency in ms, by path.', '# TYPE payfleet_latency_ms summary');
  for (const kind of ['local', 'remote'] as const) {
    const p = parts.latencyMs[kind];
    out.push(line('payfleet_latency_ms', p.p50, { path: kind, quantile: '0.5' }), line('payfleet_latency_ms', p.p99, { path: kind, quantile: '0.99' }));
  }
  out.push('# HELP payfleet_remitted_transactions_total Local transactions acknowledged by the servers.', '# TYPE payfleet_remitted_transactions_total counter');
  out.push(line('payfleet_remitted_transactions_total', parts.remittance.transactions));
  out.push('# HELP payfleet_server_requests_total Requests handled, by shard.', '# TYPE payfleet_server_requests_total counter');
  metrics.serverRequestsByShard().forEach((count, shard) => out.push(line('payfleet_server_requests_total', count, { shard })));
  const gauges = metrics.gauges as unknown as Record<string, number>;
  for (const [name, value] of Object.entries({ ...gauges, ...extra })) {
    const metric = `payfleet_${metricName(name)}`;
    out.push(`# TYPE ${metric} gauge`, line(metric, value));
  }
  for (const [name, value] of Object.entries(metrics.counters())) {
    const metric = `payfleet_${metricName(name)}_total`;
    out.push(`# TYPE ${metric} counter`, line(metric, value));
  }
  return out.join('\n') + '\n';
}

export interface MetricsEndpoint {
  url: string;
  close(): Promise<void>;
}

/** Serves `render()` at http://127.0.0.1:{port}/metrics (port 0: any free port). */
export async function startMetricsEndpoint(render: () => string, port = 0): Promise<MetricsEndpoint> {
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(render());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
