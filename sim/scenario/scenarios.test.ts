// The shipped scenarios (scenarios/*.yaml) must load cleanly and say what their names promise.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario } from './load.ts';
import type { FaultKind, Scenario } from './types.ts';

const SCENARIOS_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
const files = readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.yaml'));
const load = (name: string): Scenario => loadScenario(join(SCENARIOS_DIR, `${name}.yaml`));

/** Orders per terminal per day, averaged over the fleet (apps by share, plus shop visits when there are POS). */
function ordersPerTerminalPerDay(s: Scenario): number {
  const apps = s.population.apps.reduce((sum, app) => sum + app.share * app.ordersPerHour, 0);
  const pos = s.population.pos.units > 0 ? s.population.pos.visitsPerTerminalPerHour : 0;
  return (apps + pos) * 24;
}

describe('shipped scenarios', () => {
  it('ships at least quickstart, city-day, outage-storm and chaos', () => {
    expect(files).toEqual(expect.arrayContaining(['quickstart.yaml', 'city-day.yaml', 'outage-storm.yaml', 'chaos.yaml']));
  });

  it.each(files)('%s loads cleanly, is named after its file and points editors at the schema', (file) => {
    const s = loadScenario(join(SCENARIOS_DIR, file));
    expect(s.name).toBe(file.replace(/\.yaml$/, ''));
    expect(s.description).not.toBe('');
    expect(readFileSync(join(SCENARIOS_DIR, file), 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../sim/scenario/schema.json');
  });

  it('quickstart: a few hundred terminals, two shards, two regions, 30 minutes, a 10-minute outage, POS, a shared means', () => {
    const s = load('quickstart');
    expect(s.population.terminals).toBe(300);
    expect(s.population.shards).toBe(2);
    expect(s.population.regions).toHaveLength(2);
    expect(s.durationMs).toBe(30 * 60_000);
    expect(s.coverage.outages).toEqual([{ region: 'south', atMs: 10 * 60_000, durationMs: 10 * 60_000 }]);
    expect(s.population.pos.units).toBeGreaterThan(0);
    expect(new Set(s.population.means.map((m) => m.kind)).size).toBeGreaterThanOrEqual(3);
    expect(s.population.means.some((m) => !m.dedicated && m.elsewhere !== null)).toBe(true);
  });

  it('city-day: 100,000 terminals for 24 h, 8 shards, sim crypto, a 40-minute outage at noon, about 6 orders a day', () => {
    const s = load('city-day');
    expect(s.population.terminals).toBe(100_000);
    expect(s.durationMs).toBe(24 * 3_600_000);
    expect(s.population.shards).toBe(8);
    expect(s.crypto).toBe('sim');
    expect(s.coverage.outages).toEqual([{ region: 'centre', atMs: 12 * 3_600_000, durationMs: 40 * 60_000 }]);
    expect(ordersPerTerminalPerDay(s)).toBeCloseTo(6, 6);
  });

  it('outage-storm: most of the fleet loses coverage at once, and coverage regained triggers remittance', () => {
    const s = load('outage-storm');
    const shareOut = s.coverage.outages.reduce((sum, outage) => sum + (s.population.regions.find((r) => r.name === outage.region)?.share ?? 0), 0);
    expect(shareOut).toBeGreaterThanOrEqual(0.5);
    expect(s.policy.remittance.triggers.onCoverageRegained).toBe(true);
  });

  it('chaos: every fault kind at least once, on a faulty network', () => {
    const s = load('chaos');
    const every: FaultKind[] = ['serverCrash', 'brokerCrash', 'terminalCrash', 'simMove', 'clockSkew', 'partition', 'forgedSignature', 'replayedRemittance', 'alteredInFlight', 'malformedPayload', 'wrongTopic'];
    expect(new Set(s.faults.map((f) => f.kind))).toEqual(new Set(every));
    expect(s.network.lossProbability).toBeGreaterThan(0);
    expect(s.network.duplicateProbability).toBeGreaterThan(0);
    expect(s.network.reorderProbability).toBeGreaterThan(0);
  });
});
