import { describe, it, expect } from 'vitest';
import { evaluateThreshold, parseThreshold, thresholdProblem } from './thresholds.ts';
import { loadScenarioText, ScenarioError } from './load.ts';

const summary = {
  latencyMs: { remote: { p99: 688 }, local: { p99: 3 } },
  orders: { total: 200, approved: 190, declined: 10, dropped: 5 },
  workload: { issued: 195 },
  ledger: { lost: 0, duplicated: 0 },
  remittance: { lagMs: { p99: 90_000 } },
  invariants: [{ id: 'INV-1', violations: 0 }, { id: 'INV-4', violations: 2 }],
};

describe('thresholds: the k6-like forms', () => {
  it('converts time units on figures in ms and % on rates', () => {
    const cases: Array<[string, boolean, unknown]> = [
      ['latency.remote.p99 < 800ms', true, 688],
      ['latency.remote.p99 < 0.6s', false, 688],
      ['latencyMs.remote.p99 <= 688', true, 688],
      ['remittance.lagMs.p99 < 2m', true, 90_000],
      ['declined.rate < 1%', false, 0.05],
      ['declined.rate <= 5%', true, 0.05],
      ['approved.rate > 0.9', true, 0.95],
      ['dropped.rate < 3%', true, 0.025],
      ['lost == 0', true, 0],
      ['duplicated == 0', true, 0],
      ['dropped < 10', true, 5],
      ['violations == 0', false, 2],
    ];
    for (const [expression, pass, actual] of cases) {
      expect(evaluateThreshold(expression, summary), expression).toEqual({ expression, pass, actual });
    }
  });

  it('refuses units that do not fit the figure, and anything that is not "<figure> <op> <number>"', () => {
    expect(parseThreshold('declined.rate < 5ms')).toMatchObject({ ok: false, problem: expect.stringContaining('time unit') });
    expect(parseThreshold('latency.remote.p99 < 5%')).toMatchObject({ ok: false, problem: expect.stringContaining('"%" is for rates') });
    for (const bad of ['lost', 'lost = 0', 'process.exit(1) < 2', 'lost < lost', 'lost < 1; x', '']) {
      expect(parseThreshold(bad).ok, bad).toBe(false);
    }
  });

  it('names an unknown figure at load time, but the evaluator only says it is not recorded', () => {
    expect(thresholdProblem('latncy.remote.p99 < 800ms')).toMatch(/unknown figure "latncy.remote.p99"/);
    expect(thresholdProblem('orders.total > 0')).toBeUndefined();
    expect(evaluateThreshold('orders.nothing > 0', summary)).toMatchObject({ pass: false, actual: null, problem: 'orders.nothing is not recorded in this run' });
  });
});

describe('scenario: thresholds and arrival fields', () => {
  const problemsOf = (text: string) => {
    try {
      loadScenarioText(text, 'x.yaml');
    } catch (error) {
      if (error instanceof ScenarioError) return error.problems.map((p) => `${p.line}:${p.path}: ${p.message}`);
      throw error;
    }
    return [];
  };

  it('refuses a bad threshold with its line and field', () => {
    const problems = problemsOf('duration: 10m\nthresholds:\n  - "lost == 0"\n  - "latency.remote.p99 < 800 parsecs"\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^4:thresholds\[1\]: cannot parse/);
  });

  it('resolves both executors with their defaults', () => {
    const constant = loadScenarioText('arrival: { executor: constant-arrival-rate, rate: 50 }\n', 'x.yaml');
    expect(constant.arrival).toEqual({ executor: 'constant-arrival-rate', rate: 50, durationMs: null, timeUnitMs: 1000, startTimeMs: 0, maxInFlight: 0, mix: [] });
    const ramping = loadScenarioText('arrival:\n  executor: ramping-arrival-rate\n  timeUnit: 1m\n  stages: [{ target: 10, duration: 5m }]\n', 'x.yaml');
    expect(ramping.arrival).toEqual({ executor: 'ramping-arrival-rate', startRate: 0, stages: [{ target: 10, durationMs: 300_000 }], timeUnitMs: 60_000, startTimeMs: 0, maxInFlight: 0, mix: [] });
    expect(loadScenarioText('seed: 1\n', 'x.yaml').arrival).toBeNull();
    expect(loadScenarioText('arrival: null\n', 'x.yaml').arrival).toBeNull();
  });

  it('refuses arrivals past the duration, a missing rate, fields of the other executor, and unknown mix sources', () => {
    expect(problemsOf('duration: 10m\narrival: { executor: constant-arrival-rate, rate: 5, duration: 11m }\n')).toEqual([
      expect.stringMatching(/^2:arrival\.duration: expected the arrivals to end by the duration/),
    ]);
    expect(problemsOf('arrival: { executor: constant-arrival-rate }\n')).toEqual([expect.stringMatching(/arrival\.rate: missing/)]);
    expect(problemsOf('arrival: { executor: constant-arrival-rate, rate: 1, stages: [] }\n')).toEqual([
      expect.stringMatching(/arrival\.stages: unknown field for executor constant-arrival-rate/),
    ]);
    expect(problemsOf('arrival: { executor: ramping-arrival-rate, stages: [] }\n')).toEqual([expect.stringMatching(/arrival\.stages: expected at least one stage/)]);
    expect(problemsOf('arrival: { executor: constant-arrival-rate, rate: 1, mix: [{ source: shoop }] }\n')).toEqual([
      expect.stringMatching(/arrival\.mix\[0\]\.source: expected "pos" or one of the apps "shop", "game", got "shoop"; did you mean "shop"\?/),
    ]);
    expect(problemsOf('arrival: { executor: constant-arrivl-rate, rate: 1 }\n')).toEqual([expect.stringMatching(/did you mean "constant-arrival-rate"/)]);
  });
});
