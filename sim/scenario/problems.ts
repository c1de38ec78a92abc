// Goal: the way a bad scenario is reported: every problem, each naming the file, line, column and field.
// Method: validation collects problems instead of stopping at the first, then throws one ScenarioError that
// carries them all; the CLI prints `problems` one a line and exits 2.

/** A path into the scenario, e.g. ['population', 'regions', 1, 'share']. */
export type FieldPath = readonly (string | number)[];

export interface ScenarioProblem {
  /** The scenario file, or '<command line>' for an override. */
  file: string;
  /** 1-based; absent when the problem has no place in the file (an override, a default). */
  line?: number;
  column?: number;
  /** The field in dotted form, e.g. "population.regions[1].share"; '' for the whole file. */
  path: string;
  /** What was expected and what was found. */
  message: string;
}

export function formatPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

/** `file:line:column: path: message`, leaving out what is unknown. */
export function formatProblem(problem: ScenarioProblem): string {
  const place =
    problem.line !== undefined ? `${problem.file}:${problem.line}:${problem.column ?? 1}` : problem.file;
  const parts = [place, problem.path, problem.message].filter((part) => part !== '');
  return parts.join(': ');
}

export class ScenarioError extends Error {
  readonly code = 'badScenario';

  constructor(readonly problems: readonly ScenarioProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ScenarioError';
  }
}
