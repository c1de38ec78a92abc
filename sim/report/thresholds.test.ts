import { describe, it, expect } from 'vitest';
import { evaluateThreshold, thresholdsOf } from './thresholds.ts';

const summary = { latencyMs: { remote: { p99: 688 } }, ledger: { lost: 0 }, mode: 'virtual', scenario: { thresholds: [] as unknown[] } };

describe('evaluateThreshold', () => {
  it('compares a recorded figure with each operator', () => {
    const cases: Array<[string, boolean]> = [
      ['latencyMs.remote.p99 < 700', true],
      ['latencyMs.remote.p99 < 688', false],
      ['latencyMs.remote.p99 <= 688', true],
      ['latencyMs.remote.p99 > 688', false],
      ['latencyMs.remote.p99 >= 688', true],
      ['ledger.lost == 0', true],
      ['ledger.lost != 0', false],
      ['  ledger.lost==0  ', true],
      ['ledger.lost > -1.5', true],
    ];
    for (const [expression, pass] of cases) {
      expect(evaluateThreshold(expression, summary), expression).toEqual({ expression, pass, actual: expression.includes('p99') ? 688 : 0 });
    }
  });

  it('fails a threshold on a figure the run did not record, and says so', () => {
    const result = evaluateThreshold('remittance.lagMs.p99 < 60000', summary);
    expect(result).toMatchObject({ pass: false, actual: null, problem: 'remittance.lagMs.p99 is not recorded in this run' });
  });

  it('fails a threshold on a figure that is not a number', () => {
    expect(evaluateThreshold('mode == 1', summary)).toMatchObject({ pass: false, actual: 'virtual', problem: 'mode is not a number' });
  });

  it('never evaluates a threshold as code: anything but "<figure> <op> <number>" fails to parse', () => {
    for (const expression of ['process.exit(1) < 2', 'ledger.lost < 1; x', 'ledger.lost < ledger.duplicated', 'ledger.lost', '']) {
      const result = evaluateThreshold(expression, summary);
      expect(result.pass, expression).toBe(false);
      expect(result.problem, expression).toMatch(/^cannot parse/);
    }
  });
});

describe('thresholdsOf', () => {
  it("prefers the verdicts the run recorded", () => {
    const recorded = { ...summary, thresholds: [{ expression: 'latencyMs.remote.p99 < 500', pass: false, actual: 688 }, 'junk'] };
    expect(thresholdsOf(recorded)).toEqual({ source: 'summary', results: [{ expression: 'latencyMs.remote.p99 < 500', pass: false, actual: 688 }] });
  });

  it("otherwise checks the scenario's thresholds against the summary", () => {
    const written = { ...summary, scenario: { thresholds: ['ledger.lost == 0', 'latencyMs.remote.p99 < 500', 7] } };
    const { source, results } = thresholdsOf(written);
    expect(source).toBe('scenario');
    expect(results.map((r) => [r.expression, r.pass])).toEqual([
      ['ledger.lost == 0', true],
      ['latencyMs.remote.p99 < 500', false],
    ]);
  });

  it('reports none when neither the run nor its scenario set any', () => {
    expect(thresholdsOf(summary)).toEqual({ source: 'none', results: [] });
    expect(thresholdsOf({})).toEqual({ source: 'none', results: [] });
  });
});
