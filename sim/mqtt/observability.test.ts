import { beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadScenarioText } from '../scenario/load.ts';
import { parseTimeseries } from '../report/csv.ts';
import type { RunSummary } from '../run/summary.ts';
import { main } from '../cli/main.ts';
import { runMqttCommand, type RunMqttIo } from './runMqtt.ts';
import { liveChildCount } from './processes.ts';
import { runDirs } from './runTestSupport.ts';
import { SqliteLedgerStore } from '../sd/sqliteLedgerStore.ts';

// One small mqtt run, watched from outside while it goes: an open-model arrival stream (one order a second of
// run time, at most one in flight, each waiting 2.5 s for its user's yes, so most arrivals are dropped), local
// and remote payments on two shards, played at ×30 with a live metrics endpoint on a free port.
const SCENARIO = `
name: mqtt-observed
seed: 5
duration: 3m
drain: 5m
crypto: sim
population:
  terminals: 30
  shards: 2
  means: [{ name: wallet, kind: virtualWallet, openingBalanceMinor: 1000000 }]
  apps:
    - { name: game, type: internal, ordersPerHour: 4, amount: { uniformMinor: [50, 400] } }
    - { name: shop, type: telepayment, ordersPerHour: 4, amount: { uniformMinor: [3000, 8000] } }
  users: { declineProbability: 0, wrongPinProbability: 0, thinkTime: 2500ms }
policy: { remoteTimeout: 2m, confirmation: { approveAboveMinor: 0, pinAboveMinor: 1000000 } }
coverage: { meanOffDuration: 0 }
arrival: { executor: constant-arrival-rate, rate: 1, maxInFlight: 1 }
`;

const runDir = runDirs('payfleet-observed-');

/** The value of one sample line of a Prometheus text page (`name{labels} value`), or undefined. */
function sampleValue(page: string, series: string): number | undefined {
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('an mqtt run, observed', () => {
  let dir = '';
  let status = -1;
  let summary: RunSummary;
  let lines: string[] = [];
  let url: string | undefined;
  /** Every page scraped while the run went. */
  const pages: string[] = [];
  let afterRun: unknown;

  beforeAll(async () => {
    dir = runDir();
    const io: RunMqttIo & { lines: string[] } = { out: (l) => lines.push(l), err: (l) => lines.push(l), handleSignals: false, lines };
    lines = io.lines;
    const scenario = loadScenarioText(SCENARIO, 'mqtt-observed.yaml');
    let finished = false;
    const run = runMqttCommand(scenario, 'mqtt-observed.yaml', { outDir: dir, timeScale: 30, quiet: true, metricsPort: 0 }, io).finally(() => {
      finished = true;
    });
    // Scrape as Prometheus would, until the run is over (the endpoint closes before the run resolves, so every
    // page that came back was served while the run went).
    while (!finished) {
      url ??= lines.map((l) => /metrics: (http:\/\/\S+)/.exec(l)?.[1]).find((u) => u !== undefined);
      if (url) {
        try {
          const response = await fetch(url);
          if (response.ok) pages.push(await response.text());
        } catch {
          // Closed between the check and the request: the run just ended.
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    status = await run;
    summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
    afterRun = await fetch(url!).then(
      () => 'answered',
      (error: Error) => error,
    );
  }, 120_000);

  it('runs clean', () => {
    expect(summary.ok, `${lines.join('\n')}\n${JSON.stringify(summary.violation ?? null)}`).toBe(true);
    expect(status).toBe(0);
    expect(summary.ledger.lost).toBe(0);
    expect(liveChildCount()).toBe(0);
  });

  it('serves live Prometheus metrics while the run goes, on the port it prints, and closes the endpoint after it', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(pages.length).toBeGreaterThan(0);
    // Counters move during the run: some page counts approved remote orders, and the fleet in coverage.
    const remote = pages.map((p) => sampleValue(p, 'payfleet_orders_total{path="remote",outcome="approved"}') ?? 0);
    expect(Math.max(...remote)).toBeGreaterThan(0);
    expect(Math.max(...pages.map((p) => sampleValue(p, 'payfleet_terminalsInCoverage') ?? 0))).toBe(30);
    expect(pages.some((p) => (sampleValue(p, 'payfleet_linksUp') ?? 0) > 0)).toBe(true);
    expect(pages.at(-1)).toContain('# TYPE payfleet_backlogCount gauge');
    // The last page seen never counts more than the run's own summary.
    expect(Math.max(...remote)).toBeLessThanOrEqual(summary.orders.byPath.remote ?? 0);
    expect(afterRun).toBeInstanceOf(Error);
  });

  it("fills serverRequests from the answers the servers stored: no fewer than the remote payments, no more than the ledgers hold", () => {
    const series = parseTimeseries(readFileSync(join(dir, 'timeseries.csv'), 'utf8')).columns.serverRequests ?? [];
    const requests = series.reduce((a: number, b) => a + (b ?? 0), 0);
    let stored = 0;
    for (const name of readdirSync(dir).filter((n) => /^ledger-.*\.sqlite$/.test(n))) {
      const store = new SqliteLedgerStore(join(dir, name), { readonly: true });
      stored += store.answeredRequests();
      store.close();
    }
    expect(summary.orders.byPath.remote).toBeGreaterThan(0);
    expect(requests).toBeGreaterThanOrEqual(summary.orders.byPath.remote!);
    expect(requests).toBeLessThanOrEqual(stored);
  });

  it('reports the open-model arrivals and their drops as the virtual mode does, from the workers’ figures', () => {
    const arrival = summary.arrival!;
    expect(arrival).toMatchObject({ executor: 'constant-arrival-rate' });
    expect(arrival.arrivals).toBeGreaterThan(100);
    expect(arrival.arrivals).toBe(arrival.issued + arrival.dropped);
    expect(arrival.droppedByReason.maxInFlight).toBeGreaterThan(0);
    expect(arrival.dropped).toBe(arrival.droppedByReason.maxInFlight + arrival.droppedByReason.noTerminalUp + arrival.droppedByReason.noSource);
    expect(arrival.peakInFlight).toBe(1);
    expect(summary.workload).toMatchObject({ arrivals: arrival.arrivals, arrivalDropped: arrival.dropped });
    expect(summary.orders.dropped).toBe(arrival.dropped + (summary.workload.notIssuedTerminalDown ?? 0));
  });
});

describe('payfleet run --metrics-port: bad input', () => {
  const file = join(import.meta.dirname, '..', '..', 'scenarios', 'quickstart.yaml');

  async function statusOf(args: string[]): Promise<{ status: number; errors: string }> {
    const errors: string[] = [];
    const original = { error: console.error, log: console.log };
    console.error = (...parts: unknown[]) => errors.push(parts.join(' '));
    console.log = () => undefined;
    try {
      const status = await main(['run', file, '--quiet', '--out', runDir(), ...args]);
      return { status, errors: errors.join('\n') };
    } finally {
      Object.assign(console, original);
    }
  }

  it('exits 2 naming --metrics-port for a value that is no port, in virtual mode, and for a port in use', async () => {
    for (const args of [['--mode', 'mqtt', '--metrics-port', '70000'], ['--mode', 'mqtt', '--metrics-port', 'x'], ['--metrics-port', '0']]) {
      const { status, errors } = await statusOf(args);
      expect(status, args.join(' ')).toBe(2);
      expect(errors, args.join(' ')).toContain('--metrics-port');
    }
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const port = (busy.address() as AddressInfo).port;
      const { status, errors } = await statusOf(['--mode', 'mqtt', '--metrics-port', String(port)]);
      expect(status).toBe(2);
      expect(errors).toContain(`--metrics-port: cannot listen on 127.0.0.1:${port}`);
    } finally {
      await new Promise((r) => busy.close(r));
    }
    expect(liveChildCount()).toBe(0);
  });
});
