import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario, ScenarioError } from './load.ts';
import { parseCalibration } from './calibration.ts';
import { constantCalibration } from './calibrationTesting.ts';

/** A repository-like folder: calibrations/ at the top, the scenario one folder below. */
function layout(calibration: unknown, scenarioText: string): string {
  const root = mkdtempSync(join(tmpdir(), 'payfleet-calibration-'));
  mkdirSync(join(root, 'calibrations'));
  mkdirSync(join(root, 'scenarios'));
  if (calibration !== undefined) writeFileSync(join(root, 'calibrations', 'c.json'), typeof calibration === 'string' ? calibration : JSON.stringify(calibration));
  const file = join(root, 'scenarios', 's.yaml');
  writeFileSync(file, scenarioText);
  return file;
}

const SCENARIO = 'crypto: sim\nservers:\n  calibration: calibrations/c.json\n';

function problemOf(file: string): string {
  try {
    loadScenario(file);
  } catch (error) {
    if (error instanceof ScenarioError) return error.message;
    throw error;
  }
  throw new Error('accepted');
}

describe('servers.calibration', () => {
  it('finds a relative file from the scenario folder upwards and loads it', () => {
    const file = layout(constantCalibration({ serviceUs: 300, commitUs: 3000 }), SCENARIO);
    const scenario = loadScenario(file);
    expect(scenario.servers.calibration?.file).toBe('calibrations/c.json');
    expect(scenario.servers.calibration?.calibration.kinds.debit.quantilesUs[5]).toBe(300);
  });

  it('refuses a missing file, naming the scenario line and how to make one', () => {
    const message = problemOf(layout(undefined, SCENARIO));
    expect(message).toMatch(/s\.yaml:3:\d+: servers\.calibration: calibration file "calibrations\/c\.json" not found/);
    expect(message).toContain('payfleet calibrate');
  });

  it('refuses a malformed file: not JSON, a missing kind, quantiles out of order', () => {
    expect(problemOf(layout('{ nope', SCENARIO))).toMatch(/s\.yaml:3:\d+: servers\.calibration: .*is not JSON/);
    const noDebit = constantCalibration({ serviceUs: 1, commitUs: 1 }) as unknown as { kinds: Record<string, unknown> };
    delete noDebit.kinds.debit;
    expect(problemOf(layout(noDebit, SCENARIO))).toMatch(/s\.yaml:3:\d+: .*kinds\.debit: missing/);
    const disordered = constantCalibration({ serviceUs: 5, commitUs: 1 });
    disordered.kinds.sync.quantilesUs[3] = 1;
    expect(() => parseCalibration(disordered)).toThrow(/kinds\.sync\.quantilesUs\[3\]: expected quantiles in increasing order/);
  });

  it('refuses a calibration measured with another crypto than the scenario', () => {
    const message = problemOf(layout(constantCalibration({ crypto: 'ed25519', serviceUs: 1, commitUs: 1 }), SCENARIO));
    expect(message).toMatch(/measured with crypto ed25519, the scenario uses sim/);
  });
});
