// Goal: the pass/fail thresholds of a run ("latencyMs.remote.p99 < 500"), as the summary recorded them or,
// when it did not (a summary written before runs recorded them), checked here against the summary's figures.
// Method: the run records `summary.thresholds` (sim/scenario/thresholds.ts evaluates them); for a summary that
// did not, the same evaluator checks the scenario's expressions here. Nothing is evaluated as code. A threshold
// that cannot be parsed, or whose figure the run did not record, fails, with the reason shown.

import { arrayAt, isRecord, type Summary } from './read.ts';
import { evaluateThreshold as evaluateScenarioThreshold, type ThresholdResult } from '../scenario/thresholds.ts';

export type { ThresholdResult };

export interface Thresholds {
  /** Where the results come from: the summary's own `thresholds`, the scenario's (checked here), or none. */
  source: 'summary' | 'scenario' | 'none';
  results: ThresholdResult[];
}

/** One evaluator for the run, the report and the capacity search: see sim/scenario/thresholds.ts. */
export function evaluateThreshold(expression: string, summary: Summary): ThresholdResult {
  return evaluateScenarioThreshold(expression, summary);
}

export function thresholdsOf(summary: Summary): Thresholds {
  const recorded = arrayAt(summary, 'thresholds');
  if (recorded) {
    const results = recorded.filter(isRecord).map((entry) => ({
      expression: typeof entry.expression === 'string' ? entry.expression : '(no expression recorded)',
      pass: entry.pass === true,
      actual: entry.actual ?? null,
    }));
    return { source: 'summary', results };
  }
  const written = (arrayAt(summary, 'scenario.thresholds') ?? []).filter((t): t is string => typeof t === 'string');
  if (written.length === 0) return { source: 'none', results: [] };
  return { source: 'scenario', results: written.map((expression) => evaluateThreshold(expression, summary)) };
}
