// Goal: the up-front fit check counts connections where the run puts them and refuses, with the numbers, a fleet
// whose worker or embedded broker would pass its file-descriptor limit; through the CLI that is exit 2 with
// nothing written.
// Method: fleetCounts/fleetMisfits on the quickstart, the limit parsed from a /proc/self/limits text, and one
// `payfleet run` of a fleet far past this machine's limit.

import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenario } from '../scenario/load.ts';
import { main } from '../cli/main.ts';
import { FD_RESERVE, fleetCounts, fleetMisfits, openFilesLimit } from './fleetFit.ts';

const quickstart = loadScenario('scenarios/quickstart.yaml');

describe('fleet fit', () => {
  it('reads the soft open-files limit', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    expect(openFilesLimit(text)).toBe(1024);
    expect(openFilesLimit('Max open files            unlimited            unlimited            files\n')).toBeUndefined();
    expect(openFilesLimit()).toBeGreaterThan(0);
  });

  it('counts each broker\'s connections as the run places them', () => {
    const one = fleetCounts({ scenario: quickstart, workers: 2, brokerUrl: undefined });
    expect(one.endpointsPerWorker).toBe(150 + 3);
    // 300 terminals, 6 POS, 2 servers, the harness and the adversary.
    expect(one.brokers).toEqual([{ url: 'embedded', endpoints: 310, startedHere: true }]);
    const spread = fleetCounts({ scenario: quickstart, workers: 2, brokerUrl: 'mqtt://a:1,mqtt://b:1' });
    // Terminals and POS split by index; each server on both brokers; the harness's two on the first.
    expect(spread.brokers.map((b) => [b.url, b.endpoints])).toEqual([['mqtt://a:1', 150 + 3 + 2 + 2], ['mqtt://b:1', 150 + 3 + 2]]);
    const cluster = fleetCounts({ scenario: quickstart, workers: 2, brokerUrl: 'mqtt://a:1', serverBrokerUrl: 'mqtt://b:1' });
    expect(cluster.brokers.map((b) => [b.url, b.endpoints])).toEqual([['mqtt://a:1', 306], ['mqtt://b:1', 4]]);
  });

  it('refuses a worker or an embedded broker past the limit, with the numbers', () => {
    const counts = fleetCounts({ scenario: quickstart, workers: 2, brokerUrl: undefined });
    expect(fleetMisfits(counts, 10_000)).toEqual([]);
    expect(fleetMisfits(counts, undefined)).toEqual([]);
    const tight = fleetMisfits(counts, 300);
    expect(tight).toHaveLength(1);
    expect(tight[0]).toMatch(new RegExp(`embedded broker would hold 310 connections, but its file-descriptor limit is 300 \\(${300 - FD_RESERVE} after`));
    const worse = fleetMisfits(counts, 200);
    expect(worse[0]).toMatch(/a swarm worker process would hold 153 connections, but its file-descriptor limit is 200/);
    // An external broker's limit is not known here: counted, not checked.
    expect(fleetMisfits(fleetCounts({ scenario: quickstart, workers: 2, brokerUrl: 'mqtt://a:1' }), 300)).toEqual([]);
  });

  it('refuses, through the CLI, a fleet this machine cannot host: exit 2, nothing written', async () => {
    const limit = openFilesLimit()!;
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-fit-'));
    const out = join(dir, 'run');
    const lines: string[] = [];
    try {
      // Twice the limit per worker: neither of the two workers could hold its half.
      const status = await main(['run', 'scenarios/quickstart.yaml', '--mode', 'mqtt', '--terminals', String(4 * limit), '--out', out, '--quiet'], {
        out: (l) => lines.push(l),
        err: (l) => lines.push(l),
        env: process.env,
        signal: new AbortController().signal,
      });
      expect(status, lines.join('\n')).toBe(2);
      expect(lines.join('\n')).toMatch(new RegExp(`does not fit on this machine; nothing was run:[\\s\\S]*a swarm worker process would hold ${2 * limit + 3} connections, but its file-descriptor limit is ${limit}`));
      expect(existsSync(out)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
