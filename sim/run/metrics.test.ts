import { describe, it, expect } from 'vitest';
import { Metrics, TIMESERIES_COLUMNS } from './metrics.ts';

describe('Metrics', () => {
  it('counts orders by path and outcome, with declines by reason', () => {
    const m = new Metrics();
    m.recordOrder('internal', true);
    m.recordOrder('localOffline', true);
    m.recordOrder('localOffline', true);
    m.recordOrder('remote', true);
    m.recordOrder(undefined, false, 'offlineOverThreshold');
    m.recordOrder(undefined, false, 'offlineOverThreshold');
    m.recordOrder('remote', false, 'insufficientFunds');
    m.recordOrder(undefined, false);
    const { orders } = m.summaryParts();
    expect(orders).toEqual({
      total: 8,
      approved: 4,
      declined: 4,
      byPath: { internal: 1, localOffline: 2, localBelowThreshold: 0, remote: 2 },
      declinedByReason: { insufficientFunds: 1, offlineOverThreshold: 2, unknown: 1 },
    });
  });

  it('reports latency percentiles and exact maxima per path, and remittance lag', () => {
    const m = new Metrics();
    for (let i = 1; i <= 100; i++) m.recordLatency('local', i);
    m.recordLatency('remote', 120.4);
    m.recordLatency('remote', 3000);
    m.recordRemittance(3, [1000, 2000, 60_000]);
    m.recordRemittance(1);
    m.recordRemittanceLag(500);
    const parts = m.summaryParts();
    expect(parts.latencyMs.local).toEqual({ p50: 50, p99: 99, max: 100 });
    expect(parts.latencyMs.remote.p50).toBe(120);
    expect(parts.latencyMs.remote.max).toBe(3000);
    expect(parts.remittance.transactions).toBe(4);
    expect(parts.remittance.batches).toBe(2);
    expect(parts.remittance.lagMs.p50).toBe(1000);
    expect(Math.abs(parts.remittance.lagMs.p99 - 60_000) / 60_000).toBeLessThan(0.001);
    expect(() => m.recordLatency('local', -1)).toThrow(/badDuration/);
  });

  it('keeps gauges, the backlog peak, and the backlog at the end', () => {
    const m = new Metrics();
    m.setBacklog(3, 900);
    m.setBacklog(10, 4000);
    m.setGauges({ backlogCount: 2, backlogAmountMinor: 700, terminalsInCoverage: 42 });
    expect(m.peaks).toEqual({ backlogCount: 10, backlogAmountMinor: 4000 });
    expect(m.gauges.terminalsInCoverage).toBe(42);
    const { remittance } = m.summaryParts();
    expect(remittance.pendingAtEnd).toBe(2);
    expect(remittance.peakBacklogAmountMinor).toBe(4000);
  });

  it('writes one row per minute with the counts of that minute and the gauges at its end', () => {
    const m = new Metrics();
    m.recordOrder('remote', true);
    m.recordLatency('remote', 200);
    m.recordServerRequest(0);
    m.recordServerRequest(1);
    m.recordReconnect(3);
    m.setGauges({ terminalsInCoverage: 5, brokerConnections: 6, backlogCount: 1, backlogAmountMinor: 250 });
    const first = m.sample(60_000);
    m.recordOrder('localOffline', true);
    m.recordLatency('local', 7);
    m.recordRemittanceLag(90_000);
    m.recordServerRequest(1);
    m.setGauges({ terminalsInCoverage: 4 });
    m.sample(120_000);
    expect(first).toMatchObject({ minute: 1, timeMs: 60_000, ordersRemote: 1, approved: 1, latencyRemoteP50Ms: 200, latencyLocalP50Ms: null, serverRequests: 2, reconnects: 3, brokerConnections: 6, backlogAmountMinor: 250 });
    const second = m.rows[1]!;
    expect(second).toMatchObject({ minute: 2, ordersRemote: 0, ordersLocalOffline: 1, latencyRemoteP99Ms: null, latencyLocalP99Ms: 7, serverRequests: 1, reconnects: 0, terminalsInCoverage: 4 });
    expect(second.remittanceLagP99Ms).toBeGreaterThanOrEqual(90_000);
    expect(m.serverRequestsByShard()).toEqual([1, 2]);
  });

  it('records server requests in bulk (a runner that reads them from the ledgers), into the minute and the shard', () => {
    const m = new Metrics();
    m.recordServerRequest(1, 40);
    m.recordServerRequest(1);
    m.recordServerRequest(0, 0);
    expect(m.sample(60_000).serverRequests).toBe(41);
    expect(m.serverRequestsByShard()).toEqual([0, 41]);
    expect(() => m.recordServerRequest(0, -1)).toThrow(/count of requests/);
    expect(() => m.recordServerRequest(0, 1.5)).toThrow(/count of requests/);
  });

  it('folds a second sample in the same minute into its row', () => {
    const m = new Metrics();
    m.recordLatency('local', 10);
    m.recordOrder('internal', true);
    m.sample(60_000);
    m.recordLatency('local', 1000);
    m.recordOrder('internal', true);
    m.setGauges({ backlogCount: 9 });
    m.sample(60_000);
    expect(m.rows).toHaveLength(1);
    expect(m.rows[0]).toMatchObject({ minute: 1, ordersInternal: 2, approved: 2, latencyLocalP99Ms: 1000, latencyLocalP50Ms: 10, backlogCount: 9 });
    // A partial last minute gets its own row, numbered by the minute it ends in.
    m.recordOrder('internal', true);
    m.sample(61_500);
    expect(m.rows[1]).toMatchObject({ minute: 2, timeMs: 61_500, ordersInternal: 1, latencyLocalP50Ms: null });
    expect(() => m.sample(30_000)).toThrow(/badTime/);
  });

  it('writes the CSV with exactly the agreed columns, in order, and empty cells for no sample', () => {
    const m = new Metrics();
    m.recordOrder('localBelowThreshold', true);
    m.sample(60_000);
    const lines = m.timeseriesCsv().split('\n');
    expect(lines[0]).toBe(
      'minute,timeMs,ordersInternal,ordersLocalOffline,ordersLocalBelowThreshold,ordersRemote,approved,declined,latencyLocalP50Ms,latencyLocalP99Ms,latencyRemoteP50Ms,latencyRemoteP99Ms,terminalsInCoverage,backlogCount,backlogAmountMinor,remittanceLagP99Ms,serverRequests,reconnects,brokerConnections',
    );
    expect(lines[1]).toBe('1,60000,0,0,1,0,1,0,,,,,0,0,0,,0,0,0');
    expect(lines[1]!.split(',')).toHaveLength(TIMESERIES_COLUMNS.length);
    expect(lines[2]).toBe('');
  });

  it('keeps named counters', () => {
    const m = new Metrics();
    m.count('proxyRefused:badPin');
    m.count('proxyRefused:badPin', 2);
    m.count('terminalRefused');
    expect(m.counter('proxyRefused:badPin')).toBe(3);
    expect(m.counters()).toEqual({ 'proxyRefused:badPin': 3, terminalRefused: 1 });
  });
});
