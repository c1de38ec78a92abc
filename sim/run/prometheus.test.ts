import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.ts';
import { renderPrometheus, startMetricsEndpoint } from './prometheus.ts';

describe('Prometheus endpoint', () => {
  it('exposes orders, latency, gauges and server load as Prometheus text over loopback HTTP', async () => {
    const metrics = new Metrics();
    metrics.recordOrder('remote', true);
    metrics.recordOrder(undefined, false, 'userDeclined');
    metrics.recordLatency('remote', 120);
    metrics.recordServerRequest(1);
    metrics.setGauges({ terminalsInCoverage: 42 });
    const endpoint = await startMetricsEndpoint(() => renderPrometheus(metrics, { connectedClients: 7 }));
    try {
      const response = await fetch(endpoint.url);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toContain('payfleet_orders_total{path="remote",outcome="approved"} 1');
      expect(text).toContain('payfleet_declined_total{reason="userDeclined"} 1');
      expect(text).toContain('payfleet_latency_ms{path="remote",quantile="0.99"} 120');
      expect(text).toContain('payfleet_server_requests_total{shard="1"} 1');
      expect(text).toContain('payfleet_terminalsInCoverage 42');
      expect(text).toContain('payfleet_connectedClients 7');
      for (const sample of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(sample).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+]+$/);
      expect((await fetch(endpoint.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await endpoint.close();
    }
  });
});
